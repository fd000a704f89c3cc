"""Every write about money: the ledger, checkouts and refunds.

The ledger only grows: each function here adds entries, none changes or removes one.
A checkout's or refund's state changes through ``workflow.services._apply`` (the
transition, its save and its ``TransitionLog`` row), in the transaction that writes
the ledger entries that go with it; emails are queued for after the commit. Stripe
is called only through ``payments.stripe_gateway``, never while a row is locked.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Model, Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from outbox.services import task_enqueue
from payments import stripe_gateway
from payments.models import (
    CURRENCY,
    Checkout,
    CheckoutLine,
    Fee,
    LedgerEntry,
    Refund,
)
from payments.money import money
from payments.selectors import (
    FIXED_FEE_SETTLING_KINDS,
    children_paid_for,
    fee_applies_to,
    fee_being_paid,
    fee_is_paid_for,
    owed_by_household,
    owed_cents,
    sections_of_students,
    settled_cents,
    students_of_household,
)
from registration.models import (
    MEAL_ELIGIBILITY_CHOICES,
    ClassEnrollment,
    ClassSection,
    Household,
    HouseholdStudent,
    Student,
)
from registration.templatetags.phones import help_phone
from workflow.services import _apply, audit_record, transition_log

log = logging.getLogger("payments")

# How long a Stripe Checkout page takes payment (Stripe allows 30 minutes to 24 hours).
CHECKOUT_MINUTES = 60
# A checkout this close to its end is not reused for a new attempt to pay; one that
# has no session yet needs more, since Stripe wants a session to last 30 minutes.
CHECKOUT_REUSE_MARGIN = datetime.timedelta(minutes=10)
SESSION_REUSE_MARGIN = datetime.timedelta(minutes=35)
STRIPE = "Stripe"
# The values of ``Student.meal_eligibility`` that waive fees (blank: not eligible).
MEAL_ELIGIBLE = tuple(value for value, _label in MEAL_ELIGIBILITY_CHOICES)


class CheckoutRefused(Exception):
    """The cart cannot be paid as asked; ``message`` says why, for the guardian."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RefundRefused(CheckoutRefused):
    """The refund cannot be made as asked; ``message`` says why, for finance."""


# -- the ledger ------------------------------------------------------------------------


def fee_assess(
    *,
    household: Household,
    student: Student,
    fee: Fee,
    actor: Any,
    amount_cents: int | None = None,
    note: str = "",
) -> LedgerEntry:
    """Charge a fee to a child of a household: an entry of what is owed."""
    amount = amount_cents if amount_cents is not None else fee.amount_cents
    if not amount or amount <= 0:
        raise CheckoutRefused(gettext("An assessment needs an amount above zero."))
    return LedgerEntry.objects.create(
        kind=LedgerEntry.Kind.ASSESSMENT,
        amount_cents=amount,
        household=household,
        student=student,
        fee=fee,
        created_by=actor,
        note=note,
    )


def fee_waive(
    *, household: Household, student: Student, fee: Fee, actor: Any, note: str
) -> LedgerEntry:
    """Forgive what the household owes for a fee (free or reduced-price meals)."""
    with transaction.atomic():
        Household.objects.select_for_update().get(pk=household.pk)
        owed = owed_cents(household=household, pairs=[(student.pk, fee.pk)])[(student.pk, fee.pk)]
        if owed <= 0:
            raise CheckoutRefused(gettext("Nothing is owed for this fee."))
        return LedgerEntry.objects.create(
            kind=LedgerEntry.Kind.WAIVER,
            amount_cents=-owed,
            household=household,
            student=student,
            fee=fee,
            created_by=actor,
            note=note,
        )


@dataclass(frozen=True)
class WaiversApplied:
    """What ``waivers_apply`` wrote: assessments of fees not assessed before, and
    waivers, with the total forgiven."""

    assessments: int = 0
    waivers: int = 0
    waived_cents: int = 0


WAIVER_NOTE = "free or reduced-price meals"
WAIVER_BATCH = 1000


def waivers_apply(
    *,
    students: Iterable[Student] | None = None,
    fees: Iterable[Fee] | None = None,
    actor: Any = None,
) -> WaiversApplied:
    """Waive, for every child eligible for free or reduced-price meals, every
    waivable fee that applies to them and is not settled yet (``None``: every such
    child, every such fee).

    For each pair the child's primary household is assessed what is still due if
    its ledger does not already say so, then a waiver forgives it. Lunch prepayment
    is never waived (it is money put on an account, not a charge). Idempotent: a
    second run writes nothing. A fixed number of queries (the entries are written in
    batches), with the fees locked so that two runs cannot both waive the same fee.
    For some children (a family's page, a checkout), the fees are locked only when
    there is something to write: most such calls find nothing and take no lock.
    """
    student_ids = None if students is None else sorted({s.pk for s in students})
    if student_ids == []:
        return WaiversApplied()
    fee_ids = None if fees is None else sorted({fee.pk for fee in fees})
    with transaction.atomic():
        if student_ids is not None:
            entries, applied = _waivers_planned(student_ids, fee_ids, actor, lock=False)
            if not entries:
                return applied
        entries, applied = _waivers_planned(student_ids, fee_ids, actor, lock=True)
        LedgerEntry.objects.bulk_create(entries, batch_size=WAIVER_BATCH)
    if applied.waivers:
        log.info(
            "waived %s fee(s) for free or reduced-price meals: %s",
            applied.waivers,
            applied.waived_cents,
        )
    return applied


def _waivers_planned(
    student_ids: list[int] | None, fee_ids: list[int] | None, actor: Any, *, lock: bool
) -> tuple[list[LedgerEntry], WaiversApplied]:
    """The entries ``waivers_apply`` writes, read with the fees locked or not."""
    fee_rows = (
        Fee.objects.filter(active=True, waivable_for_free_meals=True, amount_cents__gt=0)
        .exclude(kind=Fee.Kind.LUNCH_PREPAY)
        .order_by("pk")
    )
    if lock:
        # As in ``checkout_create``: entries naming these fees may be written by
        # others meanwhile (key-share locks), which a full lock would wait for.
        fee_rows = fee_rows.select_for_update(no_key=True)
    if fee_ids is not None:
        fee_rows = fee_rows.filter(pk__in=fee_ids)
    today = timezone.localdate()
    waivable = [fee for fee in fee_rows if fee.deadline is None or fee.deadline >= today]
    if not waivable:
        return [], WaiversApplied()
    members = HouseholdStudent.objects.filter(
        is_primary=True, student__enabled=True, student__meal_eligibility__in=MEAL_ELIGIBLE
    )
    if student_ids is not None:
        members = members.filter(student_id__in=student_ids)
    school_ids = {fee.school_id for fee in waivable}
    if None not in school_ids:
        members = members.filter(student__school_id__in=school_ids)
    eligible = list(members.select_related("student"))
    if not eligible:
        return [], WaiversApplied()
    eligible_ids: Any = (
        [member.student_id for member in eligible]
        if student_ids is not None
        else members.values("student_id")
    )
    section_ids = {fee.section_id for fee in waivable if fee.section_id is not None}
    sections: dict[int, set[int]] = {}
    if section_ids:
        for student_id, section_id in ClassEnrollment.objects.filter(
            section_id__in=section_ids, student_id__in=eligible_ids
        ).values_list("student_id", "section_id"):
            sections.setdefault(student_id, set()).add(section_id)
    settled: dict[tuple[int, int], int] = defaultdict(int)
    balance: dict[tuple[int, int, int], int] = defaultdict(int)
    for row in (
        LedgerEntry.objects.filter(
            fee_id__in=[fee.pk for fee in waivable], student_id__in=eligible_ids
        )
        .values("household_id", "student_id", "fee_id", "kind")
        .annotate(total=Sum("amount_cents"))
        .order_by()
    ):
        total = int(row["total"] or 0)
        balance[(row["household_id"], row["student_id"], row["fee_id"])] += total
        if row["kind"] in FIXED_FEE_SETTLING_KINDS:
            settled[(row["student_id"], row["fee_id"])] -= total
    entries = []
    assessments = waivers = waived_cents = 0
    for member in eligible:
        student = member.student
        for fee in waivable:
            if not fee_applies_to(fee, student, sections.get(student.pk, set())):
                continue
            assert fee.amount_cents is not None
            remaining = fee.amount_cents - settled[(student.pk, fee.pk)]
            if remaining <= 0:
                continue
            common = {
                "household_id": member.household_id,
                "student": student,
                "fee": fee,
                "created_by": actor,
                "note": WAIVER_NOTE,
            }
            # What the household's ledger does not show as owed yet is assessed
            # first, so that the waiver forgives a charge that is on the books.
            unassessed = remaining - balance[(member.household_id, student.pk, fee.pk)]
            if unassessed > 0:
                entries.append(
                    LedgerEntry(kind=LedgerEntry.Kind.ASSESSMENT, amount_cents=unassessed, **common)
                )
                assessments += 1
            entries.append(
                LedgerEntry(kind=LedgerEntry.Kind.WAIVER, amount_cents=-remaining, **common)
            )
            waivers += 1
            waived_cents += remaining
    return entries, WaiversApplied(
        assessments=assessments, waivers=waivers, waived_cents=waived_cents
    )


def household_waivers_apply(
    *,
    household: Household,
    fees: Iterable[Fee] | None = None,
    members: Iterable[HouseholdStudent] | None = None,
) -> WaiversApplied:
    """``waivers_apply`` for the household's children eligible for free or
    reduced-price meals (of ``fees``, or every fee): a child who joined a class or a
    school after its fees were made is waived when the family looks at its fees or
    pays. One query when no child is eligible; none when the caller has the
    household's children with their records (``members``) already."""
    if members is None:
        students = list(
            Student.objects.filter(
                householdstudent__household=household,
                enabled=True,
                meal_eligibility__in=MEAL_ELIGIBLE,
            ).only("pk")
        )
    else:
        students = [
            member.student
            for member in members
            if member.student.enabled and member.student.meal_eligibility in MEAL_ELIGIBLE
        ]
    if not students:
        return WaiversApplied()
    return waivers_apply(students=students, fees=fees)


def ledger_adjust(
    *,
    household: Household,
    amount_cents: int,
    actor: Any,
    note: str,
    student: Student | None = None,
    fee: Fee | None = None,
) -> LedgerEntry:
    """A correction by finance: positive, the household owes more; negative, less."""
    if amount_cents == 0 or not note.strip():
        raise CheckoutRefused(gettext("An adjustment needs an amount and a reason."))
    return LedgerEntry.objects.create(
        kind=LedgerEntry.Kind.ADJUSTMENT,
        amount_cents=amount_cents,
        household=household,
        student=student,
        fee=fee,
        created_by=actor,
        note=note.strip(),
    )


# -- the catalog -----------------------------------------------------------------------


class FeeRefused(CheckoutRefused):
    """The catalog cannot change as asked; ``message`` says why, for staff."""


# A fee's title and description for families who read Spanish or Chinese.
TRANSLATED_TEXTS = ("title_es", "title_zh", "description_es", "description_zh")
# What finance may change on a fee; a field trip's teacher owns the rest of it (finance
# may add the translations of its title).
FEE_EDITABLE = (
    "title",
    "description",
    *TRANSLATED_TEXTS,
    "amount_cents",
    "min_amount_cents",
    "max_amount_cents",
    "campaign",
    "school",
    "gl_code",
    "waivable_for_free_meals",
    "deadline",
)
FIELD_TRIP_EDITABLE = ("gl_code", *TRANSLATED_TEXTS)


def _audit_value(value: Any) -> Any:
    if isinstance(value, Model):
        return value.pk
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def fee_create(
    *,
    kind: str,
    title: str,
    gl_code: str,
    actor: Any,
    description: str = "",
    title_es: str = "",
    title_zh: str = "",
    description_es: str = "",
    description_zh: str = "",
    amount_cents: int | None = None,
    min_amount_cents: int | None = None,
    max_amount_cents: int | None = None,
    campaign: Any = None,
    school: Any = None,
    waivable_for_free_meals: bool = False,
    deadline: datetime.date | None = None,
) -> tuple[Fee, WaiversApplied]:
    """Add a lunch prepayment, an optional item or a required fee to the catalog,
    and waive it at once for the children eligible for free or reduced-price meals
    (field trips are made by their teacher: ``field_trip_create``)."""
    if kind == Fee.Kind.FIELD_TRIP:
        raise FeeRefused(gettext("A field trip is created by its class's teacher."))
    with transaction.atomic():
        fee = Fee.objects.create(
            kind=kind,
            title=title,
            description=description,
            title_es=title_es,
            title_zh=title_zh,
            description_es=description_es,
            description_zh=description_zh,
            amount_cents=amount_cents,
            min_amount_cents=min_amount_cents,
            max_amount_cents=max_amount_cents,
            campaign=campaign,
            school=school,
            gl_code=gl_code,
            waivable_for_free_meals=waivable_for_free_meals and kind != Fee.Kind.LUNCH_PREPAY,
            deadline=deadline,
            created_by=actor,
        )
        waived = waivers_apply(fees=[fee], actor=actor)
        audit_record(
            action="create",
            obj=fee,
            actor=actor,
            detail={"kind": kind, "gl_code": gl_code, "waivers": waived.waivers},
        )
    return fee, waived


def fee_update(*, fee: Fee, changes: dict[str, Any], actor: Any) -> tuple[Fee, WaiversApplied]:
    """Change a fee of the catalog. Its amount does not change once a family paid it
    (or is paying it on Stripe's page): the ledger keeps what they paid, and a new
    fee is the way to charge another amount. Waivers are applied again afterwards
    (a fee that became waivable, a later deadline)."""
    with transaction.atomic():
        locked = Fee.objects.select_for_update().get(pk=fee.pk)
        editable = FIELD_TRIP_EDITABLE if locked.kind == Fee.Kind.FIELD_TRIP else FEE_EDITABLE
        unknown = set(changes) - set(editable)
        if unknown:
            raise FeeRefused(
                gettext("These details of the fee cannot be changed here: %(fields)s.")
                % {"fields": ", ".join(sorted(unknown))}
            )
        changed = {
            name: value
            for name, value in changes.items()
            if _audit_value(getattr(locked, name)) != _audit_value(value)
        }
        if not changed:
            return locked, WaiversApplied()
        if "amount_cents" in changed and fee_is_paid_for(locked):
            raise FeeRefused(
                gettext(
                    "Families have already paid %(amount)s for this fee, so its amount "
                    "cannot change. Create a new fee with the new amount and deactivate "
                    "this one."
                )
                % {"amount": money(locked.amount_cents or 0)}
            )
        before = {name: _audit_value(getattr(locked, name)) for name in changed}
        for name, value in changed.items():
            setattr(locked, name, value)
        locked.save(update_fields=[*changed, "updated_at"])
        waived = waivers_apply(fees=[locked], actor=actor)
        audit_record(
            action="change",
            obj=locked,
            actor=actor,
            detail={
                "changes": {
                    name: [before[name], _audit_value(value)] for name, value in changed.items()
                },
                "waivers": waived.waivers,
            },
        )
    return locked, waived


@dataclass(frozen=True)
class TripCreated:
    fee: Fee
    assessed: int  # children charged the trip
    waived: int  # of them, children whose trip was waived
    without_household: int  # enrolled children with no primary household on file


def field_trip_create(
    *,
    section: ClassSection,
    title: str,
    event_date: datetime.date,
    amount_cents: int,
    deadline: datetime.date,
    actor: Any,
    description: str = "",
    waivable_for_free_meals: bool = True,
    title_es: str = "",
    title_zh: str = "",
    description_es: str = "",
    description_zh: str = "",
) -> TripCreated:
    """A teacher's field trip for one of their classes: the fee, an assessment for
    every enabled child enrolled in the class (to the child's primary household),
    and the waivers of the children eligible for free or reduced-price meals, in
    one transaction. The same trip twice (a double submit) is refused."""
    if amount_cents <= 0:
        raise FeeRefused(gettext("The amount must be more than $0.00."))
    with transaction.atomic():
        ClassSection.objects.select_for_update().get(pk=section.pk)
        if Fee.objects.filter(
            kind=Fee.Kind.FIELD_TRIP,
            section=section,
            title__iexact=title,
            event_date=event_date,
            active=True,
        ).exists():
            raise FeeRefused(
                gettext("This class already has the trip “%(title)s” on that date.")
                % {"title": title}
            )
        fee = Fee.objects.create(
            kind=Fee.Kind.FIELD_TRIP,
            title=title,
            description=description,
            title_es=title_es,
            title_zh=title_zh,
            description_es=description_es,
            description_zh=description_zh,
            amount_cents=amount_cents,
            section=section,
            event_date=event_date,
            deadline=deadline,
            waivable_for_free_meals=waivable_for_free_meals,
            created_by=actor,
        )
        enrolled = set(
            ClassEnrollment.objects.filter(section=section, student__enabled=True).values_list(
                "student_id", flat=True
            )
        )
        primary = dict(
            HouseholdStudent.objects.filter(student_id__in=enrolled, is_primary=True).values_list(
                "student_id", "household_id"
            )
        )
        LedgerEntry.objects.bulk_create(
            (
                LedgerEntry(
                    kind=LedgerEntry.Kind.ASSESSMENT,
                    amount_cents=amount_cents,
                    household_id=household_id,
                    student_id=student_id,
                    fee=fee,
                    created_by=actor,
                    note=title,
                )
                for student_id, household_id in sorted(primary.items())
            ),
            batch_size=WAIVER_BATCH,
        )
        waived = waivers_apply(fees=[fee], actor=actor)
        audit_record(
            action="create",
            obj=fee,
            actor=actor,
            detail={
                "section": section.pk,
                "amount_cents": amount_cents,
                "assessed": len(primary),
                "waived": waived.waivers,
            },
        )
    return TripCreated(
        fee=fee,
        assessed=len(primary),
        waived=waived.waivers,
        without_household=len(enrolled) - len(primary),
    )


def _fee_close(fee: Fee, *, actor: Any, note: str) -> int:
    """Deactivate a locked fee and cancel what households still owe for it with
    adjustments; returns how many were written."""
    Fee.objects.filter(pk=fee.pk).update(active=False, updated_at=timezone.now())
    fee.active = False
    open_balances = (
        LedgerEntry.objects.filter(fee=fee)
        .values("household_id", "student_id")
        .annotate(total=Sum("amount_cents"))
        .filter(total__gt=0)
        .order_by("household_id", "student_id")
    )
    entries = [
        LedgerEntry(
            kind=LedgerEntry.Kind.ADJUSTMENT,
            amount_cents=-int(row["total"]),
            household_id=row["household_id"],
            student_id=row["student_id"],
            fee=fee,
            created_by=actor,
            note=note,
        )
        for row in open_balances
    ]
    LedgerEntry.objects.bulk_create(entries, batch_size=WAIVER_BATCH)
    audit_record(
        action="change",
        obj=fee,
        actor=actor,
        detail={"active": [True, False], "adjustments": len(entries), "note": note},
    )
    return len(entries)


def field_trip_cancel(*, fee: Fee, actor: Any, reason: str = "") -> int:
    """Call a trip off before anyone paid for it: the trip is deactivated and every
    open assessment cancelled by an adjustment with ``reason``. Once a family has
    paid (and was not refunded in full), or is paying right now, it is refused:
    finance refunds them first. Returns the number of adjustments written."""
    with transaction.atomic():
        locked = Fee.objects.select_for_update().get(pk=fee.pk)
        if locked.kind != Fee.Kind.FIELD_TRIP:
            raise FeeRefused(gettext("Only a field trip can be cancelled here."))
        if not locked.active:
            raise FeeRefused(gettext("This trip was already cancelled."))
        if children_paid_for(locked):
            # No count: with what the teacher's page shows, it would tell how many
            # children had the trip waived.
            raise FeeRefused(
                gettext(
                    "Families have already paid for this trip. Ask finance to refund "
                    "them; then the trip can be cancelled."
                )
            )
        if fee_being_paid(locked):
            raise FeeRefused(
                gettext("A family is paying for this trip right now. Please try again in an hour.")
            )
        note = "field trip cancelled" + (f": {reason.strip()}" if reason.strip() else "")
        return _fee_close(locked, actor=actor, note=note)


def fee_deactivate(*, fee: Fee, actor: Any) -> int:
    """Take a fee out of the catalog: families can no longer pay it, and what is
    still owed for it is cancelled by adjustments. Payments already made stay (a
    refund is a separate decision). Refused while a family is paying it on
    Stripe's page (the fee's lock orders this with ``checkout_create``). Returns the
    number of adjustments written."""
    with transaction.atomic():
        locked = Fee.objects.select_for_update().get(pk=fee.pk)
        if locked.kind == Fee.Kind.FIELD_TRIP:
            raise FeeRefused(
                gettext("A field trip is cancelled by its teacher, on the trip's page.")
            )
        if not locked.active:
            raise FeeRefused(gettext("This fee is already inactive."))
        if fee_being_paid(locked):
            raise FeeRefused(
                gettext("A family is paying this fee right now. Please try again in an hour.")
            )
        return _fee_close(locked, actor=actor, note="fee deactivated")


# -- checkout --------------------------------------------------------------------------


@dataclass(frozen=True)
class PricedLine:
    student: Student
    fee: Fee
    amount_cents: int
    description: str

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.student.pk, self.fee.pk, self.amount_cents)


def _lines_priced(
    household: Household, lines: Sequence[tuple[Student, Fee, int | None]]
) -> list[PricedLine]:
    """Every amount computed again from the catalog and the ledger: what the browser
    sent is only the family's choice of lunch amounts."""
    if not lines:
        raise CheckoutRefused(gettext("Please choose at least one fee to pay."))
    children = students_of_household(household)
    pairs = [(student.pk, fee.pk) for student, fee, _amount in lines]
    if len(set(pairs)) != len(pairs):
        raise CheckoutRefused(gettext("A fee is in the cart twice for the same child."))
    fees = Fee.objects.in_bulk({fee.pk for _student, fee, _amount in lines})
    sections = sections_of_students(children)
    settled = settled_cents(pairs=pairs)
    priced = []
    for given_student, given_fee, chosen in lines:
        student = children.get(given_student.pk)
        fee = fees.get(given_fee.pk)
        if student is None or fee is None:
            raise CheckoutRefused(gettext("This cart has a child or a fee of another household."))
        if not fee_applies_to(fee, student, sections.get(student.pk, set())):
            raise CheckoutRefused(
                gettext("“%(fee)s” cannot be paid for %(child)s.")
                % {"fee": fee.family_title, "child": student.full_name}
            )
        already = settled[(student.pk, fee.pk)]
        if fee.is_lunch:
            assert fee.min_amount_cents is not None and fee.max_amount_cents is not None
            highest = min(fee.max_amount_cents - already, fee.max_amount_cents)
            if (
                not isinstance(chosen, int)
                or isinstance(chosen, bool)
                or not fee.min_amount_cents <= chosen <= highest
            ):
                raise CheckoutRefused(
                    gettext("Please choose a lunch amount from %(low)s to %(high)s for %(child)s.")
                    % {
                        "low": money(fee.min_amount_cents),
                        "high": money(max(highest, 0)),
                        "child": student.full_name,
                    }
                )
            amount = chosen
        else:
            assert fee.amount_cents is not None
            amount = fee.amount_cents - already
            if amount <= 0:
                raise CheckoutRefused(
                    gettext("“%(fee)s” is already paid for %(child)s.")
                    % {"fee": fee.family_title, "child": student.full_name}
                )
            if chosen is not None and chosen != amount:
                raise CheckoutRefused(
                    gettext("The amount of “%(fee)s” has changed; please review your cart.")
                    % {"fee": fee.family_title}
                )
        priced.append(
            PricedLine(
                student=student,
                fee=fee,
                amount_cents=amount,
                description=f"{fee.family_title} – {student.full_name}"[:300],
            )
        )
    return priced


def _line_keys(checkout: Checkout) -> set[tuple[int, int, int]]:
    return {(line.student_id, line.fee_id, line.amount_cents) for line in checkout.lines.all()}


def _checkout_urls(checkout: Checkout, return_path: str | None = None) -> tuple[str, str]:
    """Where Stripe sends the family back (paid, or cancelled): the checkout's own
    page, or ``return_path`` of ours (the wizard's fee step) told which checkout.
    Neither changes anything: only the webhook marks a checkout paid."""
    site = settings.SITE_URL.rstrip("/")
    if return_path:
        back = f"{site}{return_path}?checkout={checkout.pk}"
        return back, f"{back}&cancelled=1"
    back = f"{site}{reverse('checkout_status', args=[checkout.pk])}"
    return back, f"{back}?cancelled=1"


def checkout_create(
    *,
    household: Household,
    lines: Sequence[tuple[Student, Fee, int | None]],
    user: Any,
    return_path: str | None = None,
) -> Checkout:
    """Start paying some fees of a household's children on Stripe's page.

    ``lines`` are (child, fee, amount) with the amount chosen for lunch (``None``
    otherwise): every amount is computed again here from the catalog, and a fee
    already paid, a child or fee of another household, or a lunch amount outside
    its range is refused (``CheckoutRefused``). The same cart asked for again (a
    double submit, a retry after Stripe did not answer) gets the same checkout and
    the same Stripe session; a different cart replaces the household's open one.
    Stripe errors come out as ``PaymentServiceError`` with a message for the family.
    ``return_path`` (a path of ours) is where Stripe sends the family back; by
    default the checkout's own page.
    """
    for _attempt in range(3):
        checkout, replaced = _checkout_prepare(household, lines, user)
        if checkout is not None:
            break
        for old in replaced:
            _checkout_close_at_stripe(old)
    else:
        raise CheckoutRefused(gettext("Your cart changed while it was being paid; please retry."))
    if not checkout.stripe_session_id:
        success_url, cancel_url = _checkout_urls(checkout, return_path)
        session = stripe_gateway.checkout_session_create(
            checkout=checkout,
            lines=list(checkout.lines.all()),
            success_url=success_url,
            cancel_url=cancel_url,
            customer_email=getattr(user, "email", "") or "",
        )
        Checkout.objects.filter(pk=checkout.pk, stripe_session_id__isnull=True).update(
            stripe_session_id=session.id, stripe_session_url=session.url, updated_at=timezone.now()
        )
        checkout.refresh_from_db()
    return checkout


def _checkout_prepare(
    household: Household, lines: Sequence[tuple[Student, Fee, int | None]], user: Any
) -> tuple[Checkout | None, list[Checkout]]:
    """In one transaction, with the children locked, then the fees (lowest id
    first): the open checkout of the same cart, or a new one; or, when open
    checkouts with some of these fees have Stripe sessions to close first, those
    checkouts. A trip cancelled or a fee deactivated at the same moment takes the
    same fee lock, so either this sees it inactive or it sees this checkout.
    Children eligible for free or reduced-price meals are waived first (one who
    joined the class after the trip was made pays nothing)."""
    with transaction.atomic():
        # FOR NO KEY UPDATE: a cancellation holding the fee writes ledger entries
        # naming the child (a key-share lock), and a payment holding its checkout
        # writes entries naming the fee; a full lock here would deadlock with them.
        list(
            Student.objects.select_for_update(no_key=True)
            .filter(pk__in=sorted({student.pk for student, _fee, _amount in lines}))
            .order_by("pk")
        )
        fees = list(
            Fee.objects.select_for_update(no_key=True)
            .filter(pk__in=sorted({fee.pk for _student, fee, _amount in lines}))
            .order_by("pk")
        )
        # Only the cart's fees (all locked already): locking others now, after
        # these, could deadlock with a checkout locking them in order.
        household_waivers_apply(household=household, fees=fees)
        priced = _lines_priced(household, lines)
        wanted = {line.key for line in priced}
        pairs = {(line.student.pk, line.fee.pk) for line in priced}
        now = timezone.now()
        overlapping = [
            checkout
            for checkout in Checkout.objects.select_for_update()
            .filter(
                state=Checkout.State.OPEN,
                pk__in=CheckoutLine.objects.filter(student_id__in=[p[0] for p in pairs]).values(
                    "checkout_id"
                ),
            )
            .order_by("pk")
            .prefetch_related("lines")
            if {(k[0], k[1]) for k in _line_keys(checkout)} & pairs
        ]
        for checkout in overlapping:
            if checkout.household_id != household.pk and checkout.expires_at > now:
                raise CheckoutRefused(
                    gettext(
                        "Another household of your child is paying one of these fees "
                        "right now; please try again later."
                    )
                )
            margin = CHECKOUT_REUSE_MARGIN if checkout.stripe_session_id else SESSION_REUSE_MARGIN
            if (
                checkout.household_id == household.pk
                and _line_keys(checkout) == wanted
                and checkout.expires_at > now + margin
            ):
                return checkout, []
        at_stripe = []
        for checkout in overlapping:
            if checkout.stripe_session_id:
                at_stripe.append(checkout)
            else:
                _apply(checkout, "expire", actor=user, note="replaced by another cart")
        if at_stripe:
            return None, at_stripe
        total = sum(line.amount_cents for line in priced)
        checkout = Checkout.objects.create(
            household=household,
            created_by=user,
            total_cents=total,
            currency=CURRENCY,
            expires_at=now + datetime.timedelta(minutes=CHECKOUT_MINUTES),
        )
        CheckoutLine.objects.bulk_create(
            CheckoutLine(
                checkout=checkout,
                student=line.student,
                fee=line.fee,
                amount_cents=line.amount_cents,
                description=line.description,
            )
            for line in priced
        )
        transition_log(
            obj=checkout,
            transition="create",
            source="",
            target=checkout.state,
            actor=user,
            note=money(total),
        )
    return checkout, []


def _checkout_close_at_stripe(checkout: Checkout) -> None:
    """Stop the Stripe session of a checkout the family replaced, then expire it here.
    If Stripe already took the money, the family waits for the webhook."""
    assert checkout.stripe_session_id
    try:
        session = stripe_gateway.checkout_session_expire(session_id=checkout.stripe_session_id)
    except stripe_gateway.PaymentServiceRefused:
        session = stripe_gateway.checkout_session_retrieve(session_id=checkout.stripe_session_id)
    if session.status == "expired":
        checkout_expire(checkout=checkout, note="replaced by another cart")
        return
    raise CheckoutRefused(
        gettext(
            "A payment for some of these fees has just been made; please wait a minute "
            "and look at your fees again."
        )
    )


def _locked(checkout: Checkout) -> Checkout:
    return Checkout.objects.select_for_update().select_related("household").get(pk=checkout.pk)


def checkout_pay(
    *, checkout: Checkout, payment_intent: str, note: str = "", actor_label: str = STRIPE
) -> bool:
    """Stripe took the money: the checkout is paid, and each line is written to the
    ledger in one transaction; the receipt is queued for after the commit. Returns
    False when it was already paid (nothing is written twice).

    A lunch amount (chosen by the family) is assessed with its payment. A fixed fee
    is paid where it is owed: in the paying household, or in another household of
    the child that was charged it (a split family); only what is neither owed
    anywhere nor settled already is assessed, so a fee waived or paid while the
    family was on Stripe's page leaves a credit that finance can refund.
    """
    from payments.tasks import checkout_receipt_send_task

    with transaction.atomic(savepoint=False):
        locked = _locked(checkout)
        if locked.state == Checkout.State.PAID:
            return False
        _apply(
            locked,
            "pay",
            actor=None,
            actor_label=actor_label,
            note=note,
            payment_intent=payment_intent,
        )
        lines = list(locked.lines.select_related("student", "fee"))
        lunch = [(line.student_id, line.fee_id) for line in lines if line.fee.is_lunch]
        fixed = [(line.student_id, line.fee_id) for line in lines if not line.fee.is_lunch]
        owed_here = owed_cents(household=locked.household, pairs=lunch)
        owed_where = owed_by_household(pairs=fixed)
        settled = settled_cents(pairs=fixed)
        entries = []
        for line in lines:
            pair = (line.student_id, line.fee_id)
            household_id = locked.household_id
            if line.fee.is_lunch:
                unassessed = line.amount_cents - max(owed_here[pair], 0)
            else:
                where = owed_where[pair]
                if where and household_id not in where:
                    # Charged to another household of the child: paid there.
                    household_id = min(where, key=lambda pk: (-where[pk], pk))
                due = max((line.fee.amount_cents or 0) - settled[pair], 0)
                unassessed = min(line.amount_cents, due) - where.get(household_id, 0)
            common = {
                "household_id": household_id,
                "student": line.student,
                "fee": line.fee,
                "checkout": locked,
                "stripe_payment_intent": locked.stripe_payment_intent,
                "actor_label": actor_label,
            }
            if unassessed > 0:
                entries.append(
                    LedgerEntry(
                        kind=LedgerEntry.Kind.ASSESSMENT,
                        amount_cents=unassessed,
                        note=line.staff_description,
                        **common,
                    )
                )
            entries.append(
                LedgerEntry(
                    kind=LedgerEntry.Kind.PAYMENT,
                    amount_cents=-line.amount_cents,
                    note=line.staff_description,
                    **common,
                )
            )
        LedgerEntry.objects.bulk_create(entries)
        task_enqueue(checkout_receipt_send_task, locked.pk)
    return True


def _checkout_close(checkout: Checkout, name: str, note: str, actor: Any) -> bool:
    with transaction.atomic(savepoint=False):
        locked = _locked(checkout)
        if locked.state != Checkout.State.OPEN:
            return False
        _apply(locked, name, actor=actor, actor_label="" if actor else STRIPE, note=note)
    return True


def checkout_expire(*, checkout: Checkout, note: str = "", actor: Any = None) -> bool:
    """The Stripe session ended without payment. Only an open checkout expires: a
    paid one stays paid. Returns whether it changed."""
    return _checkout_close(checkout, "expire", note, actor)


def checkout_fail(*, checkout: Checkout, note: str = "", actor: Any = None) -> bool:
    """An asynchronous payment (a bank debit) failed. Only an open checkout fails."""
    return _checkout_close(checkout, "fail", note, actor)


def checkout_receipt_send(*, checkout_id: int) -> bool:
    """Render the PDF receipt of a paid checkout if needed, and email it to the
    guardian who paid, once: the first delivery to claim the receipt's ``emailed_at``
    sends; a failed send releases the claim so that the retry sends. A checkout
    whose plain receipt went out before receipts were PDFs gets its PDF (to download)
    but no second email."""
    from documents.models import Receipt
    from documents.services import receipt_number, receipt_render
    from payments import local_stripe
    from registration.selectors import email_on_file, guardian_for

    checkout = (
        Checkout.objects.select_related("created_by", "household")
        .filter(pk=checkout_id, state=Checkout.State.PAID)
        .first()
    )
    if checkout is None:
        return False
    receipt = receipt_render(checkout=checkout)
    payer = checkout.created_by
    guardian = guardian_for(payer)
    email = payer.email or (email_on_file(guardian) if guardian is not None else "")
    if not email or checkout.receipt_sent_at is not None:
        return False
    now = timezone.now()
    claimed = Receipt.objects.filter(pk=receipt.pk, emailed_at__isnull=True).update(emailed_at=now)
    if not claimed:
        return False
    try:
        with receipt.pdf.open("rb") as handle:
            pdf = handle.read()
        # The email in the language of its PDF: the paying guardian's, else the
        # household's (``documents.services.receipt_language``); amounts written for it.
        with translation.override(receipt.language):
            context = {
                "name": guardian.full_name if guardian is not None else payer.get_full_name(),
                "number": receipt_number(checkout),
                "lines": [
                    {
                        "description": line.description_in(receipt.language),
                        "amount": money(line.amount_cents),
                    }
                    for line in checkout.lines.select_related("fee", "student").order_by("pk")
                ],
                "total": money(checkout.total_cents),
                "reference": checkout.reference,
                "receipt_url": settings.SITE_URL.rstrip("/")
                + reverse("receipt_download", args=[checkout.pk]),
                "district": settings.DISTRICT_NAME,
                "help_email": settings.DISTRICT_HELP_EMAIL,
                "help_phone": help_phone(),
                "test_payment": local_stripe.is_local_payment(checkout.stripe_payment_intent),
            }
            subject = render_to_string("documents/email/receipt_subject.txt", context)
            body = render_to_string("documents/email/receipt_message.txt", context)
            filename = gettext("receipt-%(number)s.pdf") % {"number": context["number"]}
        message = EmailMessage(
            " ".join(subject.split()), body, settings.DEFAULT_FROM_EMAIL, [email]
        )
        message.attach(filename, pdf, "application/pdf")
        message.send()
    except Exception:
        Receipt.objects.filter(pk=receipt.pk).update(emailed_at=None)
        raise
    Checkout.objects.filter(pk=checkout.pk, receipt_sent_at__isnull=True).update(
        receipt_sent_at=now
    )
    return True


# -- refunds ---------------------------------------------------------------------------


def _refunded_by_line(checkout: Checkout) -> dict[tuple[int, int], int]:
    """What the ledger gave back so far for each (student id, fee id) of a checkout."""
    rows = (
        LedgerEntry.objects.filter(checkout=checkout, kind=LedgerEntry.Kind.REFUND)
        .values("student_id", "fee_id")
        .annotate(total=Sum("amount_cents"))
        .order_by()
    )
    return {(r["student_id"], r["fee_id"]): int(r["total"]) for r in rows}


class RefundAlreadyRequested(RefundRefused):
    """The same refund form was posted again (a double click): ``refund`` is the one
    its first post asked for; nothing new was asked of Stripe."""

    def __init__(self, refund: Refund) -> None:
        super().__init__(
            gettext(
                "This refund of %(amount)s was already asked for; it was not asked for "
                "a second time."
            )
            % {"amount": money(refund.amount_cents)}
        )
        self.refund = refund


def refund_request(
    *,
    line: CheckoutLine,
    amount_cents: int,
    reason: str,
    actor: Any,
    form_token: uuid.UUID | None = None,
    fee_released: bool = False,
) -> Refund:
    """Give back some or all of one paid line through Stripe. The ledger entry is
    written when Stripe confirms the refund (the webhook), not here.

    ``form_token`` is the one-time token of the form that asked: the same token
    again (a double click, two posts racing) raises ``RefundAlreadyRequested``
    with the refund it first made. ``fee_released``: the family no longer owes the
    fee once the money is back (otherwise a fixed fee is owed again, as after the
    refund of a payment made twice); lunch money given back is never owed again."""
    with transaction.atomic():
        checkout = _locked(line.checkout)
        if form_token is not None:
            existing = Refund.objects.filter(form_token=form_token).first()
            if existing is not None:
                raise RefundAlreadyRequested(existing)
        if checkout.state != Checkout.State.PAID or not checkout.stripe_payment_intent:
            raise RefundRefused(gettext("Only a paid checkout can be refunded."))
        given_back = _refunded_by_line(checkout).get((line.student_id, line.fee_id), 0)
        pending = (
            Refund.objects.filter(line=line, state=Refund.State.PENDING).aggregate(
                total=Sum("amount_cents")
            )["total"]
            or 0
        )
        if not 0 < amount_cents <= line.amount_cents - given_back - pending:
            raise RefundRefused(
                gettext("At most %(amount)s of this fee can still be refunded.")
                % {"amount": money(max(line.amount_cents - given_back - pending, 0))}
            )
        try:
            with transaction.atomic():
                refund = Refund.objects.create(
                    checkout=checkout,
                    line=line,
                    amount_cents=amount_cents,
                    reason=reason,
                    requested_by=actor,
                    form_token=form_token,
                    fee_released=fee_released or line.fee.is_lunch,
                )
        except IntegrityError:
            # The same form, posted at the same moment, made it first.
            raise RefundAlreadyRequested(Refund.objects.get(form_token=form_token)) from None
        transition_log(
            obj=refund,
            transition="request",
            source="",
            target=refund.state,
            actor=actor,
            note=reason,
        )
    try:
        refund_submit(refund=refund)
    except stripe_gateway.PaymentServiceRefused:
        # Stripe refuses the same request every time: this refund never happens, and
        # must not keep holding its amount as pending.
        with transaction.atomic():
            locked = Refund.objects.select_for_update().get(pk=refund.pk)
            if locked.state == Refund.State.PENDING and not locked.stripe_refund_id:
                _apply(locked, "fail", actor=actor, note="refused by Stripe")
        raise
    return refund


def refund_submit(*, refund: Refund) -> Refund:
    """Send a pending refund to Stripe (again, after Stripe did not answer: the same
    idempotency key makes it one refund)."""
    if refund.stripe_refund_id:
        return refund
    checkout = refund.checkout
    created = stripe_gateway.refund_create(
        refund=refund, payment_intent=checkout.stripe_payment_intent
    )
    Refund.objects.filter(pk=refund.pk, stripe_refund_id__isnull=True).update(
        stripe_refund_id=created.id, stripe_charge=created.charge, updated_at=timezone.now()
    )
    refund.refresh_from_db()
    return refund


def _refund_of(checkout: Checkout, stripe_refund: stripe_gateway.GatewayRefund) -> Refund:
    """Our row of a Stripe refund, locked: the one we asked for, or a new row for a
    refund made in Stripe's dashboard."""
    found = Refund.objects.select_for_update().filter(stripe_refund_id=stripe_refund.id).first()
    if found is None and stripe_refund.metadata.get("refund_id", "").isdigit():
        found = (
            Refund.objects.select_for_update()
            .filter(
                pk=int(stripe_refund.metadata["refund_id"]),
                reference=stripe_refund.metadata.get("refund_reference"),
                checkout=checkout,
                stripe_refund_id__isnull=True,
            )
            .first()
        )
        if found is not None:
            found.stripe_refund_id = stripe_refund.id
            found.stripe_charge = stripe_refund.charge
            found.save(update_fields=["stripe_refund_id", "stripe_charge", "updated_at"])
    if found is None:
        found = Refund.objects.create(
            checkout=checkout,
            amount_cents=stripe_refund.amount,
            origin=Refund.Origin.STRIPE,
            stripe_refund_id=stripe_refund.id,
            stripe_charge=stripe_refund.charge,
            reason="made in Stripe",
        )
        transition_log(
            obj=found,
            transition="request",
            source="",
            target=found.state,
            actor_label=STRIPE,
            note="refund made in Stripe",
        )
    return found


def refund_succeed(*, checkout: Checkout, stripe_refund: stripe_gateway.GatewayRefund) -> bool:
    """Stripe gave the money back: the refund's ledger entries (its line, or spread
    over the checkout's lines in order), once. Returns whether anything was written.
    Must run inside the caller's transaction, the checkout paid."""
    with transaction.atomic(savepoint=False):
        checkout = _locked(checkout)
        refund = _refund_of(checkout, stripe_refund)
        if refund.state != Refund.State.PENDING:
            return False  # already recorded, or failed (a failure is Stripe's last word)
        _apply(refund, "succeed", actor=None, actor_label=STRIPE, note=stripe_refund.id)
        lines = (
            [refund.line] if refund.line is not None else list(checkout.lines.select_related("fee"))
        )
        given_back = _refunded_by_line(checkout)
        # Where each line was paid: the paying household, or the child's other
        # household that was charged the fee (``checkout_pay``).
        paid_in = _paid_in(checkout)
        left = refund.amount_cents
        entries = []
        for position, line in enumerate(lines):
            room = line.amount_cents - given_back.get((line.student_id, line.fee_id), 0)
            share = left if position == len(lines) - 1 else min(left, max(room, 0))
            if share <= 0:
                continue
            left -= share
            common = {
                "household_id": paid_in.get((line.student_id, line.fee_id), checkout.household_id),
                "student_id": line.student_id,
                "fee_id": line.fee_id,
                "checkout": checkout,
            }
            entries.append(
                LedgerEntry(
                    kind=LedgerEntry.Kind.REFUND,
                    amount_cents=share,
                    refund=refund,
                    stripe_payment_intent=checkout.stripe_payment_intent,
                    stripe_charge=stripe_refund.charge,
                    stripe_refund=stripe_refund.id,
                    actor_label=STRIPE,
                    note=refund.reason,
                    **common,
                )
            )
            released = _refund_release_note(refund, line)
            if released:
                # Not linked to the refund: the ledger keeps one adjustment per
                # refund line for the reversal of a refund that fails later, which
                # reverses only the refund entry, so the household then keeps a
                # credit finance can see (the money it was to get back).
                entries.append(
                    LedgerEntry(
                        kind=LedgerEntry.Kind.ADJUSTMENT,
                        amount_cents=-share,
                        actor_label=STRIPE,
                        note=released,
                        **common,
                    )
                )
        LedgerEntry.objects.bulk_create(entries)
    return True


def _paid_in(checkout: Checkout) -> dict[tuple[int, int], int]:
    """The household each line of a paid checkout was paid in, by (student, fee)."""
    return {
        (student_id, fee_id): household_id
        for student_id, fee_id, household_id in LedgerEntry.objects.filter(
            checkout=checkout, kind=LedgerEntry.Kind.PAYMENT
        ).values_list("student_id", "fee_id", "household_id")
    }


LUNCH_GIVEN_BACK = "lunch money given back"
FEE_RELEASED = "the family no longer owes this fee"


def _refund_release_note(refund: Refund, line: CheckoutLine) -> str:
    """The note of the adjustment that keeps a refunded line from being owed again,
    or "" when it is owed again (a fixed fee whose refund did not release it)."""
    if line.fee.is_lunch:
        return f"{LUNCH_GIVEN_BACK} (refund {refund.pk})"
    if refund.fee_released:
        return f"{FEE_RELEASED} (refund {refund.pk})"
    return ""


def refund_fail(*, checkout: Checkout, stripe_refund: stripe_gateway.GatewayRefund) -> bool:
    """Stripe could not give the money back. A refund not yet written to the ledger
    writes nothing; one that had succeeded (a card refund can fail later) is
    reversed by adjustments, since the money stayed with the district."""
    with transaction.atomic(savepoint=False):
        checkout = _locked(checkout)
        refund = _refund_of(checkout, stripe_refund)
        if refund.state == Refund.State.FAILED:
            return False
        _apply(refund, "fail", actor=None, actor_label=STRIPE, note=stripe_refund.id)
        LedgerEntry.objects.bulk_create(
            LedgerEntry(
                kind=LedgerEntry.Kind.ADJUSTMENT,
                amount_cents=-entry.amount_cents,
                household_id=entry.household_id,
                student_id=entry.student_id,
                fee_id=entry.fee_id,
                checkout=checkout,
                refund=refund,
                stripe_payment_intent=entry.stripe_payment_intent,
                stripe_charge=entry.stripe_charge,
                stripe_refund=entry.stripe_refund,
                actor_label=STRIPE,
                note="the refund failed after it succeeded",
            )
            for entry in LedgerEntry.objects.filter(refund=refund, kind=LedgerEntry.Kind.REFUND)
        )
    return True
