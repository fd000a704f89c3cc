"""Reads of the finance pages: payouts and their reconciliation, mismatches, and
reports from the ledger (collections, outstanding balances, refunds, the month).

Every amount comes from one place: the reconciliation's items and payouts for what
Stripe did, ``payments.models.LedgerEntry`` for what the district recorded. The pages,
their CSV files and the month's PDF read the same functions, so their totals agree to
the cent. Children appear by name only: no query here selects a health field.

Collections are payments net of refunds, by the day the ledger recorded them (in the
district's time zone): ``payments`` is the money received, ``refunds`` the money given
back, ``net`` the difference. A child's school is the school they attend; an entry
with no child (a household-level entry) has no school.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from finance.models import MISMATCH_KINDS, Payout, ReconciliationItem
from payments.models import LedgerEntry, Refund
from registration.models import School, Student
from workflow.models import AuditEvent

MONEY_KINDS = (LedgerEntry.Kind.PAYMENT, LedgerEntry.Kind.REFUND)


def _day_start(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def _between(
    queryset: QuerySet[Any], name: str, since: datetime.date | None, until: datetime.date | None
) -> QuerySet[Any]:
    """Rows whose ``name`` falls on a day from ``since`` to ``until``, both included."""
    if since is not None:
        queryset = queryset.filter(**{f"{name}__gte": _day_start(since)})
    if until is not None:
        queryset = queryset.filter(
            **{f"{name}__lt": _day_start(until + datetime.timedelta(days=1))}
        )
    return queryset


# -- payouts and mismatches ----------------------------------------------------------------


def payouts_filtered(
    *,
    status: str = "",
    since: datetime.date | None = None,
    until: datetime.date | None = None,
) -> QuerySet[Payout]:
    """Payouts (of one reconciliation status, when given) that arrived or are due at
    the bank from ``since`` to ``until``, newest first."""
    payouts = Payout.objects.all()
    if status:
        payouts = payouts.filter(status=status)
    if since is not None:
        payouts = payouts.filter(arrival_date__gte=since)
    if until is not None:
        payouts = payouts.filter(arrival_date__lte=until)
    return payouts.order_by("-stripe_created_at", "-pk")


def payout_items(payout: Payout, *, kind: str = "") -> QuerySet[ReconciliationItem]:
    items = payout.items.select_related("household", "checkout", "explained_by")
    if kind:
        items = items.filter(kind=kind)
    return items.order_by("-occurred_at", "-pk")


@dataclass(frozen=True)
class PaidLine:
    """One ledger entry behind a charge or refund: the child and fee it paid for."""

    child: str
    fee: str
    gl_code: str
    amount_cents: int


def lines_of_items(items: Iterable[ReconciliationItem]) -> dict[int, list[PaidLine]]:
    """For each charge or refund item, the ledger's entries of it: which fee of which
    child it paid or gave back (two queries, names only)."""
    items = list(items)
    intents = {
        i.stripe_payment_intent for i in items if i.stripe_payment_intent and not i.stripe_refund
    }
    refunds = {i.stripe_refund for i in items if i.stripe_refund}
    by_key: dict[tuple[str, str], list[PaidLine]] = defaultdict(list)
    entries = LedgerEntry.objects.select_related("student", "fee").only(
        "kind",
        "amount_cents",
        "stripe_payment_intent",
        "stripe_refund",
        "student__given_name",
        "student__family_name",
        "student__middle_name",
        "fee__title",
        "fee__gl_code",
    )
    chosen: list[LedgerEntry] = []
    if intents:
        chosen += list(
            entries.filter(kind=LedgerEntry.Kind.PAYMENT, stripe_payment_intent__in=intents)
        )
    if refunds:
        refunded = entries.filter(kind=LedgerEntry.Kind.REFUND, stripe_refund__in=refunds)
        refund_intents = {i.stripe_payment_intent for i in items if i.stripe_refund}
        if "" not in refund_intents:  # narrowed on the payment intent's index
            refunded = refunded.filter(stripe_payment_intent__in=refund_intents)
        chosen += list(refunded)
    for entry in chosen:
        key = (
            (LedgerEntry.Kind.PAYMENT, entry.stripe_payment_intent)
            if entry.kind == LedgerEntry.Kind.PAYMENT
            else (LedgerEntry.Kind.REFUND, entry.stripe_refund)
        )
        by_key[key].append(
            PaidLine(
                child=entry.student.full_name if entry.student else "",
                fee=entry.fee.title if entry.fee else "",
                gl_code=entry.fee.gl_code if entry.fee else "",
                amount_cents=abs(entry.amount_cents),
            )
        )
    result: dict[int, list[PaidLine]] = {}
    for item in items:
        if item.stripe_refund:
            result[item.pk] = by_key.get((LedgerEntry.Kind.REFUND, item.stripe_refund), [])
        elif item.stripe_payment_intent:
            result[item.pk] = by_key.get((LedgerEntry.Kind.PAYMENT, item.stripe_payment_intent), [])
    return result


def payout_history(payout: Payout) -> list[AuditEvent]:
    """What happened to a payout: its reconciliation's changes of status and every
    explanation of its items, newest first (two queries)."""
    explained = [
        str(pk) for pk in payout.items.exclude(mismatch_kind="").values_list("pk", flat=True)
    ]
    return list(
        AuditEvent.objects.filter(
            Q(object_type="finance.payout", object_id=str(payout.pk))
            | Q(object_type="finance.reconciliationitem", object_id__in=explained)
        )
        .exclude(action=AuditEvent.Action.VIEW)
        .select_related("actor")
        .order_by("-created_at", "-pk")
    )


def item_history(item: ReconciliationItem) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            object_type="finance.reconciliationitem",
            object_id=str(item.pk),
            action=AuditEvent.Action.CHANGE,
        )
        .select_related("actor")
        .order_by("-created_at", "-pk")
    )


MISMATCH_STATES = ("open", "explained", "resolved", "all")


def mismatches_filtered(*, state: str = "open", kind: str = "") -> QuerySet[ReconciliationItem]:
    """Every item that is or was a mismatch. ``open``: not explained yet;
    ``explained``: finance wrote why; ``resolved``: no longer a mismatch (the ledger
    or Stripe caught up). ``kind``: the kind of mismatch. Oldest first."""
    items = ReconciliationItem.objects.exclude(mismatch_kind="")
    if state == "open":
        items = items.filter(kind__in=MISMATCH_KINDS, explained_at__isnull=True)
    elif state == "explained":
        items = items.filter(kind__in=MISMATCH_KINDS, explained_at__isnull=False)
    elif state == "resolved":
        items = items.exclude(kind__in=MISMATCH_KINDS)
    if kind:
        items = items.filter(mismatch_kind=kind)
    return items.select_related("payout", "household", "checkout", "explained_by").order_by(
        "occurred_at", "pk"
    )


def mismatch_counts() -> dict[str, int]:
    """Open mismatches by kind, and their total (one query)."""
    counts = {
        row["mismatch_kind"]: row["count"]
        for row in ReconciliationItem.objects.filter(
            kind__in=MISMATCH_KINDS, explained_at__isnull=True
        )
        .values("mismatch_kind")
        .annotate(count=Count("pk"))
        .order_by()
    }
    counts["total"] = sum(counts.values())
    return counts


# -- collections -------------------------------------------------------------------------------


@dataclass
class Collected:
    """Money received and given back for one group (a school, a fee, a GL code, a
    day), from the ledger."""

    key: Any
    label: str
    payments_cents: int = 0
    refunds_cents: int = 0
    entries: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def net_cents(self) -> int:
        return self.payments_cents - self.refunds_cents


@dataclass
class Collections:
    since: datetime.date
    until: datetime.date
    by_school: list[Collected]
    by_fee: list[Collected]
    by_gl_code: list[Collected]
    by_day: list[Collected]
    total: Collected
    fees_without_gl_code: int

    def table(self, name: str) -> list[Collected]:
        return {
            "school": self.by_school,
            "fee": self.by_fee,
            "gl": self.by_gl_code,
            "day": self.by_day,
        }[name]


def _money_entries(since: datetime.date, until: datetime.date) -> QuerySet[LedgerEntry]:
    return _between(
        LedgerEntry.objects.filter(kind__in=MONEY_KINDS), "created_at", since, until
    ).order_by()


def _sums(rows: QuerySet[Any], *keys: str) -> QuerySet[Any]:
    return rows.values(*keys).annotate(
        paid=Coalesce(Sum("amount_cents", filter=Q(kind=LedgerEntry.Kind.PAYMENT)), Value(0)),
        refunded=Coalesce(Sum("amount_cents", filter=Q(kind=LedgerEntry.Kind.REFUND)), Value(0)),
        entries=Count("pk"),
    )


def _collected(row: dict[str, Any], key: Any, label: str, **extra: Any) -> Collected:
    return Collected(
        key=key,
        label=label,
        payments_cents=-int(row["paid"]),
        refunds_cents=int(row["refunded"]),
        entries=int(row["entries"]),
        extra=extra,
    )


def collections(*, since: datetime.date, until: datetime.date) -> Collections:
    """Payments net of refunds from ``since`` to ``until`` (both included) by school,
    fee, GL code and day: five grouped queries."""
    entries = _money_entries(since, until)
    by_school = [
        _collected(
            row,
            row["student__school_id"],
            row["student__school__name"] or "",
            code=row["student__school__identifier"] or "",
        )
        for row in _sums(
            entries, "student__school_id", "student__school__name", "student__school__identifier"
        ).order_by(F("student__school__name").asc(nulls_last=True), "student__school_id")
    ]
    by_fee = [
        _collected(
            row,
            row["fee_id"],
            row["fee__title"] or "",
            gl_code=row["fee__gl_code"] or "",
            kind=row["fee__kind"] or "",
        )
        for row in _sums(entries, "fee_id", "fee__title", "fee__gl_code", "fee__kind").order_by(
            F("fee__title").asc(nulls_last=True), "fee_id"
        )
    ]
    gl_totals: dict[str, Collected] = {}
    for row in _sums(entries, "fee__gl_code").order_by("fee__gl_code"):
        code = row["fee__gl_code"] or ""
        found = gl_totals.setdefault(code, Collected(key=code, label=code))
        part = _collected(row, code, code)
        found.payments_cents += part.payments_cents
        found.refunds_cents += part.refunds_cents
        found.entries += part.entries
    by_day = [
        _collected(row, row["day"], row["day"].isoformat())
        for row in _sums(entries.annotate(day=TruncDate("created_at")), "day").order_by("day")
    ]
    total = Collected(key=None, label="")
    for item in by_day:
        total.payments_cents += item.payments_cents
        total.refunds_cents += item.refunds_cents
        total.entries += item.entries
    return Collections(
        since=since,
        until=until,
        by_school=by_school,
        by_fee=by_fee,
        by_gl_code=sorted(gl_totals.values(), key=lambda c: (c.key == "", c.key)),
        by_day=by_day,
        total=total,
        fees_without_gl_code=sum(1 for c in by_fee if c.key is not None and not c.extra["gl_code"]),
    )


@dataclass(frozen=True)
class GeneralLedgerLine:
    """One line of the export to the district's accounting system: what one GL code
    collected on one day."""

    day: datetime.date
    gl_code: str
    payments_cents: int
    refunds_cents: int
    entries: int

    @property
    def net_cents(self) -> int:
        return self.payments_cents - self.refunds_cents


def general_ledger_lines(*, since: datetime.date, until: datetime.date) -> list[GeneralLedgerLine]:
    """Collections by day and GL code, day by day (one query)."""
    entries = _money_entries(since, until).annotate(day=TruncDate("created_at"))
    merged: dict[tuple[datetime.date, str], list[int]] = {}
    for row in _sums(entries, "day", "fee__gl_code").order_by("day", "fee__gl_code"):
        sums = merged.setdefault((row["day"], row["fee__gl_code"] or ""), [0, 0, 0])
        sums[0] -= int(row["paid"])
        sums[1] += int(row["refunded"])
        sums[2] += int(row["entries"])
    return [
        GeneralLedgerLine(day=day, gl_code=code, payments_cents=p, refunds_cents=r, entries=n)
        for (day, code), (p, r, n) in sorted(merged.items())
    ]


# -- outstanding balances ------------------------------------------------------------------------


@dataclass
class Outstanding:
    """What is owed to the district for one school: the sum of every child's positive
    balance there, and how many children and households owe it."""

    school_id: int | None
    name: str
    code: str
    owed_cents: int = 0
    children: int = 0
    households: set[int] = field(default_factory=set)

    @property
    def household_count(self) -> int:
        return len(self.households)


def outstanding_by_school() -> list[Outstanding]:
    """Balances owed by school: for each (household, child) whose balance is positive,
    the balance, added up by the child's school (one grouped query and one of the
    schools). Entries with no child count under no school."""
    rows = (
        LedgerEntry.objects.values("household_id", "student_id", "student__school_id")
        .annotate(balance=Sum("amount_cents"))
        .filter(balance__gt=0)
        .order_by()
    )
    schools: dict[int | None, Outstanding] = {}
    for row in rows:
        school_id = row["student__school_id"]
        found = schools.get(school_id)
        if found is None:
            found = schools[school_id] = Outstanding(school_id=school_id, name="", code="")
        found.owed_cents += int(row["balance"])
        found.children += 1 if row["student_id"] else 0
        found.households.add(row["household_id"])
    for school in School.objects.filter(pk__in=[pk for pk in schools if pk is not None]).only(
        "name", "identifier"
    ):
        schools[school.pk].name = school.name
        schools[school.pk].code = school.identifier
    return sorted(schools.values(), key=lambda o: (o.school_id is None, o.name, o.school_id or 0))


def outstanding_households() -> QuerySet[Any]:
    """Households whose balance is positive, the largest first, as rows of
    ``household_id``, ``household__sourced_id`` and ``balance``."""
    return (
        LedgerEntry.objects.values("household_id", "household__sourced_id")
        .annotate(balance=Sum("amount_cents"))
        .filter(balance__gt=0)
        .order_by("-balance", "household__sourced_id")
    )


def children_of_households(household_ids: Sequence[int]) -> dict[int, list[str]]:
    """The names of the children with entries in each household's ledger (names
    only; one query)."""
    names: dict[int, list[str]] = defaultdict(list)
    rows = (
        LedgerEntry.objects.filter(household_id__in=list(household_ids), student__isnull=False)
        .values_list("household_id", "student_id")
        .distinct()
        .order_by()
    )
    pairs = list(rows)
    students = {
        s.pk: s.full_name
        for s in Student.objects.filter(pk__in={sid for _, sid in pairs}).only(
            "given_name", "middle_name", "family_name"
        )
    }
    for household_id, student_id in pairs:
        names[household_id].append(students.get(student_id, ""))
    return {key: sorted(value) for key, value in names.items()}


# -- refunds -------------------------------------------------------------------------------------


def refunds_filtered(
    *,
    state: str = "",
    since: datetime.date | None = None,
    until: datetime.date | None = None,
) -> QuerySet[Refund]:
    """Refunds asked for here or made in Stripe, newest first, with their checkout,
    household and who asked."""
    refunds = _between(Refund.objects.all(), "created_at", since, until)
    if state:
        refunds = refunds.filter(state=state)
    return refunds.select_related("checkout__household", "requested_by", "line__fee").order_by(
        "-created_at", "-pk"
    )


# -- the month ----------------------------------------------------------------------------------


@dataclass
class MonthSummary:
    """A month in figures: what the ledger collected, what Stripe paid out, what does
    not match, and what families still owe."""

    month: datetime.date  # its first day
    last_day: datetime.date
    collections: Collections
    payouts: list[Payout]
    payouts_total: dict[str, int]
    open_mismatches: int
    open_difference_cents: int
    explained_mismatches: int
    outstanding: list[Outstanding]

    @property
    def outstanding_cents(self) -> int:
        return sum(o.owed_cents for o in self.outstanding)


def month_last_day(month: datetime.date) -> datetime.date:
    following = (month.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return following - datetime.timedelta(days=1)


def month_summary(month: datetime.date) -> MonthSummary:
    """The month that starts on ``month``: collections from the ledger, payouts that
    arrived at the bank that month, mismatches of the month still open or explained,
    and what is owed today."""
    month = month.replace(day=1)
    last = month_last_day(month)
    payouts = list(payouts_filtered(since=month, until=last).order_by("arrival_date", "pk"))
    totals = {
        name: sum(getattr(p, name) for p in payouts)
        for name in ("amount_cents", "charges_cents", "refunds_cents", "fees_cents", "other_cents")
    }
    totals["count"] = len(payouts)
    items = _between(
        ReconciliationItem.objects.filter(kind__in=MISMATCH_KINDS), "occurred_at", month, last
    )
    mismatch_totals = items.aggregate(
        open=Count("pk", filter=Q(explained_at__isnull=True)),
        explained=Count("pk", filter=Q(explained_at__isnull=False)),
        difference=Sum("difference_cents", filter=Q(explained_at__isnull=True)),
    )
    return MonthSummary(
        month=month,
        last_day=last,
        collections=collections(since=month, until=last),
        payouts=payouts,
        payouts_total=totals,
        open_mismatches=mismatch_totals["open"] or 0,
        open_difference_cents=int(mismatch_totals["difference"] or 0),
        explained_mismatches=mismatch_totals["explained"] or 0,
        outstanding=outstanding_by_school(),
    )
