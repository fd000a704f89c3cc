"""Money in bulk for the reconciliation tests and ``bench/reconcile.py``: paid
checkouts with their ledger entries, refunds, and the same money on the Stripe side
(charges with Stripe's fee, refunds, Stripe's own fees) paid out in payouts by the
local Stripe double.

Rows are written with ``bulk_create``, so thousands of payments take a second or two.
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from payments.models import Checkout, LedgerEntry, Refund
from registration.models import HouseholdStudent

BATCH = 2000


@dataclass(frozen=True)
class Payment:
    payment_intent: str
    amount_cents: int  # the checkout's total
    household_id: int
    checkout_id: int
    created_at: datetime.datetime


@dataclass(frozen=True)
class Refunded:
    stripe_refund: str
    payment_intent: str
    amount_cents: int
    household_id: int
    checkout_id: int


@dataclass
class Ledger:
    payments: list[Payment] = field(default_factory=list)
    refunds: list[Refunded] = field(default_factory=list)


def stripe_fee(amount_cents: int) -> int:
    """Stripe's card price: 2.9% + 30¢."""
    return round(amount_cents * 0.029) + 30


def households_with_children(limit: int | None = None) -> list[tuple[int, list[int]]]:
    """(household id, its children's ids) of the district, in order."""
    children: dict[int, list[int]] = {}
    for household_id, student_id in HouseholdStudent.objects.order_by(
        "household_id", "student_id"
    ).values_list("household_id", "student_id"):
        children.setdefault(household_id, []).append(student_id)
    found = list(children.items())
    return found[:limit] if limit else found


def ledger_build(
    *,
    payer: Any,
    fee_ids: Sequence[int],
    payments: int,
    refunds: int,
    prefix: str = "pi_world",
    now: datetime.datetime | None = None,
    days: int = 20,
    seed: int = 7,
) -> Ledger:
    """``payments`` paid checkouts spread over the last ``days`` days (one or two
    lines each, of the district's children and ``fee_ids``), each with its payment
    intent and PAYMENT entries; then ``refunds`` of them partly refunded, with their
    ``Refund`` rows and REFUND entries."""
    rng = random.Random(seed)
    now = now or timezone.now()
    homes = households_with_children()
    checkouts = []
    plans = []
    for index in range(payments):
        household_id, children = homes[index % len(homes)]
        lines = [
            (student_id, fee_ids[(index + n) % len(fee_ids)], rng.randrange(500, 9000))
            for n, student_id in enumerate(children[: 1 + index % 2])
        ]
        created = now - datetime.timedelta(days=rng.uniform(0.2, days), seconds=index)
        total = sum(amount for _s, _f, amount in lines)
        intent = f"{prefix}_{index:06d}"
        checkouts.append(
            Checkout(
                household_id=household_id,
                created_by=payer,
                total_cents=total,
                expires_at=created + datetime.timedelta(hours=1),
                state=Checkout.State.PAID,
                stripe_session_id=f"cs_{intent[3:]}",
                stripe_payment_intent=intent,
                paid_at=created,
            )
        )
        plans.append((intent, household_id, lines, created, total))
    Checkout.objects.bulk_create(checkouts, batch_size=BATCH)
    ledger = Ledger()
    entries = []
    for checkout, (intent, household_id, lines, created, total) in zip(
        checkouts, plans, strict=True
    ):
        ledger.payments.append(
            Payment(
                payment_intent=intent,
                amount_cents=total,
                household_id=household_id,
                checkout_id=checkout.pk,
                created_at=created,
            )
        )
        for student_id, fee_id, amount in lines:
            common = {
                "household_id": household_id,
                "student_id": student_id,
                "fee_id": fee_id,
                "checkout_id": checkout.pk,
                "stripe_payment_intent": intent,
                "created_at": created,
                "actor_label": "Stripe",
            }
            entries.append(
                LedgerEntry(kind=LedgerEntry.Kind.ASSESSMENT, amount_cents=amount, **common)
            )
            entries.append(
                LedgerEntry(kind=LedgerEntry.Kind.PAYMENT, amount_cents=-amount, **common)
            )
    refund_rows = []
    refund_plans = []
    for number, payment in enumerate(rng.sample(ledger.payments, refunds)):
        amount = max(100, payment.amount_cents // 3)
        stripe_id = f"re_{payment.payment_intent[3:]}_{number}"
        refund_rows.append(
            Refund(
                checkout_id=payment.checkout_id,
                amount_cents=amount,
                origin=Refund.Origin.STRIPE,
                state=Refund.State.SUCCEEDED,
                stripe_refund_id=stripe_id,
                reason="made in Stripe",
                settled_at=payment.created_at + datetime.timedelta(hours=5),
            )
        )
        refund_plans.append((payment, amount, stripe_id))
    Refund.objects.bulk_create(refund_rows, batch_size=BATCH)
    first_line = {e.checkout_id: e for e in entries if e.kind == LedgerEntry.Kind.PAYMENT}
    for refund, (payment, amount, stripe_id) in zip(refund_rows, refund_plans, strict=True):
        line = first_line[payment.checkout_id]
        entries.append(
            LedgerEntry(
                kind=LedgerEntry.Kind.REFUND,
                amount_cents=amount,
                household_id=payment.household_id,
                student_id=line.student_id,
                fee_id=line.fee_id,
                checkout_id=payment.checkout_id,
                refund_id=refund.pk,
                stripe_payment_intent=payment.payment_intent,
                stripe_refund=stripe_id,
                created_at=payment.created_at + datetime.timedelta(hours=5),
                actor_label="Stripe",
            )
        )
        ledger.refunds.append(
            Refunded(
                stripe_refund=stripe_id,
                payment_intent=payment.payment_intent,
                amount_cents=amount,
                household_id=payment.household_id,
                checkout_id=payment.checkout_id,
            )
        )
    LedgerEntry.objects.bulk_create(entries, batch_size=BATCH)
    return ledger


@dataclass
class StripeSide:
    payouts: list[dict[str, Any]] = field(default_factory=list)
    charges_cents: int = 0
    refunds_cents: int = 0
    fees_cents: int = 0  # Stripe's fees on charges and its own fee transactions


def stripe_build(
    double: Any,
    ledger: Ledger,
    *,
    per_payout: int = 500,
    own_fees: int = 2,
    extra: Sequence[dict[str, Any]] = (),
    paid_out_at: datetime.datetime | None = None,
) -> StripeSide:
    """The same money in Stripe: a charge (with Stripe's fee) per payment, a refund
    per refund, ``own_fees`` Stripe fee transactions, and ``extra`` balance
    transactions planted by the caller, paid out ``per_payout`` at a time (at
    ``paid_out_at``, or now)."""
    side = StripeSide()
    transactions: list[dict[str, Any]] = []
    for payment in ledger.payments:
        fee = stripe_fee(payment.amount_cents)
        transactions.append(
            double.charge_transaction(
                payment_intent=payment.payment_intent,
                amount=payment.amount_cents,
                fee=fee,
                created=int(payment.created_at.timestamp()),
            )
        )
        side.charges_cents += payment.amount_cents
        side.fees_cents += fee
    for refund in ledger.refunds:
        transactions.append(
            double.refund_transaction(
                amount=refund.amount_cents,
                payment_intent=refund.payment_intent,
                refund_id=refund.stripe_refund,
            )
        )
        side.refunds_cents += refund.amount_cents
    for number in range(own_fees):
        transactions.append(double.fee_transaction(amount=150 + number))
        side.fees_cents += 150 + number
    transactions.extend(extra)
    for start in range(0, len(transactions), per_payout):
        side.payouts.append(
            double.payout_plant(
                transactions[start : start + per_payout],
                created=int(paid_out_at.timestamp()) if paid_out_at else None,
            )
        )
    return side
