"""Payments in the admin. The ledger, checkouts, refunds and Stripe events are read
here and never changed: money moves only through ``payments.services``. Every
record opened and list searched is written to the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from payments.models import Checkout, CheckoutLine, Fee, LedgerEntry, Refund, StripeEvent
from registration.admin import AuditedReadsMixin
from workflow.services import audit_record


class AuditedReadsAdmin(AuditedReadsMixin, admin.ModelAdmin):
    """Writes an audit row for each list and record a member of staff opens."""


class ReadOnlyAdmin(AuditedReadsAdmin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Fee)
class FeeAdmin(AuditedReadsAdmin):
    """The catalog, until finance has its own pages. Fees are never deleted (the
    ledger points at them): make one inactive instead."""

    list_display = ("title", "kind", "amount_cents", "school", "section", "deadline", "active")
    list_filter = ("kind", "active", "school")
    search_fields = ("title", "gl_code")
    raw_id_fields = ("campaign", "school", "section", "created_by")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        audit_record(
            action="change" if change else "create",
            obj=obj,
            request=request,
            detail={"fields": sorted(form.changed_data)},
        )


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "amount_cents", "household", "student", "fee", "checkout")
    list_filter = ("kind",)
    list_select_related = ("household", "student", "fee")
    search_fields = (
        "household__sourced_id",
        "stripe_payment_intent",
        "stripe_charge",
        "stripe_refund",
    )
    date_hierarchy = "created_at"


class CheckoutLineInline(admin.TabularInline):
    model = CheckoutLine
    fields = ("student", "fee", "amount_cents", "description")
    readonly_fields = fields
    can_delete = False
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Checkout)
class CheckoutAdmin(ReadOnlyAdmin):
    list_display = ("pk", "created_at", "household", "state", "total_cents", "paid_at")
    list_filter = ("state",)
    list_select_related = ("household",)
    search_fields = ("household__sourced_id", "stripe_session_id", "stripe_payment_intent")
    inlines = [CheckoutLineInline]
    date_hierarchy = "created_at"


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("pk", "created_at", "checkout", "amount_cents", "state", "origin")
    list_filter = ("state", "origin")
    search_fields = ("stripe_refund_id", "stripe_charge")


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "type", "event_id", "processed_at", "outcome")
    list_filter = ("type",)
    search_fields = ("event_id", "payment_intent")
    date_hierarchy = "received_at"
