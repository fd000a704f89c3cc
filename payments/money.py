"""Amounts of money as people read them. Every amount is held in integer cents of US
dollars; only its writing depends on the reader's language."""

from __future__ import annotations

from django.utils import translation

from config.languages import product_language

# How a reader of each language writes US dollars (Unicode CLDR): "$" in English and in
# the Spanish of the United States, "US$" in Chinese, where "$" alone is ambiguous.
CURRENCY_SIGN = {"zh-hans": "US$"}


def money(cents: int, *, minus: str = "-") -> str:
    """1234 50 cents → "$1,234.50" in the active language (``US$1,234.50`` in Chinese);
    a negative amount starts with ``minus``."""
    sign = minus if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{currency_sign()}{cents // 100:,}.{cents % 100:02d}"


def currency_sign() -> str:
    """How the active language writes US dollars before an amount."""
    return CURRENCY_SIGN.get(product_language(translation.get_language()) or "", "$")
