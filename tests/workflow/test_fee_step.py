"""The wizard's fee step, through HTTP with the local Stripe double: it comes before
the review when the household has fees to pay, "Pay now" goes to Stripe and back to
the step, "Continue" goes on without paying (unless the campaign wants the required
fees paid first), and nothing about money is ever taken from a draft.

The actors come from tests/conftest.py: José (hh-001: Sofía in Grade 3, Mateo in
Math 7; María José has no contact on file) and Siobhan (hh-002).
"""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from payments.models import Checkout, Fee, LedgerEntry
from payments.services import checkout_create, fee_assess, fee_waive
from registration.models import Household, Student
from tests.conftest import sign_in
from tests.payments import conftest as payment_fixtures
from tests.payments.conftest import deliver
from tests.payments.factories import FeeFactory
from tests.workflow.test_wizard import JOSE, _jose_answers, _registration, _sign, _walk_to
from tests.workflow.wizard_walk import Page, WizardWalk
from workflow.models import Registration, RegistrationStep, Submission

# The payment tests' fixtures, here too: the Stripe double, hh-001's children, lunch.
stripe_double = payment_fixtures.stripe_double
family = payment_fixtures.family
lunch = payment_fixtures.lunch

PAY = ("action", "pay")
TRY_AGAIN = "The payment service did not answer; please try again."


def key(student: Student, fee: Fee) -> str:
    return f"{student.pk}-{fee.pk}"


@pytest.fixture
def jose(client, guardian_user, campaign) -> WizardWalk:
    sign_in(client, guardian_user)
    return WizardWalk(client, _registration("hh-001"))


@pytest.fixture
def registration_fee(campaign) -> Fee:
    return FeeFactory(title="Registration fee", amount_cents=2500, campaign=campaign)


def at_fee_step(wizard: WizardWalk) -> Page:
    page = _walk_to(wizard, "fees", _jose_answers())
    assert page.status_code == 200 and page.step == "fees"
    return page


def pay_now(wizard: WizardWalk, page: Page, changes: dict) -> object:
    """Press "Pay now" without following Stripe's redirect."""
    data = wizard.data(page, changes)
    data[page.name("action")] = "pay"
    return wizard.client.post(wizard.url("fees"), data)


def test_a_household_without_fees_has_no_fee_step(jose):
    page = _walk_to(jose, "review", _jose_answers())
    assert "Step 8 of 8" in page.html
    assert jose.url("fees") not in page.html
    assert jose.client.get(jose.url("fees")).status_code == 302  # no such step


def test_continue_goes_on_without_paying_and_the_review_shows_the_required_fees(
    jose, family, registration_fee, lunch, django_capture_on_commit_callbacks
):
    page = at_fee_step(jose)
    assert "Step 8 of 9" in page.html
    assert "Registration fee</strong> · $25.00" in page.html
    assert "<legend>Sofía García Núñez</legend>" in page.html
    assert page.choices("line") == [
        key(family.mateo, registration_fee),
        key(family.sofia, registration_fee),
    ]
    assert not page.offers_unchanged

    # Ticking and typing, then "Continue": nothing is paid, nothing kept but the choice.
    page = jose.submit(
        page,
        {"line": [key(family.sofia, registration_fee)], f"lunch-{key(family.sofia, lunch)}": "9"},
    )
    assert page.step == "review", page.errors
    draft = RegistrationStep.objects.get(step="fees")
    assert draft.data == {"fees-action": ["continue"]}
    assert draft.answers == {"action": "continue"}
    assert not Checkout.objects.exists()
    assert "Required fees" in page.html and "$50.00 still due" in page.html

    done = _sign(jose, page, JOSE, django_capture_on_commit_callbacks)
    assert "Submitted" in done.html
    submission = Submission.objects.get()
    fees = next(s for s in submission.content["sections"] if s["step"] == "fees")
    assert fees["rows"] == [
        {"label": "Required fees", "before": "", "after": "$50.00 still due", "changed": False}
    ]


def test_pay_now_goes_to_stripe_and_back_to_the_step(
    jose, family, registration_fee, lunch, stripe_double
):
    page = at_fee_step(jose)
    response = pay_now(
        jose,
        page,
        {"line": [key(family.sofia, registration_fee)], f"lunch-{key(family.mateo, lunch)}": "20"},
    )
    checkout = Checkout.objects.get()
    assert response.status_code == 303 and response["Location"] == checkout.stripe_session_url
    assert checkout.total_cents == 2500 + 2000
    (created,) = stripe_double.calls("POST", "/v1/checkout/sessions")
    back = f"{settings.SITE_URL.rstrip('/')}{jose.url('fees')}?checkout={checkout.pk}"
    assert created.params["success_url"] == back
    assert created.params["cancel_url"] == f"{back}&cancelled=1"
    assert not RegistrationStep.objects.filter(step="fees").exists()

    # Cancelled on Stripe's page: back at the step, nothing charged, choices as left.
    cancelled = Page(
        jose.client.get(f"{jose.url('fees')}?checkout={checkout.pk}&cancelled=1"), jose.prefix
    )
    assert "You have not been charged." in cancelled.html
    assert cancelled.fields["fees-line"] == [key(family.sofia, registration_fee)]
    assert cancelled.value(f"lunch-{key(family.mateo, lunch)}") == "20.00"

    # Paid on Stripe's page: the step waits for Stripe's confirmation, then thanks.
    returned = jose.client.get(f"{jose.url('fees')}?checkout={checkout.pk}&paid=1")
    assert "We are waiting for the payment service to confirm your payment" in (
        returned.content.decode()
    )
    checkout.refresh_from_db()
    assert checkout.state == Checkout.State.OPEN and not LedgerEntry.objects.exists()
    session = stripe_double.session_complete(checkout.stripe_session_id)
    deliver(jose.client, stripe_double.event("checkout.session.completed", session))
    thanked = Page(jose.client.get(f"{jose.url('fees')}?checkout={checkout.pk}"), jose.prefix)
    assert "Thank you: your payment is confirmed" in thanked.html
    assert thanked.step == "fees"
    page = jose.submit(thanked)
    assert page.step == "review"
    assert "$25.00 still due" in page.html  # Mateo's registration fee is still open


def test_required_fees_first_stop_continue_until_paid_or_waived(
    jose,
    campaign,
    family,
    registration_fee,
    lunch,
    finance_user,
    django_capture_on_commit_callbacks,
):
    campaign.fees_before_submit = True
    campaign.save(update_fields=["fees_before_submit"])
    page = at_fee_step(jose)
    assert "This year the required fees must be paid before you sign: $50.00 is still due." in (
        page.html
    )

    refused = jose.submit(page)
    assert refused.step == "fees"
    assert (
        "The required fees must be paid before you can continue: $50.00 is still due. "
        "A fee that was waived counts as paid."
    ) in refused.html
    assert 'role="alert"' in refused.html
    assert not RegistrationStep.objects.filter(step="fees").exists()

    household = family.household
    for child in (family.sofia, family.mateo):  # free meals
        fee_assess(household=household, student=child, fee=registration_fee, actor=finance_user)
        fee_waive(
            household=household, student=child, fee=registration_fee, actor=finance_user, note="x"
        )
    page = jose.open("fees")
    assert "must be paid before you sign" not in page.html
    assert "Registration fee: waived" in page.html
    page = jose.submit(page)
    assert page.step == "review", page.html
    assert "Paid or waived" in page.html
    _sign(jose, page, JOSE, django_capture_on_commit_callbacks)
    assert Registration.objects.get(pk=jose.pk).state == Registration.State.SUBMITTED


def test_a_lunch_amount_out_of_range_is_refused_at_the_field(jose, family, lunch, stripe_double):
    page = at_fee_step(jose)
    name = f"lunch-{key(family.sofia, lunch)}"
    page = jose.submit(page, {name: "1000"}, button=PAY)
    assert page.step == "fees"
    assert page.error(name) == "Please enter an amount from $5.00 to $200.00."
    assert page.is_invalid(name)
    assert page.value(name) == "1000"
    assert not Checkout.objects.exists() and not stripe_double.requests


def test_stripe_failing_keeps_the_choices_and_says_try_again(jose, family, lunch, stripe_double):
    page = at_fee_step(jose)
    name = f"lunch-{key(family.sofia, lunch)}"
    stripe_double.fail_next(500)
    page = jose.submit(page, {name: "15.75"}, button=PAY)
    assert page.step == "fees" and TRY_AGAIN in page.html
    assert f'<a href="#fees-pay">{TRY_AGAIN}</a>' in page.html
    assert page.value(name) == "15.75"
    response = pay_now(jose, page, {})
    checkout = Checkout.objects.get()
    assert response.status_code == 303 and checkout.total_cents == 1575
    keys = {r.idempotency_key for r in stripe_double.calls("POST", "/v1/checkout/sessions")}
    assert keys == {checkout.idempotency_key}


def test_another_households_checkout_or_fee_is_404_and_logged(
    jose, family, lunch, other_guardian_user, stripe_double, caplog
):
    liam = Student.objects.get(sourced_id="stu-003")
    theirs = checkout_create(
        household=Household.objects.get(sourced_id="hh-002"),
        lines=[(liam, lunch, 1000)],
        user=other_guardian_user,
    )
    page = at_fee_step(jose)
    with caplog.at_level(logging.WARNING, logger="security"):
        assert jose.client.get(f"{jose.url('fees')}?checkout={theirs.pk}").status_code == 404
        for button in (PAY, None):
            response = jose.client.post(
                jose.url("fees"),
                {
                    **jose.data(page, {f"lunch-{key(liam, lunch)}": "10"}),
                    **({page.name(button[0]): button[1]} if button else {}),
                },
            )
            assert response.status_code == 404
    logged = [r.getMessage() for r in caplog.records if r.name == "security"]
    assert len(logged) == 3
    assert "checkout of another household" in logged[0]
    assert all("child of another household in the cart" in m for m in logged[1:])
    assert Checkout.objects.count() == 1
    assert not RegistrationStep.objects.filter(step="fees").exists()


def test_siobhan_cannot_open_joses_fee_step(jose, family, lunch, other_guardian_user):
    siobhan = Client()
    sign_in(siobhan, other_guardian_user)
    assert siobhan.get(jose.url("fees")).status_code == 404
    assert reverse("registration_step", kwargs={"pk": jose.pk, "step": "fees"}) == jose.url("fees")
