"""Links from the finance pages to the same object in Stripe's dashboard:
``{{ item.stripe_payment_intent|stripe_dashboard:"payments" }}``."""

from __future__ import annotations

from django import template
from django.conf import settings

register = template.Library()

DASHBOARD = "https://dashboard.stripe.com"
SECTIONS = ("payments", "refunds", "payouts")


@register.filter
def stripe_dashboard(stripe_id: str, section: str) -> str:
    """The dashboard's page of a payment intent or charge (``payments``), a refund
    (``refunds``) or a payout (``payouts``), in test mode with a test key; blank for
    no id or another section."""
    if not stripe_id or section not in SECTIONS:
        return ""
    test = settings.STRIPE_SECRET_KEY.startswith(("sk_test_", "rk_test_"))
    return f"{DASHBOARD}{'/test' if test else ''}/{section}/{stripe_id}"
