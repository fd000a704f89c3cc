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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from config.after_commit import delay_after_commit
from payments import stripe_gateway
from payments.models import (
    CURRENCY,
    Checkout,
    CheckoutLine,
    Fee,
    LedgerEntry,
    Refund,
)
from payments.selectors import (
    fee_applies_to,
    owed_cents,
    sections_of_students,
    settled_cents,
    students_of_household,
)
from registration.models import Household, Student
from workflow.services import _apply, transition_log

log = logging.getLogger("payments")

# How long a Stripe Checkout page takes payment (Stripe allows 30 minutes to 24 hours).
CHECKOUT_MINUTES = 60
# A checkout this close to its end is not reused for a new attempt to pay; one that
# has no session yet needs more, since Stripe wants a session to last 30 minutes.
CHECKOUT_REUSE_MARGIN = datetime.timedelta(minutes=10)
SESSION_REUSE_MARGIN = datetime.timedelta(minutes=35)
STRIPE = "Stripe"


class CheckoutRefused(Exception):
    """The cart cannot be paid as asked; ``message`` says why, for the guardian."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RefundRefused(CheckoutRefused):
    """The refund cannot be made as asked; ``message`` says why, for finance."""


def _money(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


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
                % {"fee": fee.title, "child": student.full_name}
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
                        "low": _money(fee.min_amount_cents),
                        "high": _money(max(highest, 0)),
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
                    % {"fee": fee.title, "child": student.full_name}
                )
            if chosen is not None and chosen != amount:
                raise CheckoutRefused(
                    gettext("The amount of “%(fee)s” has changed; please review your cart.")
                    % {"fee": fee.title}
                )
        priced.append(
            PricedLine(
                student=student,
                fee=fee,
                amount_cents=amount,
                description=f"{fee.title} – {student.full_name}"[:300],
            )
        )
    return priced


def _line_keys(checkout: Checkout) -> set[tuple[int, int, int]]:
    return {(line.student_id, line.fee_id, line.amount_cents) for line in checkout.lines.all()}


def _checkout_urls(checkout: Checkout) -> tuple[str, str]:
    home = f"{settings.SITE_URL.rstrip('/')}{reverse('guardian_home')}"
    return f"{home}?checkout={checkout.pk}&paid=1", f"{home}?checkout={checkout.pk}"


def checkout_create(
    *,
    household: Household,
    lines: Sequence[tuple[Student, Fee, int | None]],
    user: Any,
) -> Checkout:
    """Start paying some fees of a household's children on Stripe's page.

    ``lines`` are (child, fee, amount) with the amount chosen for lunch (``None``
    otherwise): every amount is computed again here from the catalog, and a fee
    already paid, a child or fee of another household, or a lunch amount outside
    its range is refused (``CheckoutRefused``). The same cart asked for again (a
    double submit, a retry after Stripe did not answer) gets the same checkout and
    the same Stripe session; a different cart replaces the household's open one.
    Stripe errors come out as ``PaymentServiceError`` with a message for the family.
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
        success_url, cancel_url = _checkout_urls(checkout)
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
    """In one transaction, with the children locked (lowest id first): the open
    checkout of the same cart, or a new one; or, when open checkouts with some of
    these fees have Stripe sessions to close first, those checkouts."""
    with transaction.atomic():
        list(
            Student.objects.select_for_update()
            .filter(pk__in=sorted({student.pk for student, _fee, _amount in lines}))
            .order_by("pk")
        )
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
            note=_money(total),
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
    ledger (what was not assessed before is assessed, then paid), in one transaction;
    the receipt is queued for after the commit. Returns False when it was already
    paid (nothing is written twice)."""
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
        owed = owed_cents(
            household=locked.household, pairs=[(line.student_id, line.fee_id) for line in lines]
        )
        entries = []
        for line in lines:
            common = {
                "household": locked.household,
                "student": line.student,
                "fee": line.fee,
                "checkout": locked,
                "stripe_payment_intent": locked.stripe_payment_intent,
                "actor_label": actor_label,
            }
            unassessed = line.amount_cents - max(owed[(line.student_id, line.fee_id)], 0)
            if unassessed > 0:
                entries.append(
                    LedgerEntry(
                        kind=LedgerEntry.Kind.ASSESSMENT,
                        amount_cents=unassessed,
                        note=line.description,
                        **common,
                    )
                )
            entries.append(
                LedgerEntry(
                    kind=LedgerEntry.Kind.PAYMENT,
                    amount_cents=-line.amount_cents,
                    note=line.description,
                    **common,
                )
            )
        LedgerEntry.objects.bulk_create(entries)
        delay_after_commit(checkout_receipt_send_task, locked.pk)
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
    """Email the guardian who paid a plain receipt, once (the PDF comes later)."""
    checkout = (
        Checkout.objects.select_related("created_by", "household")
        .filter(pk=checkout_id, state=Checkout.State.PAID, receipt_sent_at__isnull=True)
        .first()
    )
    if checkout is None or not checkout.created_by.email:
        return False
    lines = list(checkout.lines.all())
    language = checkout.household.language
    if language not in dict(settings.LANGUAGES):
        language = settings.LANGUAGE_CODE
    with translation.override(language):
        subject = gettext("Receipt for your payment to %(district)s") % {
            "district": settings.DISTRICT_SHORT_NAME
        }
        body = "\n".join(
            [
                gettext("Thank you. We received your payment:"),
                "",
                *(f"  {line.description}: {_money(line.amount_cents)}" for line in lines),
                "",
                gettext("Total: %(total)s") % {"total": _money(checkout.total_cents)},
                gettext("Reference: %(reference)s") % {"reference": checkout.reference},
            ]
        )
    send_mail(subject, body, None, [checkout.created_by.email])
    Checkout.objects.filter(pk=checkout.pk, receipt_sent_at__isnull=True).update(
        receipt_sent_at=timezone.now()
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


def refund_request(*, line: CheckoutLine, amount_cents: int, reason: str, actor: Any) -> Refund:
    """Give back some or all of one paid line through Stripe. The ledger entry is
    written when Stripe confirms the refund (the webhook), not here."""
    with transaction.atomic():
        checkout = _locked(line.checkout)
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
                % {"amount": _money(max(line.amount_cents - given_back - pending, 0))}
            )
        refund = Refund.objects.create(
            checkout=checkout,
            line=line,
            amount_cents=amount_cents,
            reason=reason,
            requested_by=actor,
        )
        transition_log(
            obj=refund,
            transition="request",
            source="",
            target=refund.state,
            actor=actor,
            note=reason,
        )
    refund_submit(refund=refund)
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
        lines = [refund.line] if refund.line is not None else list(checkout.lines.all())
        given_back = _refunded_by_line(checkout)
        left = refund.amount_cents
        entries = []
        for position, line in enumerate(lines):
            room = line.amount_cents - given_back.get((line.student_id, line.fee_id), 0)
            share = left if position == len(lines) - 1 else min(left, max(room, 0))
            if share <= 0:
                continue
            left -= share
            entries.append(
                LedgerEntry(
                    kind=LedgerEntry.Kind.REFUND,
                    amount_cents=share,
                    household=checkout.household,
                    student_id=line.student_id,
                    fee_id=line.fee_id,
                    checkout=checkout,
                    refund=refund,
                    stripe_payment_intent=checkout.stripe_payment_intent,
                    stripe_charge=stripe_refund.charge,
                    stripe_refund=stripe_refund.id,
                    actor_label=STRIPE,
                    note=refund.reason,
                )
            )
        LedgerEntry.objects.bulk_create(entries)
    return True


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
