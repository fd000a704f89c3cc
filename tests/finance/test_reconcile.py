"""Reconciliation of Stripe payouts with the ledger, against the local Stripe double:
2,000 payments, 100 refunds and Stripe's fees, with five planted mismatches of
different kinds that the reconciliation must find, and nothing else."""

from __future__ import annotations

import datetime

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from finance.models import MISMATCH_KINDS, Payout, ReconciliationItem, ReconciliationRun
from finance.services import item_explain, reconcile_payouts
from payments.models import Checkout, LedgerEntry
from payments.stripe_gateway import PaymentServiceUnavailable
from registration.models import Household
from tests.finance.world import Refunded, ledger_build, stripe_build
from workflow.models import AuditEvent

Kind = ReconciliationItem.Kind


def _open() -> dict[str, str]:
    """Open mismatches: key → kind."""
    return dict(
        ReconciliationItem.objects.filter(
            kind__in=MISMATCH_KINDS, explained_at__isnull=True
        ).values_list("key", "kind")
    )


def _payment_written(*, household, student, fee, intent, amount, payer, created_at=None):
    """A paid checkout in the ledger, as the webhook writes it."""
    checkout = Checkout.objects.create(
        household=household,
        created_by=payer,
        total_cents=amount,
        expires_at=timezone.now(),
        state=Checkout.State.PAID,
        stripe_payment_intent=intent,
    )
    LedgerEntry.objects.create(
        kind=LedgerEntry.Kind.PAYMENT,
        amount_cents=-amount,
        household=household,
        student=student,
        fee=fee,
        checkout=checkout,
        stripe_payment_intent=intent,
        created_at=created_at or timezone.now(),
    )
    return checkout


def _plant(double, fees, family, guardian_user, *, payments, refunds, per_payout):
    """``payments`` payments (some of two lines), ``refunds`` refunds, Stripe's fees,
    and five mismatches: a charge the ledger lacks, a refund whose amount differs, a
    charge whose amount differs, a payment of 10 days ago in no payout, and a
    dispute's adjustment. The mismatches go out in the last payout."""
    stripe_double = double
    lunch = fees[0]
    ledger = ledger_build(
        payer=guardian_user, fee_ids=[f.pk for f in fees], payments=payments, refunds=refunds
    )
    # A refund of $5.00 in the ledger that Stripe made for $5.50.
    odd = ledger.payments[10]
    odd_refund = Refunded(
        stripe_refund="re_world_odd",
        payment_intent=odd.payment_intent,
        amount_cents=500,
        household_id=odd.household_id,
        checkout_id=odd.checkout_id,
    )
    LedgerEntry.objects.create(
        kind=LedgerEntry.Kind.REFUND,
        amount_cents=500,
        household_id=odd.household_id,
        student=family.sofia,
        fee=lunch,
        checkout_id=odd.checkout_id,
        stripe_payment_intent=odd.payment_intent,
        stripe_refund="re_world_odd",
    )
    # A charge of $25.00 in the ledger that Stripe took as $25.01.
    _payment_written(
        household=family.household,
        student=family.mateo,
        fee=lunch,
        intent="pi_world_cent",
        amount=2500,
        payer=guardian_user,
    )
    # A payment written 10 days ago that reached no payout.
    lost = _payment_written(
        household=family.household,
        student=family.sofia,
        fee=lunch,
        intent="pi_world_lost",
        amount=4000,
        payer=guardian_user,
        created_at=timezone.now() - datetime.timedelta(days=10),
    )
    extra = [
        stripe_double.charge_transaction(payment_intent="pi_world_ghost", amount=1800, fee=82),
        stripe_double.refund_transaction(
            amount=550, payment_intent=odd.payment_intent, refund_id="re_world_odd"
        ),
        stripe_double.charge_transaction(payment_intent="pi_world_cent", amount=2501, fee=103),
        stripe_double.adjustment_transaction(
            amount=-1500, description="Dispute withdrawal", category="dispute"
        ),
    ]
    side = stripe_build(stripe_double, ledger, per_payout=per_payout, own_fees=3, extra=extra)
    ledger.refunds.append(odd_refund)
    return {"ledger": ledger, "side": side, "extra": extra, "lost": lost}


@pytest.fixture
def planted(stripe_double, fees, family, guardian_user, settings):
    """What the issue asks for: 2,000 payments and 100 refunds."""
    settings.FINANCE_UNPAID_OUT_DAYS = 7
    return _plant(
        stripe_double, fees, family, guardian_user, payments=2000, refunds=100, per_payout=600
    )


@pytest.fixture
def planted_small(stripe_double, fees, family, guardian_user, settings):
    """The same, ten times smaller, for what happens on later runs."""
    settings.FINANCE_UNPAID_OUT_DAYS = 7
    return _plant(
        stripe_double, fees, family, guardian_user, payments=200, refunds=10, per_payout=60
    )


def test_finds_exactly_the_five_planted_mismatches(planted, stripe_double):
    run = reconcile_payouts()

    ghost, odd_refund, cent, dispute = (t["id"] for t in planted["extra"])
    assert _open() == {
        ghost: Kind.STRIPE_ONLY,
        odd_refund: Kind.AMOUNT_MISMATCH,
        cent: Kind.AMOUNT_MISMATCH,
        "ledger:payment:pi_world_lost": Kind.LEDGER_ONLY,
        dispute: Kind.UNMATCHED,
    }
    side = planted["side"]
    assert run.outcome == "finished"
    assert run.payouts == len(side.payouts) == 4
    assert run.new_mismatches == 5 and run.open_mismatches == 5
    items = ReconciliationItem.objects
    assert items.filter(kind=Kind.MATCHED).count() == 2000 + 100
    assert items.filter(kind=Kind.FEE).count() == 3
    # The amounts of each mismatch, to the cent, and who it concerns.
    by_key = {i.key: i for i in items.filter(key__in=_open())}
    assert (by_key[odd_refund].amount_cents, by_key[odd_refund].ledger_cents) == (-550, -500)
    assert by_key[odd_refund].difference_cents == -50
    assert (by_key[cent].amount_cents, by_key[cent].ledger_cents) == (2501, 2500)
    assert by_key[cent].household.sourced_id == "hh-001"
    assert by_key[ghost].ledger_cents is None and by_key[ghost].difference_cents == 1800
    lost = by_key["ledger:payment:pi_world_lost"]
    assert (lost.ledger_cents, lost.payout, lost.checkout) == (4000, None, planted["lost"])
    # Each payout's totals are Stripe's, to the cent, and add up to what reached the bank.
    payouts = list(Payout.objects.order_by("stripe_created_at", "pk"))
    planted_charges = side.charges_cents + 1800 + 2501
    assert sum(p.charges_cents for p in payouts) == planted_charges
    assert sum(p.refunds_cents for p in payouts) == side.refunds_cents + 550
    assert sum(p.fees_cents for p in payouts) == side.fees_cents + 82 + 103
    assert sum(p.other_cents for p in payouts) == -1500
    for payout in payouts:
        assert payout.net_cents == payout.amount_cents
        assert payout.net_cents == (
            payout.charges_cents - payout.refunds_cents - payout.fees_cents + payout.other_cents
        )
    assert [p.status for p in payouts] == [
        Payout.Status.MATCHED,
        Payout.Status.MATCHED,
        Payout.Status.MATCHED,
        Payout.Status.OPEN,
    ]
    assert payouts[-1].open_count == 4
    # Listed with the library's pagination, each source expanded.
    pages = stripe_double.calls("GET", "/v1/balance_transactions")
    listed = [len(ids) for ids in stripe_double.state.paid_out.values()]
    assert listed == [601, 601, 601, 308]  # with each payout's own transaction
    assert len(pages) == sum(-(-count // 100) for count in listed)
    assert all(r.query.get("expand[0]") == "data.source" for r in pages)
    assert {r.query["payout"] for r in pages} == {p.stripe_payout_id for p in payouts}


def test_running_again_changes_nothing_and_keeps_explanations(planted_small, finance_user):
    reconcile_payouts()
    dispute = ReconciliationItem.objects.get(kind=Kind.UNMATCHED)
    item_explain(
        item=dispute, note="Chargeback on a lunch payment; see case 1182.", actor=finance_user
    )
    before = list(
        ReconciliationItem.objects.order_by("key").values_list(
            "key", "kind", "amount_cents", "ledger_cents", "updated_at", "explanation"
        )
    )

    again = reconcile_payouts()

    after = list(
        ReconciliationItem.objects.order_by("key").values_list(
            "key", "kind", "amount_cents", "ledger_cents", "updated_at", "explanation"
        )
    )
    assert after == before  # not even rewritten
    assert (again.new_mismatches, again.resolved, again.open_mismatches) == (0, 0, 4)
    dispute.refresh_from_db()
    assert dispute.explanation == "Chargeback on a lunch payment; see case 1182."
    assert dispute.explained_by == finance_user
    assert ReconciliationRun.objects.count() == 2


def test_a_late_payment_resolves_its_mismatch_without_deleting_it(
    planted_small, family, fees, guardian_user
):
    reconcile_payouts()
    ghost = ReconciliationItem.objects.get(kind=Kind.STRIPE_ONLY)
    payout = ghost.payout
    # The webhook of that payment finally arrives.
    _payment_written(
        household=family.household,
        student=family.sofia,
        fee=fees[1],
        intent="pi_world_ghost",
        amount=1800,
        payer=guardian_user,
    )

    run = reconcile_payouts()

    ghost.refresh_from_db()
    assert (ghost.kind, ghost.mismatch_kind) == (Kind.MATCHED, Kind.STRIPE_ONLY)
    assert ghost.resolved_at is not None and ghost.ledger_cents == 1800
    assert ghost.household == family.household
    assert run.resolved == 1 and run.open_mismatches == 4
    payout.refresh_from_db()
    assert payout.open_count == 3


def test_a_payment_that_reaches_a_later_payout_is_resolved(planted_small, stripe_double):
    reconcile_payouts()
    assert "ledger:payment:pi_world_lost" in _open()
    stripe_double.payout_plant(
        [stripe_double.charge_transaction(payment_intent="pi_world_lost", amount=4000, fee=146)]
    )

    reconcile_payouts()

    lost = ReconciliationItem.objects.get(key="ledger:payment:pi_world_lost")
    assert (lost.kind, lost.mismatch_kind) == (Kind.MATCHED, Kind.LEDGER_ONLY)
    assert lost.resolved_at is not None
    assert "ledger:payment:pi_world_lost" not in _open()


def test_explaining_the_last_open_mismatch_of_a_payout_marks_it_explained(
    planted_small, finance_user
):
    reconcile_payouts()
    payout = Payout.objects.get(status=Payout.Status.OPEN)
    for item in payout.items.filter(kind__in=MISMATCH_KINDS):
        item_explain(item=item, note=f"Looked at {item.key}.", actor=finance_user)

    payout.refresh_from_db()
    assert (payout.status, payout.open_count, payout.mismatch_count) == (
        Payout.Status.EXPLAINED,
        0,
        4,
    )
    events = AuditEvent.objects.filter(object_type="finance.reconciliationitem")
    assert events.count() == 4
    assert AuditEvent.objects.filter(
        object_type="finance.payout",
        object_id=str(payout.pk),
        detail__status=[Payout.Status.OPEN, Payout.Status.EXPLAINED],
    ).exists()


# -- smaller worlds -----------------------------------------------------------------------


@pytest.fixture
def small(stripe_double, fees, guardian_user):
    ledger = ledger_build(payer=guardian_user, fee_ids=[f.pk for f in fees], payments=30, refunds=3)
    return ledger


def test_a_failed_refund_is_matched_with_the_adjustment_that_reversed_it(
    small, stripe_double, family, fees
):
    refund = small.refunds[0]
    LedgerEntry.objects.create(
        kind=LedgerEntry.Kind.ADJUSTMENT,
        amount_cents=-refund.amount_cents,
        household_id=refund.household_id,
        checkout_id=refund.checkout_id,
        stripe_payment_intent=refund.payment_intent,
        stripe_refund=refund.stripe_refund,
        note="the refund failed after it succeeded",
    )
    failure = stripe_double._balance_transaction(
        type_="refund_failure",
        category="refund_failure",
        amount=refund.amount_cents,
        fee=0,
        source={
            "id": refund.stripe_refund,
            "object": "refund",
            "payment_intent": refund.payment_intent,
            "charge": None,
            "metadata": {},
        },
        description="REFUND FAILURE",
        created=None,
    )
    stripe_build(stripe_double, small, extra=[failure])

    reconcile_payouts()

    item = ReconciliationItem.objects.get(key=failure["id"])
    assert (item.kind, item.ledger_cents, item.amount_cents) == (
        Kind.MATCHED,
        refund.amount_cents,
        refund.amount_cents,
    )
    assert _open() == {}


def test_a_failed_payout_reached_no_bank(small, stripe_double):
    double = stripe_double
    payout = double.payout_plant(
        [
            double.charge_transaction(payment_intent=p.payment_intent, amount=p.amount_cents)
            for p in small.payments
        ],
        status="failed",
    )

    reconcile_payouts()

    assert Payout.objects.get(stripe_payout_id=payout["id"]).status == Payout.Status.NOT_PAID


def test_the_command_reads_the_payouts_since_a_day(small, stripe_double):
    stripe_build(stripe_double, small)

    call_command("reconcile_payouts", "--since", "2026-01-15")

    (listing,) = stripe_double.calls("GET", "/v1/payouts")
    start = int(datetime.datetime(2026, 1, 15, tzinfo=datetime.UTC).timestamp())
    assert listing.query["created[gte]"] == str(start)
    run = ReconciliationRun.objects.get()
    assert (run.since, run.outcome, run.actor_label) == (
        datetime.date(2026, 1, 15),
        "finished",
        "reconcile_payouts command",
    )


def test_the_command_refuses_a_bad_date(db):
    with pytest.raises(CommandError, match="--since must be a date"):
        call_command("reconcile_payouts", "--since", "last tuesday")


def test_stripe_not_answering_stops_the_run_and_says_so(small, stripe_double):
    stripe_build(stripe_double, small)
    stripe_double.fail_next(500, times=5)

    with pytest.raises(CommandError, match="Stripe could not be read"):
        call_command("reconcile_payouts")

    run = ReconciliationRun.objects.get()
    assert run.outcome.startswith("stopped:") and run.finished_at is not None
    assert not ReconciliationItem.objects.exists()


def test_the_daily_task_looks_back_a_number_of_days(small, stripe_double, settings):
    from finance.tasks import payouts_reconcile_task

    settings.FINANCE_RECONCILE_DAYS = 10
    stripe_build(stripe_double, small)

    run_id = payouts_reconcile_task.delay().get()

    run = ReconciliationRun.objects.get(pk=run_id)
    assert run.since == timezone.localdate() - datetime.timedelta(days=10)
    assert run.actor_label == "daily reconciliation"
    assert ReconciliationItem.objects.filter(kind=Kind.MATCHED).count() == 33
    assert "finance.tasks.payouts_reconcile_task" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }


def test_the_local_stripe_of_the_demo_has_nothing_to_reconcile(small, settings):
    settings.STRIPE_MODE = "local"

    run = reconcile_payouts()

    assert run.payouts == 0 and "local Stripe" in run.outcome
    assert not ReconciliationItem.objects.exists()


def test_a_charge_without_ledger_names_its_checkout_from_stripe(
    small, stripe_double, family, guardian_user
):
    """The webhook never arrived, but the charge carries our checkout's ids."""
    checkout = Checkout.objects.create(
        household=family.household,
        created_by=guardian_user,
        total_cents=1850,
        expires_at=timezone.now(),
    )
    extra = [
        stripe_double.charge_transaction(
            payment_intent="pi_world_unknown",
            amount=1850,
            metadata={
                "checkout_id": str(checkout.pk),
                "checkout_reference": str(checkout.reference),
                "household_id": str(checkout.household_id),
            },
        )
    ]
    stripe_build(stripe_double, small, extra=extra)

    reconcile_payouts()

    item = ReconciliationItem.objects.get(kind=Kind.STRIPE_ONLY)
    assert (item.checkout, item.household) == (checkout, Household.objects.get(sourced_id="hh-001"))


def test_unavailable_is_what_the_task_retries(small, stripe_double):
    stripe_build(stripe_double, small)
    stripe_double.fail_next(503, times=1)
    with pytest.raises(PaymentServiceUnavailable):
        reconcile_payouts()
