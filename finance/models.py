"""Reconciliation of Stripe payouts with the ledger.

A ``Payout`` is one transfer of the Stripe balance to the district's bank, with the
totals of its reconciliation. A ``ReconciliationItem`` is one thing that was compared:
a balance transaction of a payout (a charge, a refund, a Stripe fee, an adjustment)
against the ledger entries with the same Stripe id, or a ledger payment or refund
that reached no payout in time. Items are keyed on Stripe's ids, so that running the
reconciliation again updates them in place; what finance wrote about an item (the
explanation) is never overwritten, and an item that stops being a mismatch is marked
resolved, never deleted. ``ReconciliationRun`` records each run.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Payout(models.Model):
    """One Stripe payout and what its reconciliation found.

    ``status`` is a summary that ``finance.services`` computes from the items after
    each run and each explanation (it is not a workflow state): ``matched`` when every
    balance transaction agrees with the ledger and the transactions add up to the
    payout; ``open`` while a mismatch waits for an explanation; ``explained`` once
    every mismatch is explained or resolved; ``not_paid`` for a payout that failed or
    was cancelled (no money reached the bank).
    """

    class Status(models.TextChoices):
        MATCHED = "matched", _("Matched")
        OPEN = "open", _("Mismatches to explain")
        EXPLAINED = "explained", _("Mismatches explained")
        NOT_PAID = "not_paid", _("Not paid out")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    stripe_payout_id = models.CharField(max_length=255, unique=True)
    stripe_status = models.CharField(max_length=20)
    amount_cents = models.BigIntegerField(help_text=_("What Stripe sent to the bank."))
    currency = models.CharField(max_length=3, default="usd")
    stripe_created_at = models.DateTimeField()
    arrival_date = models.DateField(null=True, blank=True)
    automatic = models.BooleanField(default=True)
    description = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    reconciled_at = models.DateTimeField(null=True, blank=True)
    # Totals of the balance transactions, in cents. ``refunds_cents`` and
    # ``fees_cents`` are positive (money out); net = charges − refunds − fees + other.
    transaction_count = models.PositiveIntegerField(default=0)
    charge_count = models.PositiveIntegerField(default=0)
    charges_cents = models.BigIntegerField(default=0)
    refund_count = models.PositiveIntegerField(default=0)
    refunds_cents = models.BigIntegerField(default=0)
    fees_cents = models.BigIntegerField(default=0)
    other_count = models.PositiveIntegerField(default=0)
    other_cents = models.BigIntegerField(default=0)
    net_cents = models.BigIntegerField(default=0)
    matched_count = models.PositiveIntegerField(default=0)
    mismatch_count = models.PositiveIntegerField(default=0)
    open_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-stripe_created_at", "-id"]
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")
        indexes = [
            models.Index(fields=["status", "stripe_created_at"]),
            models.Index(fields=["arrival_date"]),
        ]

    def __str__(self) -> str:
        return self.stripe_payout_id

    @property
    def difference_cents(self) -> int:
        """The payout less the net of its transactions: zero when Stripe listed all."""
        return self.amount_cents - self.net_cents if self.reconciled_at else 0


class ReconciliationItem(models.Model):
    """One balance transaction of a payout compared with the ledger, or one ledger
    payment or refund found in no payout after ``FINANCE_UNPAID_OUT_DAYS`` days.

    Amounts follow Stripe's sign: money into the Stripe balance is positive (a
    charge), money out negative (a refund). ``ledger_cents`` is what the ledger says
    for the same Stripe id in that sign (None: nothing in the ledger), and
    ``difference_cents`` is Stripe's amount less the ledger's.
    """

    class Kind(models.TextChoices):
        MATCHED = "matched", _("Matched")
        FEE = "fee", _("Stripe fee")
        TRANSFER = "transfer", _("Payout movement")
        STRIPE_ONLY = "stripe_only", _("In Stripe, not in the ledger")
        LEDGER_ONLY = "ledger_only", _("In the ledger, in no payout")
        AMOUNT_MISMATCH = "amount_mismatch", _("Amounts differ")
        UNMATCHED = "unmatched", _("Stripe adjustment")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # ``txn_…`` for a balance transaction; ``ledger:payment:pi_…`` or
    # ``ledger:refund:re_…`` for money in the ledger that reached no payout.
    key = models.CharField(max_length=300, unique=True)
    # Foreign keys without an index of their own: every index is written on each of
    # 100,000 upserts, and items are read by payout through ("payout", "kind").
    payout = models.ForeignKey(
        Payout,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="items",
        db_index=False,
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    transaction_type = models.CharField(
        max_length=40, help_text=_("Stripe's type of balance transaction, or the ledger's kind.")
    )
    reporting_category = models.CharField(max_length=40, blank=True)
    stripe_balance_transaction = models.CharField(max_length=255, blank=True)
    stripe_source = models.CharField(max_length=255, blank=True)
    stripe_payment_intent = models.CharField(max_length=255, blank=True)
    stripe_charge = models.CharField(max_length=255, blank=True)
    stripe_refund = models.CharField(max_length=255, blank=True)
    amount_cents = models.BigIntegerField(null=True, blank=True)
    fee_cents = models.BigIntegerField(default=0)
    net_cents = models.BigIntegerField(null=True, blank=True)
    ledger_cents = models.BigIntegerField(null=True, blank=True)
    difference_cents = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, default="usd")
    occurred_at = models.DateTimeField(null=True, blank=True)
    description = models.CharField(max_length=255, blank=True)
    household = models.ForeignKey(
        "registration.Household",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    checkout = models.ForeignKey(
        "payments.Checkout",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    refund = models.ForeignKey(
        "payments.Refund",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # The kind of mismatch the item is, or was before it was resolved.
    mismatch_kind = models.CharField(max_length=16, choices=Kind.choices, blank=True)
    resolved_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When a mismatch stopped being one.")
    )
    explanation = models.TextField(blank=True)
    explained_at = models.DateTimeField(null=True, blank=True)
    explained_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("reconciliation item")
        verbose_name_plural = _("reconciliation items")
        indexes = [
            models.Index(fields=["payout", "kind"]),
            models.Index(fields=["stripe_payment_intent"], name="finance_item_payment_intent"),
            models.Index(fields=["stripe_refund"], name="finance_item_refund"),
            models.Index(
                fields=["mismatch_kind", "occurred_at"],
                condition=~Q(mismatch_kind=""),
                name="finance_item_mismatches",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"

    @property
    def is_open(self) -> bool:
        return self.kind in MISMATCH_KINDS and self.explained_at is None


MISMATCH_KINDS = (
    ReconciliationItem.Kind.STRIPE_ONLY,
    ReconciliationItem.Kind.LEDGER_ONLY,
    ReconciliationItem.Kind.AMOUNT_MISMATCH,
    ReconciliationItem.Kind.UNMATCHED,
)


class ReconciliationRun(models.Model):
    """One run of ``reconcile_payouts`` (the command or the daily task)."""

    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    since = models.DateField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True)
    payouts = models.PositiveIntegerField(default=0)
    transactions = models.PositiveIntegerField(default=0)
    new_mismatches = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    open_mismatches = models.PositiveIntegerField(default=0)
    outcome = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("reconciliation run")
        verbose_name_plural = _("reconciliation runs")

    def __str__(self) -> str:
        return f"Reconciliation {self.pk} ({self.started_at:%Y-%m-%d %H:%M})"
