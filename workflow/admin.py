from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from workflow.models import AuditEvent, TransitionLog


class AppendOnlyLogAdmin(admin.ModelAdmin):
    """A log that is read here and never edited: nobody, superusers included, may
    add, change or delete a row (so the delete action is not offered either)."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(AppendOnlyLogAdmin):
    """The audit log is read here and never edited."""

    list_display = (
        "created_at",
        "actor",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "ip_address",
    )
    list_filter = ("action", "object_type")
    list_select_related = ("actor",)
    search_fields = ("object_id", "object_repr", "actor__email", "actor_label")
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(TransitionLog)
class TransitionLogAdmin(AppendOnlyLogAdmin):
    """Every state change, read here and never edited."""

    list_display = (
        "created_at",
        "object_type",
        "object_id",
        "transition",
        "source",
        "target",
        "actor",
        "actor_label",
    )
    list_filter = ("object_type", "transition")
    list_select_related = ("actor",)
    search_fields = ("object_id", "actor__email", "actor_label", "note")
    date_hierarchy = "created_at"
    show_full_result_count = False
