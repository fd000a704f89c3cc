"""Amounts in cents shown as dollars on the staff pages: ``{{ cents|dollars }}``."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def dollars(cents: Any) -> str:
    """1850 → $18.50, -1850 → −$18.50; nothing → an em dash."""
    if cents is None or cents == "":
        return "—"
    value = int(cents)
    sign = "−" if value < 0 else ""
    value = abs(value)
    return f"{sign}${value // 100:,}.{value % 100:02d}"
