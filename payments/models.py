"""Fees, the append-only ledger, Stripe Checkout, refunds and the Stripe events received.

Every amount is an integer number of cents in US dollars. The ledger is the record
of money: a household's balance is the sum of its entries, and nothing in it is
ever changed or deleted (``payments.services`` only adds rows; the admin only reads).
"""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from config.languages import text_in

CURRENCY = "usd"


class Fee(models.Model):
    """One fee in the catalog.

    ``lunch_prepay``: the family chooses how much to put on a child's lunch account,
    between ``min_amount_cents`` and ``max_amount_cents``. Every other kind has a
    fixed ``amount_cents``. A field trip belongs to one class (``section``); other
    fees may be limited to a school and to a campaign (none: every school).
    """

    class Kind(models.TextChoices):
        LUNCH_PREPAY = "lunch_prepay", _("Lunch prepayment")
        FIELD_TRIP = "field_trip", _("Field trip")
        OPTIONAL = "optional", _("Optional fee")
        REQUIRED = "required", _("Required fee")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    # What families who read Spanish or Chinese see; blank: the English above.
    title_es = models.CharField(_("title in Spanish"), max_length=200, blank=True)
    title_zh = models.CharField(_("title in Simplified Chinese"), max_length=200, blank=True)
    description_es = models.TextField(_("description in Spanish"), blank=True)
    description_zh = models.TextField(_("description in Simplified Chinese"), blank=True)
    amount_cents = models.PositiveIntegerField(
        _("amount (cents)"), null=True, blank=True, help_text=_("Every kind but lunch.")
    )
    min_amount_cents = models.PositiveIntegerField(
        _("smallest amount (cents)"), null=True, blank=True, help_text=_("Lunch only.")
    )
    max_amount_cents = models.PositiveIntegerField(
        _("largest amount (cents)"),
        null=True,
        blank=True,
        help_text=_("Lunch only: the most a child's account takes in total."),
    )
    campaign = models.ForeignKey(
        "workflow.Campaign",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="fees",
        verbose_name=_("campaign"),
    )
    school = models.ForeignKey(
        "registration.School",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="fees",
        verbose_name=_("school"),
        help_text=_("Blank: students of every school."),
    )
    section = models.ForeignKey(
        "registration.ClassSection",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="fees",
        verbose_name=_("class"),
        help_text=_("Field trips: the class that goes."),
    )
    gl_code = models.CharField(
        _("general ledger code"),
        max_length=50,
        blank=True,
        help_text=_("The account the district's books post this fee to."),
    )
    waivable_for_free_meals = models.BooleanField(
        _("waived for free or reduced-price meals"), default=False
    )
    event_date = models.DateField(
        _("date"), null=True, blank=True, help_text=_("Field trips: the day of the trip.")
    )
    deadline = models.DateField(_("deadline"), null=True, blank=True)
    active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["kind", "title"]
        verbose_name = _("fee")
        verbose_name_plural = _("fees")
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(
                        kind="lunch_prepay",
                        amount_cents__isnull=True,
                        min_amount_cents__gt=0,
                        max_amount_cents__gte=models.F("min_amount_cents"),
                    )
                    | (
                        ~Q(kind="lunch_prepay")
                        & Q(
                            amount_cents__gt=0,
                            min_amount_cents__isnull=True,
                            max_amount_cents__isnull=True,
                        )
                    )
                ),
                name="fee_amount_fits_kind",
            ),
            models.CheckConstraint(
                condition=~Q(kind="field_trip") | Q(section__isnull=False),
                name="field_trip_has_class",
            ),
        ]
        indexes = [models.Index(fields=["active", "kind"])]

    def __str__(self) -> str:
        return self.title

    def title_in(self, language: str | None) -> str:
        return text_in(self, "title", language, english=self.title)

    @property
    def family_title(self) -> str:
        """The title as the family reading the page (the active language) sees it."""
        return self.title_in(translation.get_language())

    @property
    def family_description(self) -> str:
        return text_in(self, "description", translation.get_language(), english=self.description)

    @property
    def is_lunch(self) -> bool:
        return self.kind == self.Kind.LUNCH_PREPAY


class LedgerQuerySet(models.QuerySet["LedgerEntry"]):
    """Entries are added, never changed or removed, not even in bulk."""

    def update(self, **kwargs: Any) -> NoReturn:
        raise LedgerIsAppendOnly("ledger entries are never changed")

    def delete(self) -> NoReturn:
        raise LedgerIsAppendOnly("ledger entries are never deleted")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise LedgerIsAppendOnly("ledger entries are never changed")


class LedgerIsAppendOnly(Exception):
    """Something tried to change or delete a ledger entry."""


class LedgerEntry(models.Model):
    """One movement of money owed or paid, for a household (and a child and fee).

    Sign convention: a positive amount is owed by the household, a negative one is
    paid by or credited to it. A balance is the sum of amounts: positive, the
    household owes; zero, settled; negative, the district owes the household.

    - assessment: + a fee charged (for a chosen amount, written with its payment)
    - payment: − money received through Stripe
    - refund: + money given back (the fee is owed again, or no longer paid)
    - waiver: − a fee forgiven
    - adjustment: ± a correction by finance, with a note
    """

    class Kind(models.TextChoices):
        ASSESSMENT = "assessment", _("Assessment")
        PAYMENT = "payment", _("Payment")
        REFUND = "refund", _("Refund")
        WAIVER = "waiver", _("Waiver")
        ADJUSTMENT = "adjustment", _("Adjustment")

    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    amount_cents = models.BigIntegerField(
        help_text=_("Positive: owed by the household. Negative: paid or credited.")
    )
    household = models.ForeignKey(
        "registration.Household", on_delete=models.PROTECT, related_name="ledger_entries"
    )
    student = models.ForeignKey(
        "registration.Student",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_entries",
    )
    fee = models.ForeignKey(
        Fee, on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_entries"
    )
    checkout = models.ForeignKey(
        "Checkout",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ledger_entries",
    )
    refund = models.ForeignKey(
        "Refund", on_delete=models.PROTECT, null=True, blank=True, related_name="ledger_entries"
    )
    stripe_payment_intent = models.CharField(max_length=255, blank=True)
    stripe_charge = models.CharField(max_length=255, blank=True)
    stripe_refund = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(
        max_length=150, blank=True, help_text=_("Who wrote it when no user did (Stripe).")
    )
    note = models.TextField(blank=True)

    objects = LedgerQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        indexes = [
            models.Index(fields=["household", "student", "fee"], name="ledger_balance"),
            models.Index(fields=["student", "fee"], name="ledger_student_fee"),
            models.Index(fields=["stripe_payment_intent"], name="ledger_payment_intent"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["assessment", "refund"], amount_cents__gt=0)
                    | Q(kind__in=["payment", "waiver"], amount_cents__lt=0)
                    | (Q(kind="adjustment") & ~Q(amount_cents=0))
                ),
                name="ledger_sign_fits_kind",
            ),
            # A checkout pays each of its lines once, however often Stripe tells us.
            models.UniqueConstraint(
                fields=["checkout", "student", "fee", "kind"],
                condition=Q(kind__in=["payment", "assessment"], checkout__isnull=False),
                name="ledger_one_payment_per_line",
            ),
            # A Stripe refund is written once per line it gives money back for.
            models.UniqueConstraint(
                fields=["refund", "student", "fee", "kind"],
                condition=Q(refund__isnull=False),
                name="ledger_one_entry_per_refund_line",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_cents} for household {self.household_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise LedgerIsAppendOnly("ledger entries are never changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise LedgerIsAppendOnly("ledger entries are never deleted")


class Checkout(ConcurrentTransitionMixin, models.Model):
    """One Stripe Checkout Session for some of a household's fees.

    ``open`` until the verified webhook says the money was taken (``paid``), the
    session expired, or an asynchronous payment failed. The browser's return from
    Stripe never changes it.
    """

    class State(models.TextChoices):
        OPEN = "open", _("Open")
        PAID = "paid", _("Paid")
        EXPIRED = "expired", _("Expired")
        FAILED = "failed", _("Failed")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    household = models.ForeignKey(
        "registration.Household", on_delete=models.PROTECT, related_name="checkouts"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="checkouts"
    )
    state = FSMField(default=State.OPEN, choices=State.choices, protected=True)
    total_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default=CURRENCY)
    expires_at = models.DateTimeField(help_text=_("When the Stripe session stops taking payment."))
    stripe_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_session_url = models.TextField(blank=True)
    stripe_payment_intent = models.CharField(max_length=255, blank=True, db_index=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When it expired or failed.")
    )
    receipt_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("checkout")
        verbose_name_plural = _("checkouts")
        indexes = [models.Index(fields=["household", "state"])]

    def __str__(self) -> str:
        return f"Checkout {self.pk} of household {self.household_id} ({self.state})"

    @property
    def idempotency_key(self) -> str:
        """The key of the session's creation: the same for every retry of this
        checkout, different for every other (and after a database is reset)."""
        return f"checkout-{self.pk}-{self.reference}"

    @transition(field=state, source=[State.OPEN, State.EXPIRED, State.FAILED], target=State.PAID)
    def pay(self, *, payment_intent: str) -> None:
        # Paid wins: when Stripe says the money was taken, it was, whatever we
        # concluded before from events that arrived out of order.
        self.paid_at = timezone.now()
        self.stripe_payment_intent = payment_intent or self.stripe_payment_intent

    @transition(field=state, source=State.OPEN, target=State.EXPIRED)
    def expire(self) -> None:
        self.closed_at = timezone.now()

    @transition(field=state, source=State.OPEN, target=State.FAILED)
    def fail(self) -> None:
        self.closed_at = timezone.now()


class CheckoutLine(models.Model):
    """One fee for one child in a checkout, at the amount the server computed."""

    checkout = models.ForeignKey(Checkout, on_delete=models.CASCADE, related_name="lines")
    student = models.ForeignKey(
        "registration.Student", on_delete=models.PROTECT, related_name="checkout_lines"
    )
    fee = models.ForeignKey(Fee, on_delete=models.PROTECT, related_name="checkout_lines")
    amount_cents = models.PositiveIntegerField()
    # In the payer's language when they paid: Stripe's page shows it.
    description = models.CharField(max_length=300, help_text=_("As shown on Stripe's page."))

    class Meta:
        ordering = ["checkout", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["checkout", "student", "fee"], name="one_line_per_child_and_fee"
            ),
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="line_amount_positive"),
        ]

    def __str__(self) -> str:
        return self.description

    def description_in(self, language: str | None) -> str:
        """The fee and the child, in ``language`` (a receipt's, an email's)."""
        return f"{self.fee.title_in(language)} – {self.student.full_name}"

    @property
    def staff_description(self) -> str:
        """The fee and the child as staff pages and the ledger name them: English."""
        return f"{self.fee.title} – {self.student.full_name}"[:300]


class Refund(ConcurrentTransitionMixin, models.Model):
    """Money given back through Stripe for a paid checkout: one Stripe refund.

    Asked for by finance (``line`` set: the fee it gives back), or made in Stripe's
    dashboard and learned from the webhook (``line`` blank: spread over the lines).
    Its ledger entries are written when Stripe confirms it succeeded.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    class Origin(models.TextChoices):
        REQUESTED = "requested", _("Requested here")
        STRIPE = "stripe", _("Made in Stripe")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    reference = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    checkout = models.ForeignKey(Checkout, on_delete=models.PROTECT, related_name="refunds")
    line = models.ForeignKey(
        CheckoutLine, on_delete=models.PROTECT, null=True, blank=True, related_name="refunds"
    )
    amount_cents = models.PositiveIntegerField()
    reason = models.TextField(blank=True)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.REQUESTED)
    state = FSMField(default=State.PENDING, choices=State.choices, protected=True)
    stripe_refund_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_charge = models.CharField(max_length=255, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    settled_at = models.DateTimeField(null=True, blank=True)
    # The one-time token of the form that asked for it: the same form posted twice (a
    # double click) finds this refund instead of making a second one.
    form_token = models.UUIDField(unique=True, null=True, blank=True, editable=False)
    fee_released = models.BooleanField(
        _("the family no longer owes this fee"),
        default=False,
        help_text=_(
            "When the refund succeeds, an adjustment cancels what it would make owed "
            "again. Lunch money given back is always cancelled this way."
        ),
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="refund_amount_positive")
        ]

    def __str__(self) -> str:
        return f"Refund {self.pk} of {self.amount_cents} ({self.state})"

    @property
    def idempotency_key(self) -> str:
        return f"refund-{self.pk}-{self.reference}"

    @transition(field=state, source=State.PENDING, target=State.SUCCEEDED)
    def succeed(self) -> None:
        self.settled_at = timezone.now()

    # A card refund can fail after it succeeded (the card was closed): the money
    # stays with the district.
    @transition(field=state, source=[State.PENDING, State.SUCCEEDED], target=State.FAILED)
    def fail(self) -> None:
        self.settled_at = timezone.now()


class StripeEvent(models.Model):
    """One webhook event, stored under Stripe's id the first time it arrives.

    ``processed_at`` is set in the transaction that acts on it, so an event acts
    once however often Stripe delivers it; ``outcome`` says what it did.
    """

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(blank=True)
    checkout = models.ForeignKey(
        Checkout, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    payment_intent = models.CharField(
        max_length=255,
        blank=True,
        help_text=_("A refund that arrived before its payment waits for this payment."),
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("Stripe event")
        verbose_name_plural = _("Stripe events")
        indexes = [
            models.Index(
                fields=["payment_intent"],
                condition=Q(processed_at__isnull=True),
                name="stripe_event_waiting",
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
