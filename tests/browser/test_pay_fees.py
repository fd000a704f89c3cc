"""A guardian pays fees on a phone in a real browser, through the local TEST
checkout: the cart, Stripe's stand-in page, and back to a paid checkout with its
receipt. Nothing is wider than the phone, and no page breaks the Content Security
Policy (see conftest)."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from payments.models import Checkout, LedgerEntry
from tests.browser.sign_in import guardian_sign_in
from tests.payments.factories import FeeFactory, LunchFactory

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}


def _fits_the_phone(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide"


def test_a_guardian_pays_lunch_and_a_yearbook_on_a_phone(
    browser_page, live_server, other_guardian_user, settings
):
    settings.STRIPE_MODE = "local"
    settings.SITE_URL = live_server.url  # the address Stripe's stand-in sends the family back to
    LunchFactory()
    FeeFactory(kind="optional", title="Yearbook", amount_cents=3500)
    page = browser_page
    page.set_viewport_size(PHONE)
    guardian_sign_in(page, live_server, other_guardian_user)

    page.get_by_role("link", name="Fees", exact=True).first.click()
    page.wait_for_url(re.compile(r"/payments/fees/"))
    if page.get_by_role("heading", name=re.compile("Fees and payments")).count() == 0:
        page.get_by_role("link", name=re.compile("Fees")).nth(1).click()
    _fits_the_phone(page)
    page.get_by_label(re.compile("Lunch account")).first.fill("20")
    page.get_by_label(re.compile("Yearbook")).first.check()
    page.get_by_role("button", name="Pay", exact=True).click()

    # The local stand-in for Stripe's page, marked TEST.
    page.wait_for_url(re.compile(r"/payments/test-checkout/"))
    assert "TEST" in page.locator("main").inner_text()
    _fits_the_phone(page)
    page.get_by_role("button", name=re.compile(r"Pay \$55\.00")).click()

    page.wait_for_url(re.compile(r"/payments/checkouts/\d+/"))
    _fits_the_phone(page)
    checkout = Checkout.objects.get()
    assert checkout.state == Checkout.State.PAID and checkout.total_cents == 5500
    assert page.get_by_role("link", name=re.compile("receipt", re.I)).count() >= 1
    payments = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT)
    assert sorted(entry.amount_cents for entry in payments) == [-3500, -2000]
    assert reverse("guardian_fees") in page.content()
