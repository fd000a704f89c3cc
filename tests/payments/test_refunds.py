"""Refunds reach the ledger when Stripe confirms them, once, whichever event says so
and in whatever order the events arrive."""

from __future__ import annotations

import pytest

from payments.models import Checkout, LedgerEntry, Refund, StripeEvent
from payments.selectors import balance_cents
from payments.services import RefundRefused, refund_request
from payments.stripe_gateway import PaymentServiceUnavailable
from tests.payments.conftest import deliver
from workflow.models import TransitionLog


@pytest.fixture
def paid_checkout(client, open_checkout, stripe_double) -> Checkout:
    session = stripe_double.session_complete(open_checkout.stripe_session_id)
    assert (
        deliver(client, stripe_double.event("checkout.session.completed", session)).json()[
            "outcome"
        ]
        == "paid"
    )
    open_checkout.refresh_from_db()
    return open_checkout


def refund_entries() -> list[tuple[int, int, int]]:
    return sorted(
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND).values_list(
            "student_id", "fee_id", "amount_cents"
        )
    )


def test_a_requested_refund_is_written_once_when_stripe_confirms_it(
    client, paid_checkout, stripe_double, finance_user, family, field_trip
):
    line = paid_checkout.lines.get(fee=field_trip)
    refund = refund_request(
        line=line, amount_cents=1850, reason="trip cancelled", actor=finance_user
    )
    (created,) = stripe_double.calls("POST", "/v1/refunds")
    assert created.idempotency_key == refund.idempotency_key
    assert created.params["amount"] == "1850"
    assert created.params["payment_intent"] == paid_checkout.stripe_payment_intent
    assert created.params["metadata"]["refund_id"] == str(refund.pk)
    assert refund.stripe_refund_id and refund.state == Refund.State.PENDING
    assert not refund_entries()  # not before Stripe says so

    succeeded = stripe_double.refund_set(refund.stripe_refund_id, "succeeded")
    body = stripe_double.event("refund.updated", succeeded)
    assert deliver(client, body).json()["outcome"] == f"refund {refund.stripe_refund_id} recorded"
    deliver(client, body)
    charge = stripe_double.event(
        "charge.refunded", stripe_double.charge_refunded(paid_checkout.stripe_session_id)
    )
    assert "already settled" in deliver(client, charge).json()["outcome"]

    assert refund_entries() == [(family.sofia.pk, field_trip.pk, 1850)]
    refund.refresh_from_db()
    assert refund.state == Refund.State.SUCCEEDED
    assert balance_cents(household=family.household) == 1850
    assert balance_cents(household=family.household, student=family.sofia, fee=field_trip) == 1850
    assert [
        (r.source, r.target)
        for r in TransitionLog.objects.filter(object_type="payments.refund", object_id=refund.pk)
    ] == [("", "pending"), ("pending", "succeeded")]


def test_a_refund_asks_no_more_than_was_paid(
    paid_checkout, finance_user, field_trip, stripe_double
):
    line = paid_checkout.lines.get(fee=field_trip)
    refund_request(line=line, amount_cents=1000, reason="half", actor=finance_user)
    with pytest.raises(RefundRefused, match=r"\$8\.50"):
        refund_request(line=line, amount_cents=851, reason="too much", actor=finance_user)
    assert Refund.objects.count() == 1


def test_a_refund_stripe_did_not_answer_is_sent_again_with_the_same_key(
    paid_checkout, finance_user, field_trip, stripe_double
):
    from payments.services import refund_submit

    line = paid_checkout.lines.get(fee=field_trip)
    stripe_double.fail_next(500)
    with pytest.raises(PaymentServiceUnavailable):
        refund_request(line=line, amount_cents=1850, reason="trip cancelled", actor=finance_user)
    refund = Refund.objects.get()
    assert refund.stripe_refund_id is None
    refund_submit(refund=refund)
    calls = stripe_double.calls("POST", "/v1/refunds")
    assert [c.idempotency_key for c in calls] == [refund.idempotency_key] * 2
    assert len(stripe_double.state.refunds) == 1


def test_a_refund_made_in_stripe_is_spread_over_the_lines(
    client, paid_checkout, stripe_double, family, lunch, field_trip
):
    """charge.refunded without its refunds listed: they are asked of Stripe."""
    stripe_double.refund_make(paid_checkout.stripe_session_id, 3000)
    body = stripe_double.event(
        "charge.refunded",
        stripe_double.charge_refunded(paid_checkout.stripe_session_id, listed=False),
    )
    for _ in range(3):
        deliver(client, body)
    assert stripe_double.calls("GET", "/v1/refunds")
    # Lines in order: Sofía's lunch ($25.00), then $5.00 of Mateo's.
    assert refund_entries() == sorted(
        [(family.sofia.pk, lunch.pk, 2500), (family.mateo.pk, lunch.pk, 500)]
    )
    refund = Refund.objects.get()
    assert (refund.origin, refund.state, refund.line) == ("stripe", "succeeded", None)
    # Lunch money given back is not owed again: an adjustment per lunch line.
    assert sorted(
        LedgerEntry.objects.filter(kind=LedgerEntry.Kind.ADJUSTMENT).values_list(
            "student_id", "amount_cents"
        )
    ) == sorted([(family.sofia.pk, -2500), (family.mateo.pk, -500)])
    assert balance_cents(household=family.household) == 0


def test_a_failed_refund_writes_nothing(
    client, paid_checkout, stripe_double, finance_user, field_trip
):
    line = paid_checkout.lines.get(fee=field_trip)
    refund = refund_request(
        line=line, amount_cents=1850, reason="trip cancelled", actor=finance_user
    )
    failed = stripe_double.refund_set(refund.stripe_refund_id, "failed")
    assert (
        "failed" in deliver(client, stripe_double.event("refund.failed", failed)).json()["outcome"]
    )
    # A success delivered after the failure does not bring it back.
    late = stripe_double.event("refund.updated", {**failed, "status": "succeeded"})
    assert "already settled" in deliver(client, late).json()["outcome"]
    refund.refresh_from_db()
    assert refund.state == Refund.State.FAILED
    assert not LedgerEntry.objects.filter(refund=refund).exists()


def test_a_refund_that_fails_after_it_succeeded_is_reversed(
    client, paid_checkout, stripe_double, finance_user, field_trip, family
):
    line = paid_checkout.lines.get(fee=field_trip)
    refund = refund_request(
        line=line, amount_cents=1850, reason="trip cancelled", actor=finance_user
    )
    succeeded = stripe_double.refund_set(refund.stripe_refund_id, "succeeded")
    deliver(client, stripe_double.event("refund.updated", succeeded))
    assert balance_cents(household=family.household) == 1850
    failed = stripe_double.refund_set(refund.stripe_refund_id, "failed")
    deliver(client, stripe_double.event("refund.failed", failed))
    assert balance_cents(household=family.household) == 0


def test_a_refund_before_its_payment_waits_for_it(client, open_checkout, stripe_double, family):
    session = stripe_double.session_complete(open_checkout.stripe_session_id)
    refund = stripe_double.refund_make(open_checkout.stripe_session_id, 8350)
    early = deliver(client, stripe_double.event("refund.updated", refund))
    assert early.status_code == 200 and early.json()["outcome"].startswith("waiting")
    charge = stripe_double.event(
        "charge.refunded", stripe_double.charge_refunded(open_checkout.stripe_session_id)
    )
    assert deliver(client, charge).json()["outcome"].startswith("waiting")
    assert not LedgerEntry.objects.exists()

    assert (
        deliver(client, stripe_double.event("checkout.session.completed", session)).json()[
            "outcome"
        ]
        == "paid"
    )
    open_checkout.refresh_from_db()
    assert open_checkout.state == Checkout.State.PAID
    assert sum(amount for *_ids, amount in refund_entries()) == 8350
    # The lunch money given back ($65.00) is not owed again; the trip, refunded in
    # Stripe's dashboard without saying the family no longer owes it, is.
    assert balance_cents(household=family.household) == 1850
    assert not StripeEvent.objects.filter(processed_at__isnull=True).exists()
    # Stripe delivers the early ones again: nothing changes.
    deliver(client, stripe_double.event("refund.updated", refund))
    assert sum(amount for *_ids, amount in refund_entries()) == 8350
