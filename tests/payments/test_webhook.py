"""Stripe's webhook, through HTTP as Stripe calls it: only signed, recent deliveries
count; each event acts once however often it arrives; the order of arrival does not
change where a checkout ends."""

from __future__ import annotations

import json
import logging
import time

import pytest
from django.core import mail
from django.urls import reverse

from payments.models import Checkout, LedgerEntry, StripeEvent
from payments.selectors import balance_cents
from tests.payments.conftest import deliver
from tests.payments.stripe_double import signature_header
from workflow.models import TransitionLog


def completed(double, checkout, **kwargs) -> str:
    return double.event(
        "checkout.session.completed", double.session_complete(checkout.stripe_session_id, **kwargs)
    )


def checkout_log(checkout) -> list[tuple[str, str, str]]:
    return [
        (row.transition, row.source, row.target)
        for row in TransitionLog.objects.filter(
            object_type="payments.checkout", object_id=str(checkout.pk)
        )
    ]


@pytest.mark.parametrize(
    "how",
    ["forged", "other secret", "missing", "stale", "garbled", "tampered body"],
)
def test_a_delivery_without_a_valid_recent_signature_is_refused(
    client, open_checkout, stripe_double, how, caplog
):
    body = completed(stripe_double, open_checkout)
    kwargs: dict = {}
    if how == "forged":
        kwargs["signature"] = f"t={int(time.time())},v1={'0' * 64}"
    elif how == "other secret":
        kwargs["secret"] = "whsec_someone_elses"
    elif how == "missing":
        kwargs["signature"] = ""
    elif how == "stale":
        kwargs["timestamp"] = int(time.time()) - 301
    elif how == "garbled":
        kwargs["signature"] = "nonsense"
    elif how == "tampered body":
        kwargs["signature"] = signature_header(body.replace("8350", "1"), "whsec_test_x")
    with caplog.at_level(logging.WARNING, logger="security"):
        response = deliver(client, body, **kwargs)
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()
    open_checkout.refresh_from_db()
    assert open_checkout.state == Checkout.State.OPEN
    assert not LedgerEntry.objects.exists()
    (record,) = [r for r in caplog.records if r.name == "security"]
    assert "Stripe webhook" in record.getMessage()
    assert "whsec_" not in record.getMessage()


def test_only_post(client, stripe_double):
    assert client.get(reverse("stripe_webhook")).status_code == 405


def test_a_completed_payment_pays_the_checkout_and_writes_the_ledger(
    client,
    open_checkout,
    stripe_double,
    family,
    lunch,
    field_trip,
    django_capture_on_commit_callbacks,
):
    body = completed(stripe_double, open_checkout)
    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(client, body)
    assert response.status_code == 200
    assert response.json()["outcome"] == "paid"
    checkout = Checkout.objects.get()
    assert checkout.state == Checkout.State.PAID
    assert checkout.stripe_payment_intent.startswith("pi_test_")
    payments = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT).order_by("amount_cents")
    assert [(p.student, p.fee, p.amount_cents) for p in payments] == [
        (family.mateo, lunch, -4000),
        (family.sofia, lunch, -2500),
        (family.sofia, field_trip, -1850),
    ]
    assert {p.stripe_payment_intent for p in payments} == {checkout.stripe_payment_intent}
    assert balance_cents(household=family.household) == 0
    assert checkout_log(checkout) == [("create", "", "open"), ("pay", "open", "paid")]
    event = StripeEvent.objects.get()
    assert event.processed_at is not None and event.outcome == "paid"
    assert event.checkout == checkout
    (receipt,) = mail.outbox
    assert receipt.to == ["jose.garcia@example.com"]
    assert "$83.50" in receipt.body


def test_five_deliveries_of_one_event_pay_once(
    client, open_checkout, stripe_double, family, django_capture_on_commit_callbacks
):
    body = completed(stripe_double, open_checkout)
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = [deliver(client, body).json()["outcome"] for _ in range(5)]
    assert outcomes == ["paid"] + ["duplicate"] * 4
    assert StripeEvent.objects.count() == 1
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT).count() == 3
    assert balance_cents(household=family.household) == 0
    assert len(checkout_log(open_checkout)) == 2
    assert len(mail.outbox) == 1


def test_the_same_payment_told_by_two_events_pays_once(client, open_checkout, stripe_double):
    session = stripe_double.session_complete(open_checkout.stripe_session_id)
    assert (
        deliver(client, stripe_double.event("checkout.session.completed", session)).json()[
            "outcome"
        ]
        == "paid"
    )
    again = deliver(
        client, stripe_double.event("checkout.session.async_payment_succeeded", session)
    )
    assert again.json()["outcome"] == "ignored: already paid"
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT).count() == 3


def test_expired_after_completed_changes_nothing(client, open_checkout, stripe_double):
    deliver(client, completed(stripe_double, open_checkout))
    expired = stripe_double.event(
        "checkout.session.expired",
        stripe_double.public(
            {**stripe_double.state.sessions[open_checkout.stripe_session_id], "status": "expired"}
        ),
    )
    assert deliver(client, expired).json()["outcome"] == "ignored: checkout is paid"
    open_checkout.refresh_from_db()
    assert open_checkout.state == Checkout.State.PAID


def test_completed_after_expired_pays(client, open_checkout, stripe_double, family):
    """Delivered out of order: the money was taken, so the checkout is paid."""
    session_id = open_checkout.stripe_session_id
    expired = stripe_double.event(
        "checkout.session.expired",
        stripe_double.public({**stripe_double.state.sessions[session_id], "status": "expired"}),
    )
    paid = completed(stripe_double, open_checkout)
    assert deliver(client, expired).json()["outcome"] == "expired"
    assert deliver(client, paid).json()["outcome"] == "paid"
    open_checkout.refresh_from_db()
    assert open_checkout.state == Checkout.State.PAID
    assert checkout_log(open_checkout)[1:] == [
        ("expire", "open", "expired"),
        ("pay", "expired", "paid"),
    ]
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT).count() == 3
    assert balance_cents(household=family.household) == 0


def test_a_session_expires(client, open_checkout, stripe_double):
    expired = stripe_double.event(
        "checkout.session.expired", stripe_double.session_expire(open_checkout.stripe_session_id)
    )
    assert deliver(client, expired).json()["outcome"] == "expired"
    open_checkout.refresh_from_db()
    assert open_checkout.state == Checkout.State.EXPIRED
    assert not LedgerEntry.objects.exists()


def test_a_bank_debit_waits_then_succeeds(client, open_checkout, stripe_double):
    session_id = open_checkout.stripe_session_id
    unpaid = completed(stripe_double, open_checkout, payment_status="unpaid")
    assert "waiting" in deliver(client, unpaid).json()["outcome"]
    open_checkout.refresh_from_db()
    assert open_checkout.state == Checkout.State.OPEN
    assert not LedgerEntry.objects.exists()
    succeeded = stripe_double.event(
        "checkout.session.async_payment_succeeded", stripe_double.session_paid_later(session_id)
    )
    assert deliver(client, succeeded).json()["outcome"] == "paid"
    open_checkout.refresh_from_db()
    assert open_checkout.state == Checkout.State.PAID


def test_a_bank_debit_fails(client, open_checkout, stripe_double):
    session = stripe_double.session_complete(
        open_checkout.stripe_session_id, payment_status="unpaid"
    )
    deliver(client, stripe_double.event("checkout.session.completed", session))
    failed = stripe_double.event("checkout.session.async_payment_failed", session)
    assert deliver(client, failed).json()["outcome"] == "failed"
    open_checkout.refresh_from_db()
    assert open_checkout.state == Checkout.State.FAILED
    assert not LedgerEntry.objects.exists()


def test_a_payment_of_another_amount_is_not_recorded(client, open_checkout, stripe_double, caplog):
    session = stripe_double.session_complete(open_checkout.stripe_session_id)
    session["amount_total"] = 100
    with caplog.at_level(logging.ERROR, logger="payments"):
        response = deliver(client, stripe_double.event("checkout.session.completed", session))
    assert response.json()["outcome"].startswith("refused")
    open_checkout.refresh_from_db()
    assert open_checkout.state == Checkout.State.OPEN
    assert not LedgerEntry.objects.exists()
    assert any("expects 8350" in r.getMessage() for r in caplog.records)


def test_a_session_we_lost_the_answer_of_is_found_by_our_ids(client, open_checkout, stripe_double):
    session = stripe_double.session_complete(open_checkout.stripe_session_id)
    Checkout.objects.filter(pk=open_checkout.pk).update(stripe_session_id=None)
    assert (
        deliver(client, stripe_double.event("checkout.session.completed", session)).json()[
            "outcome"
        ]
        == "paid"
    )
    open_checkout.refresh_from_db()
    assert open_checkout.stripe_session_id == session["id"]


def test_an_event_of_no_interest_is_stored_and_ignored(client, db, stripe_double):
    body = stripe_double.event("customer.created", {"id": "cus_1", "object": "customer"})
    assert deliver(client, body).json()["outcome"] == "ignored: customer.created"
    assert StripeEvent.objects.get().payload == json.loads(body)


def test_a_delivery_costs_a_few_queries_however_many_lines(
    client, family, lunch, field_trip, guardian_user, stripe_double, django_assert_max_num_queries
):
    from payments.services import checkout_create
    from tests.payments.factories import child_add

    children = [family.sofia, family.mateo] + [
        child_add(family.household, given_name=f"Child {n}") for n in range(4)
    ]
    checkout = checkout_create(
        household=family.household,
        lines=[(child, lunch, 1000 + n) for n, child in enumerate(children)],
        user=guardian_user,
    )
    body = completed(stripe_double, checkout)
    with django_assert_max_num_queries(14):  # the receipt's outbox row included
        assert deliver(client, body).json()["outcome"] == "paid"
    with django_assert_max_num_queries(4):
        assert deliver(client, body).json()["outcome"] == "duplicate"
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT).count() == 6


def test_a_flood_from_one_address_is_turned_away_and_changes_nothing(
    client, open_checkout, stripe_double, settings, caplog
):
    settings.STRIPE_WEBHOOK_IP_LIMITS = [(3, 60)]
    body = completed(stripe_double, open_checkout)
    forged = [deliver(client, body, secret="whsec_forged") for _ in range(3)]
    assert [response.status_code for response in forged] == [400, 400, 400]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="security"):
        turned_away = deliver(client, body)
    assert turned_away.status_code == 429 and turned_away["Retry-After"] == "60"
    refusals = [r.getMessage() for r in caplog.records if r.name.startswith("security")]
    assert len(refusals) == 1 and "too many deliveries" in refusals[0], refusals  # once
    assert not StripeEvent.objects.exists()
    assert Checkout.objects.get().state == Checkout.State.OPEN
    # Another address (Stripe's next attempt comes from elsewhere, or later) is heard.
    other = client.post(
        reverse("stripe_webhook"),
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature_header(body, "whsec_test_only_for_the_payment_tests"),
        REMOTE_ADDR="203.0.113.9",
    )
    assert other.status_code == 200
    assert Checkout.objects.get().state == Checkout.State.PAID
