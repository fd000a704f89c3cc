"""Reads of the fee catalog and the ledger. A balance is always a sum of entries."""

from __future__ import annotations

import datetime
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from payments.models import Checkout, CheckoutLine, Fee, LedgerEntry, Refund
from registration.models import (
    ClassEnrollment,
    Household,
    HouseholdGuardian,
    HouseholdStudent,
    StaffProfile,
    Student,
)
from registration.selectors import ALL_SCHOOL_ROLES, staff_profile_for

# Entries that pay or credit a fee, and refunds that undo them: their sum, negated,
# is how much of a fee is settled.
SETTLING_KINDS = (
    LedgerEntry.Kind.PAYMENT,
    LedgerEntry.Kind.REFUND,
    LedgerEntry.Kind.WAIVER,
)
# A fixed fee is also settled by finance's adjustments: a refund after which the
# family no longer owes it, a refund that failed and left the money paid, a
# correction. Lunch is not: its adjustments only give back money that left the
# child's account, and what is on the account is what was paid net of refunds.
FIXED_FEE_SETTLING_KINDS = (*SETTLING_KINDS, LedgerEntry.Kind.ADJUSTMENT)
SETTLING = Q(kind__in=SETTLING_KINDS) | (
    Q(kind=LedgerEntry.Kind.ADJUSTMENT) & ~Q(fee__kind=Fee.Kind.LUNCH_PREPAY)
)


def balance_cents(
    *,
    household: Household | None = None,
    student: Student | None = None,
    fee: Fee | None = None,
) -> int:
    """The sum of the ledger entries of a household, a child, a fee, or any mix of
    them: positive, owed to the district; negative, owed to the household."""
    filters: dict[str, Any] = {}
    if household is not None:
        filters["household"] = household
    if student is not None:
        filters["student"] = student
    if fee is not None:
        filters["fee"] = fee
    total = LedgerEntry.objects.filter(**filters).aggregate(total=Sum("amount_cents"))["total"]
    return int(total or 0)


def ledger_of_household(household: Household) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(household=household).select_related("student", "fee")


def settled_cents(
    *, pairs: Iterable[tuple[int, int]], household: Household | None = None
) -> dict[tuple[int, int], int]:
    """For each (student id, fee id): how much is paid, waived or (a fixed fee)
    credited, net of refunds, by any of the child's households (or by ``household``
    only)."""
    pairs = list(pairs)
    if not pairs:
        return {}
    condition = Q()
    for student_id, fee_id in pairs:
        condition |= Q(student_id=student_id, fee_id=fee_id)
    rows = LedgerEntry.objects.filter(condition).filter(SETTLING)
    if household is not None:
        rows = rows.filter(household=household)
    settled = {pair: 0 for pair in pairs}
    for row in rows.values("student_id", "fee_id").annotate(total=Sum("amount_cents")).order_by():
        settled[(row["student_id"], row["fee_id"])] = -int(row["total"] or 0)
    return settled


def owed_cents(
    *, household: Household, pairs: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], int]:
    """For each (student id, fee id): the household's balance of that fee."""
    pairs = list(pairs)
    condition = Q()
    for student_id, fee_id in pairs:
        condition |= Q(student_id=student_id, fee_id=fee_id)
    owed = {pair: 0 for pair in pairs}
    if not pairs:
        return owed
    rows = (
        LedgerEntry.objects.filter(condition, household=household)
        .values("student_id", "fee_id")
        .annotate(total=Sum("amount_cents"))
        .order_by()
    )
    for row in rows:
        owed[(row["student_id"], row["fee_id"])] = int(row["total"] or 0)
    return owed


def owed_by_household(*, pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], dict[int, int]]:
    """For each (student id, fee id): the balance of that fee in each household the
    child still belongs to, by household id, only where it is positive (owed)."""
    pairs = list(pairs)
    owed: dict[tuple[int, int], dict[int, int]] = {pair: {} for pair in pairs}
    if not pairs:
        return owed
    members = set(
        HouseholdStudent.objects.filter(
            student_id__in={student_id for student_id, _fee in pairs}
        ).values_list("student_id", "household_id")
    )
    condition = Q()
    for student_id, fee_id in pairs:
        condition |= Q(student_id=student_id, fee_id=fee_id)
    rows = (
        LedgerEntry.objects.filter(condition)
        .values("student_id", "fee_id", "household_id")
        .annotate(total=Sum("amount_cents"))
        .filter(total__gt=0)
        .order_by()
    )
    for row in rows:
        if (row["student_id"], row["household_id"]) in members:
            owed[(row["student_id"], row["fee_id"])][row["household_id"]] = int(row["total"])
    return owed


def students_of_household(household: Household) -> dict[int, Student]:
    """The household's enabled children, by id."""
    return {
        row.student.pk: row.student
        for row in HouseholdStudent.objects.filter(
            household=household, student__enabled=True
        ).select_related("student")
    }


def sections_of_students(student_ids: Iterable[int]) -> dict[int, set[int]]:
    """The classes each child is enrolled in."""
    sections: dict[int, set[int]] = {}
    for student_id, section_id in ClassEnrollment.objects.filter(
        student_id__in=list(student_ids)
    ).values_list("student_id", "section_id"):
        sections.setdefault(student_id, set()).add(section_id)
    return sections


def fee_applies_to(fee: Fee, student: Student, sections: set[int]) -> bool:
    """Whether a child may be charged a fee: it is active, before its deadline and
    (a trip) not past its day, and the child is in its class (field trips) or its
    school."""
    if not fee.active:
        return False
    today = timezone.localdate()
    if fee.deadline is not None and fee.deadline < today:
        return False
    if fee.event_date is not None and fee.event_date < today:
        return False
    if fee.section_id is not None and fee.section_id not in sections:
        return False
    return fee.school_id is None or fee.school_id == student.school_id


def checkouts_of_household(household: Household) -> QuerySet[Checkout]:
    return Checkout.objects.filter(household=household).prefetch_related("lines")


def required_fees_unsettled(*, household: Household, campaign: Any) -> dict[tuple[int, int], int]:
    """For each (student id, fee id) of the campaign's required fees that applies to a
    child of the household: what is still to be paid or waived, when anything is.
    Three queries, however many children and fees."""
    fees = list(Fee.objects.filter(kind=Fee.Kind.REQUIRED, campaign=campaign, active=True))
    if not fees:
        return {}
    students = students_of_household(household)
    due = {
        (student.pk, fee.pk): fee.amount_cents or 0
        for student in students.values()
        for fee in fees
        if fee_applies_to(fee, student, set())
    }
    settled = settled_cents(pairs=due)
    return {pair: cents - settled[pair] for pair, cents in due.items() if cents > settled[pair]}


# -- the catalog and field trips (staff) -----------------------------------------------

PAID_KINDS = (LedgerEntry.Kind.PAYMENT, LedgerEntry.Kind.REFUND)


def fee_is_paid_for(fee: Fee) -> bool:
    """Whether a family paid this fee, or is paying it on Stripe's page right now."""
    return CheckoutLine.objects.filter(
        Q(checkout__state=Checkout.State.PAID)
        | Q(checkout__state=Checkout.State.OPEN, checkout__expires_at__gt=timezone.now()),
        fee=fee,
    ).exists()


def fee_being_paid(fee: Fee) -> bool:
    """Whether a family is on Stripe's page paying this fee right now."""
    return CheckoutLine.objects.filter(
        fee=fee, checkout__state=Checkout.State.OPEN, checkout__expires_at__gt=timezone.now()
    ).exists()


def children_paid_for(fee: Fee) -> int:
    """How many children have money paid for this fee that was not refunded."""
    return (
        LedgerEntry.objects.filter(fee=fee, kind__in=PAID_KINDS)
        .values("student_id")
        .annotate(total=Sum("amount_cents"))
        .filter(total__lt=0)
        .order_by()
        .count()
    )


def _ledger_sum(kinds: Iterable[str], **outer: Any) -> Coalesce:
    """Sum of the entries of some kinds for the outer row (``fee=OuterRef("pk")``)."""
    rows = (
        LedgerEntry.objects.filter(kind__in=list(kinds), **outer)
        .order_by()
        .values(*outer)
        .annotate(total=Sum("amount_cents"))
        .values("total")
    )
    return Coalesce(Subquery(rows, output_field=IntegerField()), 0)


def fees_with_totals(fees: QuerySet[Fee]) -> QuerySet[Fee]:
    """Fees with ``paid_cents`` (net of refunds) and ``waived_cents``, positive, and
    what the list pages show of them, in the same query."""
    return fees.select_related("campaign__school_year", "school", "section__school").annotate(
        paid_cents=-_ledger_sum(PAID_KINDS, fee=OuterRef("pk")),
        waived_cents=-_ledger_sum([LedgerEntry.Kind.WAIVER], fee=OuterRef("pk")),
    )


def fees_filtered(
    *,
    kind: str = "",
    school: Any = None,
    campaign: Any = None,
    active: bool | None = None,
    without_gl_code: bool = False,
) -> QuerySet[Fee]:
    """The catalog, filtered as finance asks: a school's fees include its classes'
    field trips; active fees first, then by kind and title."""
    fees = Fee.objects.all()
    if kind:
        fees = fees.filter(kind=kind)
    if school is not None:
        fees = fees.filter(Q(school=school) | Q(section__school=school))
    if campaign is not None:
        fees = fees.filter(campaign=campaign)
    if active is not None:
        fees = fees.filter(active=active)
    if without_gl_code:
        fees = fees.filter(gl_code="")
    return fees_with_totals(fees).order_by("-active", "kind", "title", "pk")


def field_trips_visible_to(user: Any) -> QuerySet[Fee]:
    """Teachers see the trips of the classes they teach; registrars, finance and
    superusers every trip; anyone else none. Newest trip day first."""
    trips = Fee.objects.filter(kind=Fee.Kind.FIELD_TRIP)
    if not user.is_superuser:
        profile = staff_profile_for(user)
        if profile is None or not profile.enabled:
            return trips.none()
        if profile.role == StaffProfile.Role.TEACHER:
            trips = trips.filter(section__teaching__teacher=profile)
        elif profile.role not in ALL_SCHOOL_ROLES:
            return trips.none()
    return fees_with_totals(trips).order_by("-active", "-event_date", "-pk")


@dataclass
class TripStudent:
    """One child of a trip's class (or charged for it), with names and amounts only."""

    student: Student
    enrolled: bool
    assessed_cents: int = 0
    paid_cents: int = 0
    waived_cents: int = 0
    balance_cents: int = 0
    owed_cents: int = 0

    @property
    def charged(self) -> bool:
        return self.assessed_cents > 0 or self.paid_cents > 0


def trip_students(fee: Fee) -> list[TripStudent]:
    """Every child enrolled in the trip's class and every child with entries for it,
    with what is owed, paid (net of refunds) and waived. Three queries at most."""
    rows = {
        enrollment.student_id: TripStudent(student=enrollment.student, enrolled=True)
        for enrollment in ClassEnrollment.objects.filter(section_id=fee.section_id).select_related(
            "student"
        )
    }
    sums = list(
        LedgerEntry.objects.filter(fee=fee, student__isnull=False)
        .values("student_id", "kind")
        .annotate(total=Sum("amount_cents"))
        .order_by()
    )
    missing = {row["student_id"] for row in sums} - set(rows)
    for student in Student.objects.filter(pk__in=missing):
        rows[student.pk] = TripStudent(student=student, enrolled=False)
    for row in sums:
        item, total = rows[row["student_id"]], int(row["total"] or 0)
        item.balance_cents += total
        if row["kind"] == LedgerEntry.Kind.ASSESSMENT:
            item.assessed_cents += total
        elif row["kind"] in PAID_KINDS:
            item.paid_cents -= total
        elif row["kind"] == LedgerEntry.Kind.WAIVER:
            item.waived_cents -= total
    for item in rows.values():
        owed = item.balance_cents
        if fee.active:
            # A child's other household may have paid: what is due is the trip's
            # amount less what anyone paid or was forgiven.
            owed = min(owed, (fee.amount_cents or 0) - item.paid_cents - item.waived_cents)
        item.owed_cents = max(owed, 0)
    return sorted(
        rows.values(),
        key=lambda item: (item.student.family_name, item.student.given_name, item.student.pk),
    )


# -- payments and refunds (finance) ----------------------------------------------------


def _local_day_start(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def checkouts_search(
    *,
    query: str = "",
    state: str = "",
    since: datetime.date | None = None,
    until: datetime.date | None = None,
) -> QuerySet[Checkout]:
    """Checkouts (``state``, or every state when blank), newest payment first, with
    the household, who paid and ``refunded_cents``. ``query`` is a checkout's
    reference, a Stripe payment intent or session id, a household's id, or words
    of the name (or the email) of a guardian of the household."""
    checkouts = Checkout.objects.annotate(at=Coalesce("paid_at", "created_at"))
    if state:
        checkouts = checkouts.filter(state=state)
    if since is not None:
        checkouts = checkouts.filter(at__gte=_local_day_start(since))
    if until is not None:
        checkouts = checkouts.filter(at__lt=_local_day_start(until + datetime.timedelta(days=1)))
    query = query.strip()
    if query:
        checkouts = checkouts.filter(_checkout_matches(query))
    return (
        checkouts.select_related("household", "created_by__guardian")
        .annotate(refunded_cents=_ledger_sum([LedgerEntry.Kind.REFUND], checkout=OuterRef("pk")))
        .order_by("-at", "-pk")
    )


def _checkout_matches(query: str) -> Q:
    try:
        return Q(reference=uuid.UUID(query))
    except ValueError:
        pass
    if query.startswith("pi_"):
        return Q(stripe_payment_intent=query)
    if query.startswith("cs_"):
        return Q(stripe_session_id=query)
    by_name = Q()
    for word in query.split():
        by_name &= Q(guardian__given_name__icontains=word) | Q(
            guardian__family_name__icontains=word
        )
    households = HouseholdGuardian.objects.filter(
        by_name | Q(guardian__user__email__iexact=query)
    ).values("household_id")
    return (
        Q(household__sourced_id__iexact=query)
        | Q(household_id__in=households)
        | Q(created_by__email__iexact=query)
    )


def checkout_for_staff(pk: int) -> Checkout | None:
    """One checkout with its household, who paid, its lines and its refunds."""
    return (
        Checkout.objects.select_related("household", "created_by__guardian")
        .prefetch_related(
            Prefetch("lines", queryset=CheckoutLine.objects.select_related("student", "fee")),
            Prefetch(
                "refunds",
                queryset=Refund.objects.select_related(
                    "requested_by", "line__student", "line__fee"
                ).order_by("-created_at", "-pk"),
            ),
        )
        .filter(pk=pk)
        .first()
    )


@dataclass(frozen=True)
class LineRefunds:
    """What of a checkout line was given back (the ledger), what is asked and not yet
    confirmed by Stripe, and what can still be refunded."""

    refunded_cents: int
    pending_cents: int
    room_cents: int


def refunds_by_line(checkout: Checkout) -> dict[int, LineRefunds]:
    """For each line of a checkout (its lines and refunds prefetched): the same
    room ``payments.services.refund_request`` allows. One query."""
    given_back: dict[tuple[int, int], int] = defaultdict(int)
    for row in (
        LedgerEntry.objects.filter(checkout=checkout, kind=LedgerEntry.Kind.REFUND)
        .values("student_id", "fee_id")
        .annotate(total=Sum("amount_cents"))
        .order_by()
    ):
        given_back[(row["student_id"], row["fee_id"])] = int(row["total"] or 0)
    pending: dict[int, int] = defaultdict(int)
    for refund in checkout.refunds.all():
        if refund.state == Refund.State.PENDING and refund.line_id is not None:
            pending[refund.line_id] += refund.amount_cents
    result = {}
    for line in checkout.lines.all():
        refunded = given_back[(line.student_id, line.fee_id)]
        result[line.pk] = LineRefunds(
            refunded_cents=refunded,
            pending_cents=pending[line.pk],
            room_cents=max(line.amount_cents - refunded - pending[line.pk], 0),
        )
    return result


def ledger_of_checkout(checkout: Checkout) -> list[LedgerEntry]:
    """The checkout household's entries for the checkout's fees, and the checkout's
    own entries wherever they were written (a child's other household, charged the
    fee, is where it was paid), oldest first, with who wrote them."""
    fee_ids = [line.fee_id for line in checkout.lines.all()]
    return list(
        LedgerEntry.objects.filter(
            Q(household_id=checkout.household_id, fee_id__in=fee_ids) | Q(checkout=checkout)
        )
        .select_related("household", "student", "fee", "created_by")
        .order_by("created_at", "pk")
    )


def refund_with_token(token: uuid.UUID | None) -> Refund | None:
    """The refund a refund form with this one-time token already asked for."""
    if token is None:
        return None
    return Refund.objects.filter(form_token=token).first()


def checkouts_of_household_for_staff(household: Household) -> list[Checkout]:
    """Every checkout of a household, newest first, with its lines (two queries)."""
    return list(
        Checkout.objects.filter(household=household)
        .select_related("created_by__guardian")
        .prefetch_related(
            Prefetch("lines", queryset=CheckoutLine.objects.select_related("student", "fee"))
        )
        .annotate(refunded_cents=_ledger_sum([LedgerEntry.Kind.REFUND], checkout=OuterRef("pk")))
        .order_by("-created_at", "-pk")
    )
