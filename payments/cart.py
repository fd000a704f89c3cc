"""The guardian's cart: what a household may pay now, per child, and what it paid.

Everything here only reads. The amounts shown are computed from the catalog and the
ledger; ``payments.services.checkout_create`` computes them again when the family
pays, so nothing on the page is ever trusted.

A child's fees are settled by whichever of the child's households paid them (a
split family pays a field trip once), and a fee waived for free or reduced-price
meals is settled by its waiver: neither is open any more.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.db.models import Prefetch, Q, Sum
from django.utils import timezone

from payments.models import Checkout, CheckoutLine, Fee, LedgerEntry
from payments.money import money
from payments.selectors import SETTLING, fee_applies_to, sections_of_students
from registration.models import ClassEnrollment, Household, HouseholdStudent, Student

# The order of a child's fees on the page: what must be paid first.
KIND_ORDER: dict[str, int] = {
    Fee.Kind.REQUIRED: 0,
    Fee.Kind.FIELD_TRIP: 1,
    Fee.Kind.OPTIONAL: 2,
    Fee.Kind.LUNCH_PREPAY: 3,
}
# Sentinel: the running campaign, looked up here.
RUNNING: Any = object()


def line_key(student_id: int, fee_id: int) -> str:
    """How a child's fee is named in the form: ``<student id>-<fee id>``."""
    return f"{student_id}-{fee_id}"


def line_key_parse(key: str) -> tuple[int, int] | None:
    student, dash, fee = key.partition("-")
    if not dash or not student.isdigit() or not fee.isdigit() or len(key) > 40:
        return None
    return int(student), int(fee)


@dataclass(frozen=True)
class CartLine:
    """One fee a child may pay now. ``due_cents``: what is left to pay of a fixed
    fee; for lunch, the room left on the child's account (the most that can be
    added now, never less than the smallest amount)."""

    student: Student
    fee: Fee
    due_cents: int
    settled_cents: int

    @property
    def key(self) -> str:
        return line_key(self.student.pk, self.fee.pk)

    @property
    def kind(self) -> str:
        return self.fee.kind

    @property
    def is_lunch(self) -> bool:
        return self.fee.is_lunch

    @property
    def is_required(self) -> bool:
        return self.fee.kind == Fee.Kind.REQUIRED

    @property
    def deadline(self) -> datetime.date | None:
        return self.fee.deadline

    @property
    def min_cents(self) -> int:
        if self.is_lunch:
            return self.fee.min_amount_cents or 0
        return self.due_cents

    @property
    def due_display(self) -> str:
        return money(self.due_cents)

    @property
    def min_display(self) -> str:
        return money(self.min_cents)

    @property
    def partly_paid(self) -> bool:
        return not self.is_lunch and self.settled_cents > 0


@dataclass(frozen=True)
class SettledLine:
    """A fixed fee of a child that nothing is left to pay of: paid, waived, or no
    longer owed (refunded, and finance said the family no longer owes it)."""

    student: Student
    fee: Fee
    paid_cents: int
    waived_cents: int
    credited_cents: int = 0

    @property
    def waived(self) -> bool:
        return self.waived_cents > 0 and self.paid_cents <= 0

    @property
    def released(self) -> bool:
        return not self.waived and self.paid_cents <= 0

    @property
    def paid_display(self) -> str:
        return money(self.paid_cents)


@dataclass
class ChildCart:
    student: Student
    is_primary: bool
    lines: list[CartLine] = field(default_factory=list)
    settled: list[SettledLine] = field(default_factory=list)
    lunch_full: list[Fee] = field(default_factory=list)  # lunch accounts with no room left


@dataclass
class HouseholdCart:
    """A household's open fees, child by child (the children it decides for first)."""

    household: Household
    campaign: Any  # the running campaign, or None
    children: list[ChildCart]
    sections: dict[int, set[int]] | None  # None: not read (no fee of a class applied)

    @cached_property
    def lines(self) -> list[CartLine]:
        return [line for child in self.children for line in child.lines]

    @cached_property
    def by_key(self) -> dict[str, CartLine]:
        return {line.key: line for line in self.lines}

    def line(self, key: str) -> CartLine | None:
        return self.by_key.get(key)

    @property
    def student_ids(self) -> set[int]:
        return {child.student.pk for child in self.children}

    @property
    def required_due_cents(self) -> int:
        """What is left of the running campaign's required fees (waived counts as paid)."""
        campaign_id = getattr(self.campaign, "pk", None)
        return sum(
            line.due_cents
            for line in self.lines
            if line.is_required and campaign_id is not None and line.fee.campaign_id == campaign_id
        )

    @property
    def required_due_display(self) -> str:
        return money(self.required_due_cents)

    @property
    def has_required_fees(self) -> bool:
        campaign_id = getattr(self.campaign, "pk", None)
        fees = [line.fee for line in self.lines] + [
            settled.fee for child in self.children for settled in child.settled
        ]
        return campaign_id is not None and any(
            fee.kind == Fee.Kind.REQUIRED and fee.campaign_id == campaign_id for fee in fees
        )


def _members(household: Household) -> list[HouseholdStudent]:
    return list(
        HouseholdStudent.objects.filter(household=household, student__enabled=True)
        .select_related("student__school")
        .order_by("student__birth_date", "student__given_name", "student__pk")
    )


def _fees_that_may_apply(
    members: Sequence[HouseholdStudent], campaign: Any, today: datetime.date
) -> list[Fee]:
    """Active fees of no campaign or of the running one, of the children's schools or
    every school, of the children's classes or of none, not past their deadline nor,
    for a trip, past its day. One query."""
    student_ids = [member.student_id for member in members]
    school_ids = {member.student.school_id for member in members}
    campaigns = Q(campaign__isnull=True)
    if campaign is not None:
        campaigns |= Q(campaign=campaign)
    return list(
        Fee.objects.filter(campaigns, active=True)
        .filter(Q(school__isnull=True) | Q(school_id__in=school_ids))
        .filter(
            Q(section__isnull=True)
            | Q(
                section_id__in=ClassEnrollment.objects.filter(student_id__in=student_ids).values(
                    "section_id"
                )
            )
        )
        .filter(Q(deadline__isnull=True) | Q(deadline__gte=today))
        .filter(Q(event_date__isnull=True) | Q(event_date__gte=today))
        .order_by("event_date", "title", "pk")
    )


def _settled_by_kind(
    student_ids: Iterable[int], fee_ids: Iterable[int]
) -> dict[tuple[int, int], dict[str, int]]:
    """For each (student id, fee id): what payments (net of refunds), waivers and
    (fixed fees) finance's adjustments settled, by any household of the child, as
    positive cents. One query."""
    totals: dict[tuple[int, int], dict[str, int]] = defaultdict(
        lambda: {"paid": 0, "waived": 0, "credited": 0}
    )
    rows = (
        LedgerEntry.objects.filter(student_id__in=list(student_ids), fee_id__in=list(fee_ids))
        .filter(SETTLING)
        .values("student_id", "fee_id", "kind")
        .annotate(total=Sum("amount_cents"))
        .order_by()
    )
    for row in rows:
        part = {LedgerEntry.Kind.WAIVER: "waived", LedgerEntry.Kind.ADJUSTMENT: "credited"}.get(
            row["kind"], "paid"
        )
        totals[(row["student_id"], row["fee_id"])][part] -= int(row["total"] or 0)
    return totals


def household_cart(
    household: Household,
    *,
    campaign: Any = RUNNING,
    members: Sequence[HouseholdStudent] | None = None,
    today: datetime.date | None = None,
) -> HouseholdCart:
    """Every fee each enabled child of ``household`` may pay now: the required fees
    of the running campaign, optional fees, the trips of the child's classes, and
    lunch with the room left on the child's account. Children the household decides
    for (its primary children) come first.

    Four queries however many children and fees (three when the caller has the
    household's children, ``members``, already; fewer when no fee applies).
    """
    if campaign is RUNNING:
        from workflow.selectors import campaign_running

        campaign = campaign_running()
    today = today or timezone.localdate()
    members = list(members) if members is not None else _members(household)
    members.sort(key=lambda member: not member.is_primary)  # stable: keeps their order
    children = [ChildCart(student=m.student, is_primary=m.is_primary) for m in members]
    cart = HouseholdCart(household=household, campaign=campaign, children=children, sections=None)
    if not members:
        return cart
    fees = _fees_that_may_apply(members, campaign, today)
    if not fees:
        return cart
    sections: dict[int, set[int]] = {}
    if any(fee.section_id is not None for fee in fees):
        sections = sections_of_students([member.student_id for member in members])
        cart.sections = sections
    fees.sort(key=lambda fee: KIND_ORDER.get(fee.kind, 9))  # stable: by date, then title
    settled = _settled_by_kind([member.student_id for member in members], [fee.pk for fee in fees])
    for child in children:
        student = child.student
        for fee in fees:
            if not fee_applies_to(fee, student, sections.get(student.pk, set())):
                continue
            parts = settled.get((student.pk, fee.pk), {"paid": 0, "waived": 0, "credited": 0})
            already = parts["paid"] + parts["waived"] + parts["credited"]
            if fee.is_lunch:
                assert fee.min_amount_cents is not None and fee.max_amount_cents is not None
                room = min(fee.max_amount_cents - already, fee.max_amount_cents)
                if room >= fee.min_amount_cents:
                    child.lines.append(
                        CartLine(student=student, fee=fee, due_cents=room, settled_cents=already)
                    )
                else:
                    child.lunch_full.append(fee)
                continue
            due = (fee.amount_cents or 0) - already
            if due > 0:
                child.lines.append(
                    CartLine(student=student, fee=fee, due_cents=due, settled_cents=already)
                )
            else:
                child.settled.append(
                    SettledLine(
                        student=student,
                        fee=fee,
                        paid_cents=parts["paid"],
                        waived_cents=parts["waived"],
                        credited_cents=parts["credited"],
                    )
                )
    return cart


def cart_keys_foreign(cart: HouseholdCart, keys: Iterable[str]) -> str:
    """Why some posted ``keys`` (not open in ``cart``) cannot have come from the
    household's page: a child of another household, a fee that does not exist or
    belongs to another class or school. Empty when each is a fee of one of the
    household's children that is simply no longer open (paid meanwhile, past its
    deadline), which the page explains instead. At most two queries."""
    pairs = []
    for key in keys:
        pair = line_key_parse(key)
        if pair is None:
            return "malformed fee in the cart"
        pairs.append(pair)
    children = {child.student.pk: child.student for child in cart.children}
    if any(student_id not in children for student_id, _fee in pairs):
        return "child of another household in the cart"
    fees = Fee.objects.in_bulk({fee_id for _student, fee_id in pairs})
    sections = cart.sections
    if sections is None:
        sections = sections_of_students(children)
    for student_id, fee_id in pairs:
        fee = fees.get(fee_id)
        if fee is None:
            return "unknown fee in the cart"
        student = children[student_id]
        if fee.section_id is not None and fee.section_id not in sections.get(student_id, set()):
            return "fee of another class in the cart"
        if fee.school_id is not None and fee.school_id != student.school_id:
            return "fee of another school in the cart"
    return ""


def checkout_pending(household: Household) -> Checkout | None:
    """The household's checkout still waiting on Stripe's page, if any, with its
    lines: the family may have left it without paying. Two queries."""
    return (
        Checkout.objects.filter(
            household=household,
            state=Checkout.State.OPEN,
            expires_at__gt=timezone.now(),
            stripe_session_id__isnull=False,
        )
        .prefetch_related("lines")
        .order_by("-created_at", "-pk")
        .first()
    )


def checkouts_paid(household: Household) -> list[Checkout]:
    """What the household paid before, newest first, each with its lines. Two
    queries."""
    return list(
        Checkout.objects.filter(household=household, state=Checkout.State.PAID)
        .prefetch_related(Prefetch("lines", queryset=CheckoutLine.objects.order_by("pk")))
        .order_by("-paid_at", "-pk")
    )
