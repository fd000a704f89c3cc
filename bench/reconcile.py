"""Balance transactions reconciled against the ledger per second, against a Python
dictionary join of the same rows pre-loaded in lists.

For each database (SQLite, and PostgreSQL on a throwaway cluster) the benchmark
imports a generated district into a fresh database and writes, in bulk, N paid
checkouts' ledger entries (about 96% of N charges, one or two lines each, 3%
refunds) with their Stripe side built by the tests' local Stripe double
(``tests/finance/world.py``): a charge with Stripe's fee per payment, a refund per
refund, Stripe's own fees (1%), and five planted mismatches, paid out 1,000 at a
time; on PostgreSQL the tables are then analyzed, as autovacuum does after a bulk
load. Then:

1. times ``finance.services.payout_reconcile`` over every payout, then the search for
   ledger money in no payout: the whole comparison with the ledger and the writing of
   N items and the payouts' totals (the value);
2. times the same again: a second run that finds nothing changed (``rerun_seconds``);
3. times the baseline: the ledger's payment and refund entries pre-loaded into Python
   lists before the clock starts, summed into dictionaries by payment intent and by
   refund id, and each transaction looked up and compared (no database, nothing
   written); the median of three rounds;
4. as a detail, times reading a sample of the transactions from the double over HTTP
   through ``payments.stripe_gateway`` (the official library, auto-pagination,
   sources expanded): ``fetch_ms_per_transaction``. Reading from Stripe is not in the
   value: it is Stripe's pace (100 a page), not ours, and the same on every database.

value    = transactions/s reconciled (step 1)
baseline = transactions/s of the dictionary join (step 3)
ratio    = value ÷ baseline = baseline seconds ÷ reconciliation seconds

    python bench/reconcile.py [--size TRANSACTIONS] [--quick]
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from _harness import (
    _script,
    child_environment,
    command_line,
    migrated,
    on_both_databases,
    synthetic_district,
)

PER_PAYOUT = 1000
FETCH_SAMPLE = 2000


def _world(size: int) -> tuple[Any, Any, list[tuple[Any, list[Any]]]]:
    """The ledger and Stripe's side of ``size`` balance transactions, and each payout
    with its transactions as the gateway hands them over."""
    from django.contrib.auth.hashers import make_password

    from payments import stripe_gateway
    from payments.models import Fee
    from registration.models import User
    from tests.finance.world import ledger_build, stripe_build
    from tests.payments.stripe_double import StripeDouble

    fees = [
        Fee.objects.create(
            kind=Fee.Kind.LUNCH_PREPAY,
            title="Lunch account",
            min_amount_cents=500,
            max_amount_cents=20_000,
            gl_code="5300-NUTRITION",
        ),
        Fee.objects.create(
            kind=Fee.Kind.REQUIRED, title="Activity fee", amount_cents=4000, gl_code="4100-FEES"
        ),
    ]
    payer = User.objects.create(
        username="bench-guardian", email="bench@example.org", password=make_password(None)
    )
    payments = size * 96 // 100
    refunds = size * 3 // 100
    own_fees = size - payments - refunds - 5
    ledger = ledger_build(
        payer=payer, fee_ids=[f.pk for f in fees], payments=payments, refunds=refunds, days=30
    )
    double = StripeDouble()
    extra = [
        double.charge_transaction(payment_intent="pi_bench_unknown", amount=1800, fee=82),
        double.charge_transaction(
            payment_intent=ledger.payments[0].payment_intent,
            amount=ledger.payments[0].amount_cents + 1,
            fee=82,
        ),
        double.refund_transaction(amount=999, payment_intent="pi_bench_unknown"),
        double.adjustment_transaction(amount=-1500, description="Dispute withdrawal"),
        double.fee_transaction(amount=125),
    ]
    side = stripe_build(double, ledger, per_payout=PER_PAYOUT, own_fees=own_fees, extra=extra)
    payouts = [
        (
            stripe_gateway._payout(payout),
            [
                stripe_gateway._balance_transaction(listed)
                for listed in double.balance_transactions_listed(payout["id"], expand=True)
            ],
        )
        for payout in side.payouts
    ]
    return double, side, payouts


def _reconcile(payouts: list[tuple[Any, list[Any]]]) -> float:
    from django.utils import timezone

    from finance.services import _ledger_only_find, _payout_store, payout_reconcile

    started = time.perf_counter()
    for found, transactions in payouts:
        payout_reconcile(payout=_payout_store(found), transactions=transactions)
    _ledger_only_find(since=None, now=timezone.now())
    return time.perf_counter() - started


def _baseline(
    payouts: list[tuple[Any, list[Any]]], rows: list[tuple[Any, ...]]
) -> tuple[float, int]:
    """The same comparison as a dictionary join over lists already in memory."""
    started = time.perf_counter()
    paid: dict[str, int] = defaultdict(int)
    refunded: dict[str, int] = defaultdict(int)
    for kind, intent, refund, amount in rows:
        if kind == "payment":
            paid[intent] -= amount
        else:
            refunded[refund] -= amount
    matched = 0
    for _found, transactions in payouts:
        for t in transactions:
            if t.type == "charge":
                matched += paid.get(t.payment_intent) == t.amount
            elif t.type == "refund":
                matched += refunded.get(t.refund) == t.amount
    return time.perf_counter() - started, matched


def _fetch_sample(double: Any, side: Any) -> tuple[float, int]:
    """Read the first payouts' transactions (about ``FETCH_SAMPLE``) from the double
    over HTTP, as the reconciliation does."""
    from django.conf import settings

    from payments import stripe_gateway

    settings.STRIPE_MODE = "stripe"
    settings.STRIPE_API_BASE = double.base_url
    settings.STRIPE_SECRET_KEY = "sk_test_bench"
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    read = 0
    started = time.perf_counter()
    for payout in side.payouts:
        read += len(stripe_gateway.balance_transactions_of_payout(payout_id=payout["id"]))
        if read >= FETCH_SAMPLE:
            break
    return time.perf_counter() - started, read


def measure(size: int, bundle: Path) -> dict[str, object]:
    """Runs inside a process whose DATABASE_URL names an empty database."""
    import logging

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.db import connection

    from finance.models import MISMATCH_KINDS, ReconciliationItem
    from payments.models import LedgerEntry
    from registration.services import roster_import

    logging.getLogger("stripe").setLevel(logging.WARNING)
    migrated()
    report = roster_import(path=bundle)
    assert report.ok, [str(p) for p in report.problems.errors[:5]]
    double, side, payouts = _world(size)
    if connection.vendor == "postgresql":
        # The ledger was loaded in bulk a moment ago: give the planner its statistics,
        # as autovacuum does after a large load in production.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    transactions = sum(len(t) - 1 for _p, t in payouts)  # less each payout's own

    reconcile_seconds = _reconcile(payouts)
    items = ReconciliationItem.objects
    assert items.count() == transactions, (items.count(), transactions)
    open_ = items.filter(kind__in=MISMATCH_KINDS).count()
    assert open_ == 4, open_  # the five planted, less the Stripe fee (not a mismatch)
    rerun_seconds = _reconcile(payouts)
    assert items.filter(kind__in=MISMATCH_KINDS).count() == 4

    rows = list(
        LedgerEntry.objects.filter(kind__in=["payment", "refund"]).values_list(
            "kind", "stripe_payment_intent", "stripe_refund", "amount_cents"
        )
    )
    rounds = [_baseline(payouts, rows) for _ in range(3)]
    baseline_seconds = statistics.median(seconds for seconds, _matched in rounds)
    matched = items.filter(kind="matched").count()
    assert rounds[0][1] == matched, (rounds[0][1], matched)

    fetch_seconds, fetched = _fetch_sample(double, side)
    double.close()
    connection.close()
    return {
        "size": transactions,
        "value": round(transactions / reconcile_seconds, 1),
        "baseline": round(transactions / baseline_seconds, 1),
        "unit": "transactions/s",
        "ratio": round(baseline_seconds / reconcile_seconds, 4),
        "reconcile_seconds": round(reconcile_seconds, 3),
        "rerun_seconds": round(rerun_seconds, 3),
        "baseline_seconds": round(baseline_seconds, 4),
        "payouts": len(payouts),
        "matched": matched,
        "mismatches": open_,
        "fetch_ms_per_transaction": round(1000 * fetch_seconds / fetched, 3),
        "fetched": fetched,
    }


def generate(size: int, folder: Path) -> None:
    synthetic_district(folder, households=40)


def _on_sqlite(size: int) -> list[dict[str, object]]:
    """The quick run: SQLite only, so that ``make bench-quick`` spends little here."""
    with tempfile.TemporaryDirectory() as folder:
        temporary = Path(folder)
        bundle = temporary / "bundle"
        _script(__file__, "--generate", "--size", str(size), "--bundle", str(bundle))
        environment = child_environment(f"sqlite:///{temporary / 'bench.sqlite3'}", temporary)
        output = _script(
            __file__, "--measure", "--size", str(size), "--bundle", str(bundle), env=environment
        )
    return [{"name": "reconcile", "database": "sqlite", **json.loads(output.splitlines()[-1])}]


def run(*, quick: bool) -> list[dict[str, object]]:
    """Every figure of this benchmark, for bench/run.py: 100,000 transactions on both
    databases; the quick run 2,000 on SQLite."""
    if quick:
        return _on_sqlite(2000)
    return on_both_databases(name="reconcile", script=__file__, size=100_000)


if __name__ == "__main__":
    command_line(__doc__, generate=generate, measure=measure, run=run, default=100_000)
