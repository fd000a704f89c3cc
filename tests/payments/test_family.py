"""One family's whole payment: three children, lunch for two and a field trip for one,
in one checkout; the ledger and the balances agree with Stripe to the cent."""

from __future__ import annotations

from django.db.models import Sum

from payments.models import Checkout, LedgerEntry
from payments.selectors import balance_cents
from payments.services import checkout_create, fee_assess
from tests.payments.conftest import deliver
from tests.payments.factories import FeeFactory, child_add


def test_three_children_lunch_for_two_and_a_trip_for_one(
    client, family, lunch, field_trip, guardian_user, finance_user, stripe_double
):
    lucia = child_add(family.household, given_name="Lucía", grade="01")
    # A fee assessed before the family pays anything: it stays owed.
    technology = FeeFactory(title="Technology fee", amount_cents=3333)
    fee_assess(household=family.household, student=family.mateo, fee=technology, actor=finance_user)

    checkout = checkout_create(
        household=family.household,
        lines=[
            (family.sofia, lunch, 3001),
            (lucia, lunch, 4550),
            (family.sofia, field_trip, None),
        ],
        user=guardian_user,
    )
    assert checkout.total_cents == 3001 + 4550 + 1850 == 9401
    session = stripe_double.session_complete(checkout.stripe_session_id)
    assert session["amount_total"] == 9401
    assert (
        deliver(client, stripe_double.event("checkout.session.completed", session)).json()[
            "outcome"
        ]
        == "paid"
    )

    checkout.refresh_from_db()
    assert checkout.state == Checkout.State.PAID
    paid = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT, checkout=checkout)
    assert paid.aggregate(total=Sum("amount_cents"))["total"] == -9401
    assert paid.count() == 3
    assert balance_cents(household=family.household, student=family.sofia) == 0
    assert balance_cents(household=family.household, student=lucia) == 0
    assert balance_cents(household=family.household, student=family.mateo) == 3333
    assert balance_cents(household=family.household) == 3333
    assert balance_cents(household=family.household, fee=lunch) == 0
    assert balance_cents(household=family.household) == sum(
        LedgerEntry.objects.filter(household=family.household).values_list(
            "amount_cents", flat=True
        )
    )
    # Per child and fee, what Stripe was asked for is what the ledger says was paid.
    asked = {(line.student_id, line.fee_id): line.amount_cents for line in checkout.lines.all()}
    assert {(e.student_id, e.fee_id): -e.amount_cents for e in paid} == asked
