"""Starting a payment: amounts computed on the server, one Stripe session per
checkout however often it is asked for, and Stripe's failures turned into a message
for the family with nothing charged twice."""

from __future__ import annotations

import pytest
from django.utils import translation

from payments.models import Checkout, CheckoutLine
from payments.services import CheckoutRefused, checkout_create, checkout_pay
from payments.stripe_gateway import PaymentServiceError, PaymentServiceUnavailable
from registration.models import Household, Student
from workflow.models import TransitionLog

SAFE_MESSAGE = "The payment service did not answer; please try again."


def cart(family, lunch, field_trip):
    return [
        (family.sofia, lunch, 2500),
        (family.mateo, lunch, 4000),
        (family.sofia, field_trip, None),
    ]


def test_a_checkout_makes_one_session_with_a_line_per_child_and_fee(
    open_checkout, stripe_double, family
):
    checkout = open_checkout
    assert checkout.state == Checkout.State.OPEN
    assert checkout.total_cents == 2500 + 4000 + 1850
    assert checkout.stripe_session_id in stripe_double.state.sessions
    assert checkout.stripe_session_url.endswith(checkout.stripe_session_id)
    (created,) = stripe_double.calls("POST", "/v1/checkout/sessions")
    assert created.idempotency_key == checkout.idempotency_key
    assert str(checkout.pk) in created.idempotency_key
    assert created.params["client_reference_id"] == str(checkout.pk)
    assert created.params["metadata"]["checkout_id"] == str(checkout.pk)
    assert created.params["payment_intent_data"]["metadata"]["household_id"] == str(
        family.household.pk
    )
    items = created.params["line_items"]
    assert [(i["price_data"]["unit_amount"], i["quantity"]) for i in items] == [
        ("2500", "1"),
        ("4000", "1"),
        ("1850", "1"),
    ]
    assert {i["price_data"]["currency"] for i in items} == {"usd"}
    assert items[2]["price_data"]["product_data"]["name"] == "Aquarium visit – Sofía García Núñez"
    assert created.headers["authorization"] == "Bearer sk_test_double"
    log = TransitionLog.objects.get(object_type="payments.checkout", object_id=str(checkout.pk))
    assert (log.source, log.target, log.actor) == ("", "open", checkout.created_by)


def test_a_double_submit_gets_the_same_checkout_and_session(
    family, lunch, field_trip, guardian_user, stripe_double
):
    first = checkout_create(
        household=family.household, lines=cart(family, lunch, field_trip), user=guardian_user
    )
    second = checkout_create(
        household=family.household,
        lines=list(reversed(cart(family, lunch, field_trip))),
        user=guardian_user,
    )
    assert second.pk == first.pk
    assert second.stripe_session_id == first.stripe_session_id
    assert Checkout.objects.count() == 1
    assert CheckoutLine.objects.count() == 3
    assert len(stripe_double.state.sessions) == 1
    keys = {r.idempotency_key for r in stripe_double.calls("POST", "/v1/checkout/sessions")}
    assert keys == {first.idempotency_key}


def test_another_cart_replaces_the_open_checkout(
    open_checkout, family, lunch, field_trip, guardian_user, stripe_double
):
    changed = checkout_create(
        household=family.household,
        lines=[(family.sofia, lunch, 3000), (family.sofia, field_trip, None)],
        user=guardian_user,
    )
    assert changed.pk != open_checkout.pk
    open_checkout.refresh_from_db()
    assert open_checkout.state == Checkout.State.EXPIRED
    assert stripe_double.state.sessions[open_checkout.stripe_session_id]["status"] == "expired"
    assert changed.total_cents == 3000 + 1850


def test_a_tampered_amount_is_refused(family, lunch, field_trip, guardian_user, stripe_double):
    with pytest.raises(CheckoutRefused, match="has changed"):
        checkout_create(
            household=family.household, lines=[(family.sofia, field_trip, 1)], user=guardian_user
        )
    for amount in (499, 20001, -2500, None, "2500"):
        with pytest.raises(CheckoutRefused, match="lunch amount"):
            checkout_create(
                household=family.household,
                lines=[(family.sofia, lunch, amount)],
                user=guardian_user,
            )
    assert not Checkout.objects.exists()
    assert not stripe_double.requests


def test_a_fee_or_child_of_another_household_is_refused(
    family, lunch, field_trip, guardian_user, other_guardian_user, stripe_double
):
    liam = Student.objects.get(sourced_id="stu-003")
    with pytest.raises(CheckoutRefused, match="another household"):
        checkout_create(household=family.household, lines=[(liam, lunch, 2500)], user=guardian_user)
    # Mateo is not in the class that goes on the field trip.
    with pytest.raises(CheckoutRefused, match="cannot be paid"):
        checkout_create(
            household=family.household,
            lines=[(family.mateo, field_trip, None)],
            user=guardian_user,
        )
    # Nor is Liam, in the other household.
    with pytest.raises(CheckoutRefused):
        checkout_create(
            household=Household.objects.get(sourced_id="hh-002"),
            lines=[(family.sofia, field_trip, None)],
            user=other_guardian_user,
        )
    field_trip.active = False
    field_trip.save()
    with pytest.raises(CheckoutRefused, match="cannot be paid"):
        checkout_create(
            household=family.household,
            lines=[(family.sofia, field_trip, None)],
            user=guardian_user,
        )
    assert not Checkout.objects.exists()


def test_a_fee_already_paid_is_refused(
    open_checkout, family, lunch, field_trip, guardian_user, stripe_double
):
    stripe_double.session_complete(open_checkout.stripe_session_id)
    checkout_pay(checkout=open_checkout, payment_intent="pi_test")
    with pytest.raises(CheckoutRefused, match="already paid"):
        checkout_create(
            household=family.household,
            lines=[(family.sofia, field_trip, None)],
            user=guardian_user,
        )
    # Lunch tops up to its largest amount in total, not beyond.
    with pytest.raises(CheckoutRefused, match=r"\$5\.00 to \$175\.00"):
        checkout_create(
            household=family.household, lines=[(family.sofia, lunch, 17_501)], user=guardian_user
        )
    top_up = checkout_create(
        household=family.household, lines=[(family.sofia, lunch, 17_500)], user=guardian_user
    )
    assert top_up.total_cents == 17_500


def test_stripe_failing_gives_a_safe_message_and_a_retry_reuses_the_key(
    family, lunch, field_trip, guardian_user, stripe_double
):
    stripe_double.fail_next(500)
    with pytest.raises(PaymentServiceUnavailable) as failed:
        checkout_create(
            household=family.household, lines=cart(family, lunch, field_trip), user=guardian_user
        )
    assert failed.value.message == SAFE_MESSAGE
    assert "sk_test" not in failed.value.detail
    pending = Checkout.objects.get()
    assert pending.stripe_session_id is None and pending.state == Checkout.State.OPEN

    retried = checkout_create(
        household=family.household, lines=cart(family, lunch, field_trip), user=guardian_user
    )
    assert retried.pk == pending.pk and retried.stripe_session_id
    keys = [r.idempotency_key for r in stripe_double.calls("POST", "/v1/checkout/sessions")]
    assert keys == [pending.idempotency_key] * 2
    assert len(stripe_double.state.sessions) == 1


def test_a_timeout_after_stripe_made_the_session_still_makes_one_session(
    family, lunch, field_trip, guardian_user, stripe_double, settings
):
    settings.STRIPE_TIMEOUT_SECONDS = 0.3
    stripe_double.stall_next(1.0)
    with pytest.raises(PaymentServiceUnavailable):
        checkout_create(
            household=family.household, lines=cart(family, lunch, field_trip), user=guardian_user
        )
    assert len(stripe_double.state.sessions) == 1  # Stripe did it; the answer was lost
    retried = checkout_create(
        household=family.household, lines=cart(family, lunch, field_trip), user=guardian_user
    )
    assert len(stripe_double.state.sessions) == 1
    assert retried.stripe_session_id in stripe_double.state.sessions
    assert Checkout.objects.count() == 1


def test_the_library_retries_with_the_same_key(
    family, lunch, field_trip, guardian_user, stripe_double, settings
):
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    stripe_double.fail_next(503)
    checkout = checkout_create(
        household=family.household, lines=cart(family, lunch, field_trip), user=guardian_user
    )
    calls = stripe_double.calls("POST", "/v1/checkout/sessions")
    assert len(calls) == 2
    assert {c.idempotency_key for c in calls} == {checkout.idempotency_key}
    assert len(stripe_double.state.sessions) == 1


def test_stripe_refusing_gives_a_message_too(
    family, lunch, field_trip, guardian_user, stripe_double
):
    stripe_double.fail_next(400)
    with pytest.raises(PaymentServiceError) as refused:
        checkout_create(
            household=family.household, lines=cart(family, lunch, field_trip), user=guardian_user
        )
    assert "contact the school office" in refused.value.message


def test_the_message_is_translated(family, lunch, field_trip, guardian_user, stripe_double):
    stripe_double.fail_next(500)
    with translation.override("es"), pytest.raises(PaymentServiceUnavailable) as failed:
        checkout_create(
            household=family.household, lines=cart(family, lunch, field_trip), user=guardian_user
        )
    assert failed.value.message  # the Spanish catalogue is filled in separately


def test_a_child_of_two_households_is_paid_for_by_one_at_a_time(
    open_checkout, family, field_trip, other_guardian_user, stripe_double
):
    from registration.models import HouseholdStudent

    other = Household.objects.get(sourced_id="hh-002")
    HouseholdStudent.objects.create(household=other, student=family.sofia, is_primary=False)
    with pytest.raises(CheckoutRefused, match="Another household"):
        checkout_create(
            household=other, lines=[(family.sofia, field_trip, None)], user=other_guardian_user
        )
    # Once the first household's checkout has run out, the other may pay.
    Checkout.objects.filter(pk=open_checkout.pk).update(expires_at=open_checkout.created_at)
    stripe_double.session_expire(open_checkout.stripe_session_id)
    paid_by_other = checkout_create(
        household=other, lines=[(family.sofia, field_trip, None)], user=other_guardian_user
    )
    assert paid_by_other.household == other
    open_checkout.refresh_from_db()
    assert open_checkout.state == Checkout.State.EXPIRED
