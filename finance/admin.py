"""Reconciliation in the admin, read only: it is written by ``finance.services``
(runs and explanations), never by hand. Every list and record opened is audited."""

from __future__ import annotations

from django.contrib import admin

from finance.models import Payout, ReconciliationItem, ReconciliationRun
from payments.admin import ReadOnlyAdmin


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = ("stripe_payout_id", "arrival_date", "stripe_status", "status", "amount_cents")
    list_filter = ("status", "stripe_status")
    search_fields = ("stripe_payout_id",)


@admin.register(ReconciliationItem)
class ReconciliationItemAdmin(ReadOnlyAdmin):
    list_display = ("key", "kind", "mismatch_kind", "amount_cents", "ledger_cents", "payout")
    list_filter = ("kind", "mismatch_kind")
    search_fields = ("key", "stripe_payment_intent", "stripe_refund", "stripe_charge")
    raw_id_fields = ("payout", "household", "checkout", "refund", "explained_by")


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "finished_at", "since", "payouts", "transactions", "outcome")
