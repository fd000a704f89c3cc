"""Amounts in cents shown as dollars on the staff pages: ``{{ cents|dollars }}``."""

from __future__ import annotations

from typing import Any

from django import template

from payments.money import money

register = template.Library()


@register.filter
def dollars(cents: Any) -> str:
    """1850 → $18.50, -1850 → −$18.50; nothing → an em dash."""
    if cents is None or cents == "":
        return "—"
    return money(int(cents), minus="−")
