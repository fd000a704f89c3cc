"""The wizard's fee step once nothing is due, through HTTP: every fee paid or waived
(money left to add to a lunch account is never due), the step says so and offers a
single "Continue", with no "Pay now" for $0.00. A household that still owes a fee,
or whose only fee is a lunch account it has not used yet, is offered "Pay now".

The actors come from tests/conftest.py: José (hh-001: Sofía and Mateo).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext

from payments.models import Checkout
from payments.services import fee_assess, fee_waive
from tests.payments.conftest import deliver
from tests.workflow import test_fee_step as fee_step
from tests.workflow.test_fee_step import at_fee_step, key, pay_now
from tests.workflow.wizard_walk import Page
from workflow.models import RegistrationStep

# The fee step's fixtures, here too.
stripe_double = fee_step.stripe_double
family = fee_step.family
lunch = fee_step.lunch
jose = fee_step.jose
registration_fee = fee_step.registration_fee

PAY_BUTTON = re.compile(r'<button[^>]*value="pay"')


def buttons(page: Page) -> list[str]:
    """The texts of the buttons of the step's actions, in order."""
    actions = page.html.split('<div class="actions">', 1)[1].split("</div>", 1)[0]
    return [" ".join(text.split()) for text in re.findall(r"<button[^>]*>(.*?)</button>", actions)]


def primary_button(page: Page) -> str:
    actions = page.html.split('<div class="actions">', 1)[1].split("</div>", 1)[0]
    (found,) = re.findall(r'<button[^>]*class="button button-primary"[^>]*>(.*?)</button>', actions)
    return " ".join(found.split())


def test_fees_waived_leave_a_single_continue(jose, family, registration_fee, lunch, finance_user):
    page = at_fee_step(jose)
    assert buttons(page) == ["Pay now", "Continue without paying"]
    for child in (family.sofia, family.mateo):  # free meals
        fee_assess(
            household=family.household, student=child, fee=registration_fee, actor=finance_user
        )
        fee_waive(
            household=family.household,
            student=child,
            fee=registration_fee,
            actor=finance_user,
            note="x",
        )

    page = jose.open("fees")
    assert page.step == "fees"
    assert not PAY_BUTTON.search(page.html)
    assert buttons(page) == ["Continue"]
    assert primary_button(page) == "Continue"
    assert "$0.00" not in page.html
    assert "Nothing is due: every fee is paid or waived." in page.html
    assert "Registration fee: waived" in page.html
    # Lunch is never due: the family is told where to add money to it.
    assert "You can put money on a lunch account at any time from “Fees” in your account." in (
        page.html
    )
    assert f"lunch-{key(family.sofia, lunch)}" not in page.html

    review = jose.submit(page)
    assert review.step == "review", review.html
    assert RegistrationStep.objects.filter(step="fees").exists()


def test_after_paying_every_fee_the_step_offers_only_continue_in_each_language(
    jose, family, registration_fee, lunch, stripe_double
):
    page = at_fee_step(jose)
    everything = {
        "line": [key(family.sofia, registration_fee), key(family.mateo, registration_fee)],
        f"lunch-{key(family.mateo, lunch)}": "20",
    }
    pay_now(jose, page, everything)
    checkout = Checkout.objects.get()
    session = stripe_double.session_complete(checkout.stripe_session_id)
    deliver(jose.client, stripe_double.event("checkout.session.completed", session))

    for language in ("en", "es", "zh-hans"):
        jose.client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        thanked = Page(jose.client.get(f"{jose.url('fees')}?checkout={checkout.pk}"), jose.prefix)
        with translation.override(language):
            assert gettext("Thank you: your payment is confirmed") in thanked.html
            assert buttons(thanked) == [gettext("Continue")], language
            assert primary_button(thanked) == gettext("Continue")
        assert not PAY_BUTTON.search(thanked.html)
    assert jose.submit(thanked).step == "review"


def test_an_unused_lunch_account_alone_is_still_offered(jose, family, lunch):
    page = at_fee_step(jose)
    assert buttons(page) == ["Pay now", "Continue without paying"]
    assert primary_button(page) == "Pay now"
    assert "Nothing is due" not in page.html
    assert f"lunch-{key(family.sofia, lunch)}" in page.html
