"""Every write of the finance app: reconciling Stripe payouts with the ledger, and
finance's explanations of what does not match.

How a payout is reconciled
--------------------------
``reconcile_payouts`` lists the payouts (``--since``: those created on or after a
day) and each payout's balance transactions from Stripe, through
``payments.stripe_gateway`` (the library's auto-pagination, each transaction's source
expanded). Each balance transaction becomes one ``ReconciliationItem``, keyed on its
``txn_…`` id:

- a charge (types ``charge``, ``payment``) is compared with the ledger's PAYMENT
  entries of the same payment intent (their sum, negated; a charge without a payment
  intent: the entries of the same charge id);
- a refund (``refund``, ``payment_refund``) with the REFUND entries of the same
  ``stripe_refund`` (a negative amount in Stripe, positive in the ledger);
- a refund that failed after it succeeded (``refund_failure``) with the ADJUSTMENT
  entries that reversed it;
- equal to the cent: ``matched``; nothing in the ledger: ``stripe_only``; another
  amount: ``amount_mismatch``;
- a fee Stripe took on its own (``stripe_fee`` …): ``fee``; money moving between the
  balance and the bank (a failed payout returning, a top-up): ``transfer``; anything
  else (an adjustment, a dispute): ``unmatched``, to be explained. The payout's own
  balance transaction is the payout itself and is not stored as an item.

Stripe's fee on each transaction is kept on its item (``fee_cents``) and summed per
payout. A payment or refund of the ledger older than ``FINANCE_UNPAID_OUT_DAYS``
days whose Stripe id is in no reconciled payout is a ``ledger_only`` item keyed
``ledger:payment:pi_…`` or ``ledger:refund:re_…`` (``--since``: only entries from
that day on, since earlier payouts were not listed).

Running again is harmless: items are upserted on their key and written only when
something changed; the explanation finance wrote is never overwritten; an item that
stops being a mismatch (a late webhook wrote the payment) keeps its
``mismatch_kind`` and gets ``resolved_at``, it is never deleted.

Cost: per batch of ``BATCH`` transactions, one grouped query of the ledger's payments
(on the payment-intent index), one of its refunds, one read of the existing items and
one bulk upsert; per payout one summary query. 100,000 transactions reconcile in
seconds on PostgreSQL (``bench/reconcile.py``).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext

from finance.models import MISMATCH_KINDS, Payout, ReconciliationItem, ReconciliationRun
from payments import stripe_gateway
from payments.models import Checkout, LedgerEntry, Refund
from workflow.services import audit_record

log = logging.getLogger("finance")

BATCH = 500
CHARGE_TYPES = frozenset({"charge", "payment"})
REFUND_TYPES = frozenset({"refund", "payment_refund"})
REFUND_FAILURE_TYPES = frozenset({"refund_failure"})
FEE_TYPES = frozenset({"stripe_fee", "stripe_fx_fee", "tax_fee"})
TRANSFER_TYPES = frozenset(
    {
        "payout",
        "payout_cancel",
        "payout_failure",
        "payout_minimum_balance_hold",
        "payout_minimum_balance_release",
        "topup",
        "topup_reversal",
        "transfer",
        "transfer_cancel",
        "transfer_failure",
        "transfer_refund",
    }
)
# Payouts whose money never reached the bank.
NOT_PAID_OUT = frozenset({"failed", "canceled"})
LEDGER_PAYMENT = "payment"
LEDGER_REFUND = "refund"
Kind = ReconciliationItem.Kind

# What an item holds that a run computes (the explanation is finance's, not a run's).
COMPUTED = (
    "payout_id",
    "kind",
    "mismatch_kind",
    "resolved_at",
    "transaction_type",
    "reporting_category",
    "stripe_balance_transaction",
    "stripe_source",
    "stripe_payment_intent",
    "stripe_charge",
    "stripe_refund",
    "amount_cents",
    "fee_cents",
    "net_cents",
    "ledger_cents",
    "difference_cents",
    "currency",
    "occurred_at",
    "description",
    "household_id",
    "checkout_id",
    "refund_id",
)
MOMENTS = frozenset({"resolved_at", "occurred_at"})


class ExplanationRefused(Exception):
    """The explanation cannot be recorded as asked; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class LedgerSide:
    """What the ledger holds for one Stripe id, in Stripe's sign."""

    cents: int
    household_id: int | None
    checkout_id: int | None
    refund_id: int | None = None
    payment_intent: str = ""


@dataclass
class Tally:
    transactions: int = 0
    new_mismatches: int = 0
    resolved: int = 0

    def add(self, other: Tally) -> None:
        self.transactions += other.transactions
        self.new_mismatches += other.new_mismatches
        self.resolved += other.resolved


def _moment(timestamp: int) -> datetime.datetime | None:
    return datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC) if timestamp else None


def _day_start(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


# -- what the ledger says ------------------------------------------------------------------


def _sides(rows: Iterable[dict[str, Any]], key: str) -> dict[str, LedgerSide]:
    return {
        row[key]: LedgerSide(
            cents=-int(row["total"] or 0),
            household_id=row["household"],
            checkout_id=row["checkout"],
            refund_id=row.get("refund"),
            payment_intent=row.get("intent") or "",
        )
        for row in rows
    }


def _grouped(entries: Any, key: str) -> Any:
    return (
        entries.values(key)
        .annotate(
            total=Sum("amount_cents"),
            household=Min("household_id"),
            checkout=Min("checkout_id"),
            refund=Min("refund_id"),
            intent=Max("stripe_payment_intent"),
        )
        .order_by()
    )


def _ledger_payments(
    transactions: Sequence[stripe_gateway.GatewayBalanceTransaction],
) -> tuple[dict[str, LedgerSide], dict[str, LedgerSide]]:
    """The ledger's payments of these charges: by payment intent, and by charge id
    for charges that came without one."""
    intents = sorted({t.payment_intent for t in transactions if t.payment_intent})
    charges = sorted({t.charge or t.source for t in transactions if not t.payment_intent})
    payments = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT)
    by_intent = (
        _sides(
            _grouped(payments.filter(stripe_payment_intent__in=intents), "stripe_payment_intent"),
            "stripe_payment_intent",
        )
        if intents
        else {}
    )
    by_charge = (
        _sides(
            _grouped(payments.filter(stripe_charge__in=charges), "stripe_charge"), "stripe_charge"
        )
        if charges
        else {}
    )
    return by_intent, by_charge


def _ledger_refunds(
    transactions: Sequence[stripe_gateway.GatewayBalanceTransaction], kind: str
) -> dict[str, LedgerSide]:
    """The ledger's entries of ``kind`` (refunds, or the adjustments that reverse a
    failed refund) of these Stripe refunds. Looked up on the payment intent's index
    first; only refunds not found that way are looked for by refund id alone."""
    refund_ids = sorted({t.refund or t.source for t in transactions})
    if not refund_ids:
        return {}
    entries = LedgerEntry.objects.filter(kind=kind)
    intents = sorted({t.payment_intent for t in transactions if t.payment_intent})
    found: dict[str, LedgerSide] = {}
    if intents:
        found = _sides(
            _grouped(
                entries.filter(stripe_payment_intent__in=intents, stripe_refund__in=refund_ids),
                "stripe_refund",
            ),
            "stripe_refund",
        )
    missing = [refund_id for refund_id in refund_ids if refund_id not in found]
    if missing:
        found.update(
            _sides(
                _grouped(entries.filter(stripe_refund__in=missing), "stripe_refund"),
                "stripe_refund",
            )
        )
    return found


def _known_elsewhere(
    charges: Sequence[stripe_gateway.GatewayBalanceTransaction],
    refunds: Sequence[stripe_gateway.GatewayBalanceTransaction],
) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int, int]]]:
    """For money in Stripe that the ledger lacks, our rows that still name it, so that
    finance can find the family: a checkout by its payment intent or the ids Stripe
    carries in the charge's metadata, a refund by its id."""
    checkouts: dict[str, tuple[int, int]] = {}
    if charges:
        intents = [t.payment_intent for t in charges if t.payment_intent]
        claimed = {
            int(t.metadata["checkout_id"]): t.payment_intent
            for t in charges
            if t.metadata.get("checkout_id", "").isdigit()
        }
        references = {
            int(t.metadata["checkout_id"]): t.metadata.get("checkout_reference", "")
            for t in charges
            if t.metadata.get("checkout_id", "").isdigit()
        }
        for pk, household_id, intent, reference in Checkout.objects.filter(
            Q(stripe_payment_intent__in=intents) | Q(pk__in=list(claimed))
        ).values_list("pk", "household_id", "stripe_payment_intent", "reference"):
            if intent in intents:
                checkouts[intent] = (pk, household_id)
            elif pk in claimed and str(reference) == references.get(pk):
                checkouts.setdefault(claimed[pk], (pk, household_id))
    refund_rows: dict[str, tuple[int, int, int]] = {}
    if refunds:
        for pk, stripe_id, checkout_id, household_id in Refund.objects.filter(
            stripe_refund_id__in=[t.refund or t.source for t in refunds]
        ).values_list("pk", "stripe_refund_id", "checkout_id", "checkout__household_id"):
            refund_rows[stripe_id] = (pk, checkout_id, household_id)
    return checkouts, refund_rows


# -- classifying -----------------------------------------------------------------------------


def _compared(amount: int, side: LedgerSide | None) -> tuple[str, int | None, int]:
    """The kind, the ledger's amount and the difference of one comparison."""
    if side is None:
        return Kind.STRIPE_ONLY, None, amount
    if side.cents == amount:
        return Kind.MATCHED, side.cents, 0
    return Kind.AMOUNT_MISMATCH, side.cents, amount - side.cents


def _transaction_items(
    payout: Payout, transactions: Sequence[stripe_gateway.GatewayBalanceTransaction]
) -> list[dict[str, Any]]:
    """The item of each balance transaction of one batch, compared with the ledger
    (a fixed number of queries per batch)."""
    charges = [t for t in transactions if t.type in CHARGE_TYPES]
    refunds = [t for t in transactions if t.type in REFUND_TYPES]
    failures = [t for t in transactions if t.type in REFUND_FAILURE_TYPES]
    by_intent, by_charge = _ledger_payments(charges)
    refunded = _ledger_refunds(refunds, LedgerEntry.Kind.REFUND)
    reversed_ = _ledger_refunds(failures, LedgerEntry.Kind.ADJUSTMENT)
    missing_charges = [
        t
        for t in charges
        if (
            by_intent.get(t.payment_intent)
            if t.payment_intent
            else by_charge.get(t.charge or t.source)
        )
        is None
    ]
    missing_refunds = [t for t in refunds if (t.refund or t.source) not in refunded]
    checkouts, refund_rows = _known_elsewhere(missing_charges, missing_refunds)
    items = []
    for t in transactions:
        side: LedgerSide | None = None
        item: dict[str, Any] = {
            "key": t.id,
            "payout_id": payout.pk,
            "transaction_type": t.type[:40],
            "reporting_category": t.reporting_category[:40],
            "stripe_balance_transaction": t.id,
            "stripe_source": t.source,
            "stripe_payment_intent": t.payment_intent,
            "stripe_charge": t.charge,
            "stripe_refund": t.refund,
            "amount_cents": t.amount,
            "fee_cents": t.fee,
            "net_cents": t.net,
            "ledger_cents": None,
            "difference_cents": 0,
            "currency": t.currency[:3] or "usd",
            "occurred_at": _moment(t.created),
            "description": (t.description or "")[:255],
            "household_id": None,
            "checkout_id": None,
            "refund_id": None,
        }
        if t.type in CHARGE_TYPES:
            side = by_intent.get(t.payment_intent) if t.payment_intent else None
            if side is None and not t.payment_intent:
                side = by_charge.get(t.charge or t.source)
                if side is not None:
                    item["stripe_payment_intent"] = side.payment_intent
            kind, item["ledger_cents"], item["difference_cents"] = _compared(t.amount, side)
            if side is None and t.payment_intent in checkouts:
                item["checkout_id"], item["household_id"] = checkouts[t.payment_intent]
        elif t.type in REFUND_TYPES or t.type in REFUND_FAILURE_TYPES:
            refund_id = t.refund or t.source
            item["stripe_refund"] = refund_id
            side = (refunded if t.type in REFUND_TYPES else reversed_).get(refund_id)
            kind, item["ledger_cents"], item["difference_cents"] = _compared(t.amount, side)
            if side is None and refund_id in refund_rows:
                item["refund_id"], item["checkout_id"], item["household_id"] = refund_rows[
                    refund_id
                ]
        elif t.type in FEE_TYPES or t.reporting_category == "fee":
            kind = Kind.FEE
        elif t.type in TRANSFER_TYPES:
            kind = Kind.TRANSFER
        else:
            kind = Kind.UNMATCHED
            item["difference_cents"] = t.amount
        if side is not None:
            item["household_id"] = side.household_id
            item["checkout_id"] = side.checkout_id
            item["refund_id"] = side.refund_id
        item["kind"] = kind
        items.append(item)
    return items


# -- storing ---------------------------------------------------------------------------------


def _items_upsert(items: Sequence[dict[str, Any]], *, now: datetime.datetime) -> Tally:
    """Write the items of one batch: new ones inserted, changed ones updated on their
    key, unchanged ones left alone. A mismatch remembers its kind; one that stops
    being a mismatch is resolved; explanations are never touched."""
    tally = Tally(transactions=len(items))
    existing = {
        row[0]: dict(zip(COMPUTED, row[1:], strict=True))
        for row in ReconciliationItem.objects.filter(key__in=[i["key"] for i in items]).values_list(
            "key", *COMPUTED
        )
    }
    written = []
    for item in items:
        old = existing.get(item["key"])
        was_mismatch = old is not None and old["kind"] in MISMATCH_KINDS
        if item["kind"] in MISMATCH_KINDS:
            item["mismatch_kind"], item["resolved_at"] = item["kind"], None
            if not was_mismatch:
                tally.new_mismatches += 1
        elif was_mismatch:
            assert old is not None
            item["mismatch_kind"], item["resolved_at"] = old["mismatch_kind"], now
            tally.resolved += 1
        elif old is not None:
            item["mismatch_kind"], item["resolved_at"] = old["mismatch_kind"], old["resolved_at"]
        else:
            item["mismatch_kind"], item["resolved_at"] = "", None
        if old is None or any(old[name] != item[name] for name in COMPUTED):
            written.append(item)
    if written:
        _items_write(written, now=now)
    return tally


def _items_write(items: Sequence[dict[str, Any]], *, now: datetime.datetime) -> None:
    """Insert the items, or update the computed columns of those whose key exists: one
    ``INSERT … ON CONFLICT (key) DO UPDATE`` (SQLite and PostgreSQL alike) run for
    every row with ``executemany``. The explanation columns are never in the update.

    Written in SQL because preparing each value of 100,000 rows through
    ``bulk_create`` took most of a reconciliation's time. On PostgreSQL the statement
    goes through the driver's own cursor, which binds on the server (prepared once,
    rows pipelined); Django's cursor would quote every value into the text."""
    quote = connection.ops.quote_name
    adapt = connection.ops.adapt_datetimefield_value
    columns = ["key", "created_at", "updated_at", "explanation", *COMPUTED]
    # Only quoted identifiers of our own model go into the text; values are parameters
    # (hence the nosec below: nothing a person typed reaches the statement's text).
    table = quote(ReconciliationItem._meta.db_table)
    names = ", ".join(quote(c) for c in columns)
    slots = ", ".join(["%s"] * len(columns))
    updates = ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in [*COMPUTED, "updated_at"])
    key = quote("key")
    statement = f"INSERT INTO {table} ({names}) VALUES ({slots}) ON CONFLICT ({key}) DO UPDATE SET {updates}"  # noqa: E501, S608  # nosec B608
    stamp = adapt(now)
    rows = [
        [
            item["key"],
            stamp,
            stamp,
            "",
            *(
                adapt(item[name]) if name in MOMENTS else _plain_value(item[name])
                for name in COMPUTED
            ),
        ]
        for item in items
    ]
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        with connection.connection.cursor() as driver_cursor:
            driver_cursor.executemany(statement, rows)
    else:
        with connection.cursor() as cursor:
            cursor.executemany(statement, rows)


def _plain_value(value: Any) -> Any:
    """Choices as the plain strings the database drivers take."""
    return str(value) if isinstance(value, str) else value


def _payout_store(found: stripe_gateway.GatewayPayout) -> Payout:
    moment = _moment(found.created) or timezone.now()
    arrival = _moment(found.arrival_date)
    payout, _created = Payout.objects.update_or_create(
        stripe_payout_id=found.id,
        defaults={
            "stripe_status": found.status[:20],
            "amount_cents": found.amount,
            "currency": found.currency[:3] or "usd",
            "stripe_created_at": moment,
            "arrival_date": timezone.localdate(arrival) if arrival else None,
            "automatic": found.automatic,
            "description": found.description[:255],
        },
    )
    return payout


def payout_summarize(*, payout: Payout, actor: Any = None, actor_label: str = "") -> Payout:
    """The payout's totals and status, from its items (one query); a change of
    status is written to the audit log."""
    totals = (
        payout.items.values("transaction_type", "kind")
        .annotate(
            count=Count("id"),
            amount=Sum("amount_cents"),
            fee=Sum("fee_cents"),
            net=Sum("net_cents"),
            unexplained=Count("id", filter=Q(explained_at__isnull=True)),
        )
        .order_by()
    )
    fields = dict.fromkeys(
        (
            "transaction_count",
            "charge_count",
            "charges_cents",
            "refund_count",
            "refunds_cents",
            "fees_cents",
            "other_count",
            "other_cents",
            "net_cents",
            "matched_count",
            "mismatch_count",
            "open_count",
        ),
        0,
    )
    for row in totals:
        count, amount = row["count"], int(row["amount"] or 0)
        type_ = row["transaction_type"]
        fields["transaction_count"] += count
        fields["net_cents"] += int(row["net"] or 0)
        fields["fees_cents"] += int(row["fee"] or 0)
        if type_ in CHARGE_TYPES:
            fields["charge_count"] += count
            fields["charges_cents"] += amount
        elif type_ in REFUND_TYPES:
            fields["refund_count"] += count
            fields["refunds_cents"] -= amount
        elif row["kind"] == Kind.FEE:
            fields["fees_cents"] -= amount
        else:
            fields["other_count"] += count
            fields["other_cents"] += amount
        if row["kind"] == Kind.MATCHED:
            fields["matched_count"] += count
        elif row["kind"] in MISMATCH_KINDS:
            fields["mismatch_count"] += count
            fields["open_count"] += row["unexplained"]
    if payout.stripe_status in NOT_PAID_OUT:
        status = Payout.Status.NOT_PAID
    elif fields["open_count"] or fields["net_cents"] != payout.amount_cents:
        status = Payout.Status.OPEN
    elif fields["mismatch_count"]:
        status = Payout.Status.EXPLAINED
    else:
        status = Payout.Status.MATCHED
    before = payout.status if payout.reconciled_at else ""
    for name, value in fields.items():
        setattr(payout, name, value)
    payout.status = status
    payout.reconciled_at = payout.reconciled_at or timezone.now()
    payout.save(update_fields=[*fields, "status", "reconciled_at", "updated_at"])
    if before != status:
        audit_record(
            action="change" if before else "create",
            obj=payout,
            actor=actor,
            actor_label=actor_label,
            detail={
                "status": [before, status],
                "open": fields["open_count"],
                "mismatches": fields["mismatch_count"],
                "net_cents": fields["net_cents"],
                "amount_cents": payout.amount_cents,
            },
        )
    return payout


def payout_reconcile(
    *,
    payout: Payout,
    transactions: Sequence[stripe_gateway.GatewayBalanceTransaction],
    now: datetime.datetime | None = None,
    actor: Any = None,
    actor_label: str = "",
) -> Tally:
    """Compare every balance transaction of one payout with the ledger and store the
    items and the payout's totals, in one transaction."""
    now = now or timezone.now()
    own = [
        t for t in transactions if not (t.type == "payout" and t.source == payout.stripe_payout_id)
    ]
    tally = Tally()
    with transaction.atomic():
        for start in range(0, len(own), BATCH):
            batch = own[start : start + BATCH]
            tally.add(_items_upsert(_transaction_items(payout, batch), now=now))
        # Items Stripe no longer lists in this payout leave it (never deleted).
        listed = {t.id for t in own}
        gone = [pk for pk, key in payout.items.values_list("pk", "key") if key not in listed]
        if gone:
            ReconciliationItem.objects.filter(pk__in=gone).update(payout=None, updated_at=now)
        payout_summarize(payout=payout, actor=actor, actor_label=actor_label)
    return tally


def _ledger_only_items(
    *, since: datetime.date | None, now: datetime.datetime
) -> list[dict[str, Any]]:
    """Payments and refunds of the ledger older than ``FINANCE_UNPAID_OUT_DAYS`` days
    whose Stripe id is in no reconciled payout."""
    cutoff = now - datetime.timedelta(days=settings.FINANCE_UNPAID_OUT_DAYS)
    paid_out = ReconciliationItem.objects.filter(payout__isnull=False)
    intents = (
        paid_out.filter(transaction_type__in=CHARGE_TYPES)
        .exclude(stripe_payment_intent="")
        .values("stripe_payment_intent")
    )
    refunds = (
        paid_out.filter(transaction_type__in=REFUND_TYPES)
        .exclude(stripe_refund="")
        .values("stripe_refund")
    )
    entries = LedgerEntry.objects.filter(created_at__lt=cutoff)
    if since is not None:
        entries = entries.filter(created_at__gte=_day_start(since))
    payments = (
        entries.filter(kind=LedgerEntry.Kind.PAYMENT)
        .exclude(stripe_payment_intent="")
        .exclude(stripe_payment_intent__in=intents)
    )
    refunded = (
        entries.filter(kind=LedgerEntry.Kind.REFUND)
        .exclude(stripe_refund="")
        .exclude(stripe_refund__in=refunds)
    )
    items = []
    for ledger_kind, rows, key in (
        (LEDGER_PAYMENT, payments, "stripe_payment_intent"),
        (LEDGER_REFUND, refunded, "stripe_refund"),
    ):
        for row in (
            rows.values(key)
            .annotate(
                total=Sum("amount_cents"),
                household=Min("household_id"),
                checkout=Min("checkout_id"),
                refund=Min("refund_id"),
                intent=Max("stripe_payment_intent"),
                charge=Max("stripe_charge"),
                at=Min("created_at"),
            )
            .order_by()
        ):
            ledger_cents = -int(row["total"] or 0)
            items.append(
                {
                    "key": f"ledger:{ledger_kind}:{row[key]}",
                    "payout_id": None,
                    "kind": Kind.LEDGER_ONLY,
                    "transaction_type": ledger_kind,
                    "reporting_category": "",
                    "stripe_balance_transaction": "",
                    "stripe_source": row[key],
                    "stripe_payment_intent": row["intent"] or "",
                    "stripe_charge": row["charge"] or "",
                    "stripe_refund": row[key] if ledger_kind == LEDGER_REFUND else "",
                    "amount_cents": None,
                    "fee_cents": 0,
                    "net_cents": None,
                    "ledger_cents": ledger_cents,
                    "difference_cents": -ledger_cents,
                    "currency": "usd",
                    "occurred_at": row["at"],
                    "description": "",
                    "household_id": row["household"],
                    "checkout_id": row["checkout"],
                    "refund_id": row["refund"],
                }
            )
    return items


def _ledger_only_find(*, since: datetime.date | None, now: datetime.datetime) -> Tally:
    """Store the ledger's money that reached no payout, and resolve the earlier such
    items whose Stripe id has since been paid out."""
    tally = Tally()
    with transaction.atomic():
        items = _ledger_only_items(since=since, now=now)
        for start in range(0, len(items), BATCH):
            tally.add(_items_upsert(items[start : start + BATCH], now=now))
        paid_out = ReconciliationItem.objects.filter(payout__isnull=False)
        arrived = ReconciliationItem.objects.filter(kind=Kind.LEDGER_ONLY).filter(
            Q(
                transaction_type=LEDGER_PAYMENT,
                stripe_payment_intent__in=paid_out.filter(transaction_type__in=CHARGE_TYPES).values(
                    "stripe_payment_intent"
                ),
            )
            | Q(
                transaction_type=LEDGER_REFUND,
                stripe_refund__in=paid_out.filter(transaction_type__in=REFUND_TYPES).values(
                    "stripe_refund"
                ),
            )
        )
        tally.resolved += arrived.update(kind=Kind.MATCHED, resolved_at=now, updated_at=now)
    return tally


def reconcile_payouts(
    *,
    since: datetime.date | None = None,
    actor: Any = None,
    actor_label: str = "",
    now: datetime.datetime | None = None,
) -> ReconciliationRun:
    """Reconcile every payout created on or after ``since`` (every payout when None),
    then look for ledger money that reached no payout; recorded as a
    ``ReconciliationRun``. Stripe's errors come out as ``PaymentServiceError`` after
    the run is recorded with what went wrong; payouts finished before stay."""
    now = now or timezone.now()
    run = ReconciliationRun.objects.create(
        since=since,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        actor_label=actor_label[:150],
    )
    if settings.STRIPE_MODE == "local":
        run.outcome = "local Stripe: nothing is paid out to a bank, nothing to reconcile"
        run.finished_at = timezone.now()
        run.save(update_fields=["outcome", "finished_at"])
        return run
    tally = Tally()
    try:
        payouts = stripe_gateway.payouts_list(since=since)
        for found in reversed(payouts):  # oldest first
            payout = _payout_store(found)
            transactions = stripe_gateway.balance_transactions_of_payout(payout_id=found.id)
            tally.add(
                payout_reconcile(
                    payout=payout,
                    transactions=transactions,
                    now=now,
                    actor=run.actor,
                    actor_label=actor_label,
                )
            )
            run.payouts += 1
        tally.add(_ledger_only_find(since=since, now=now))
    except stripe_gateway.PaymentServiceError as error:
        run.outcome = f"stopped: {error.detail or error.message}"
        raise
    else:
        run.outcome = "finished"
    finally:
        run.transactions = tally.transactions
        run.new_mismatches = tally.new_mismatches
        run.resolved = tally.resolved
        run.open_mismatches = ReconciliationItem.objects.filter(
            kind__in=MISMATCH_KINDS, explained_at__isnull=True
        ).count()
        run.finished_at = timezone.now()
        run.save()
        log.info(
            "reconciliation %s %s: %s payout(s), %s item(s), %s new mismatch(es), "
            "%s resolved, %s open",
            run.pk,
            run.outcome,
            run.payouts,
            run.transactions,
            run.new_mismatches,
            run.resolved,
            run.open_mismatches,
        )
    return run


# -- finance's explanations ------------------------------------------------------------------


def item_explain(
    *, item: ReconciliationItem, note: str, actor: Any, request: Any = None
) -> ReconciliationItem:
    """Finance says why a mismatch is what it is. Written again, the newest note
    replaces the one shown; every note stays in the audit log, with the one it
    replaced. The payout's status follows (explained once nothing is open)."""
    note = note.strip()
    if not note:
        raise ExplanationRefused(gettext("Please write what explains this difference."))
    with transaction.atomic():
        locked = ReconciliationItem.objects.select_for_update().get(pk=item.pk)
        if not locked.mismatch_kind:
            raise ExplanationRefused(gettext("Only a mismatch can be explained."))
        previous = locked.explanation
        locked.explanation = note
        locked.explained_at = timezone.now()
        locked.explained_by = actor
        locked.save(update_fields=["explanation", "explained_at", "explained_by", "updated_at"])
        audit_record(
            action="change",
            obj=locked,
            actor=actor,
            request=request,
            detail={
                "explanation": note,
                "previous": previous,
                "kind": locked.mismatch_kind,
                "payout": locked.payout_id,
                "difference_cents": locked.difference_cents,
            },
        )
        if locked.payout_id is not None:
            payout = Payout.objects.select_for_update().get(pk=locked.payout_id)
            payout_summarize(payout=payout, actor=actor)
    return locked
