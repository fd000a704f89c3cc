"""Reads of the fee catalog and the ledger. A balance is always a sum of entries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from payments.models import Checkout, Fee, LedgerEntry
from registration.models import ClassEnrollment, Household, HouseholdStudent, Student

# Entries that pay or credit a fee, and refunds that undo them: their sum, negated,
# is how much of a fee is settled.
SETTLING_KINDS = (
    LedgerEntry.Kind.PAYMENT,
    LedgerEntry.Kind.REFUND,
    LedgerEntry.Kind.WAIVER,
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
    """For each (student id, fee id): how much is paid or waived, net of refunds, by
    any of the child's households (or by ``household`` only)."""
    pairs = list(pairs)
    if not pairs:
        return {}
    condition = Q()
    for student_id, fee_id in pairs:
        condition |= Q(student_id=student_id, fee_id=fee_id)
    rows = LedgerEntry.objects.filter(condition, kind__in=SETTLING_KINDS)
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
    """Whether a child may be charged a fee: it is active and before its deadline,
    and the child is in its class (field trips) or its school."""
    if not fee.active:
        return False
    if fee.deadline is not None and fee.deadline < timezone.localdate():
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
