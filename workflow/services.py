"""Every write in the workflow app. Today: the audit log."""

from __future__ import annotations

from typing import Any

from django.db.models import Model
from django.http import HttpRequest

from workflow.models import AuditEvent


def audit_record(
    *,
    action: str,
    obj: Model | None = None,
    object_type: str = "",
    object_id: str = "",
    actor: Any = None,
    actor_label: str = "",
    request: HttpRequest | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one row to the audit log.

    ``obj`` names the record; bulk operations name a type (``object_type``) instead.
    The actor is the signed-in user of ``request`` unless given.
    """
    if request is not None and actor is None and request.user.is_authenticated:
        actor = request.user
    if obj is not None:
        object_type = obj._meta.label_lower
        object_id = str(obj.pk)
    return AuditEvent.objects.create(
        action=action,
        actor=actor,
        actor_label=actor_label[:150],
        object_type=object_type,
        object_id=object_id,
        object_repr=str(obj)[:200] if obj is not None else "",
        ip_address=request.META.get("REMOTE_ADDR") if request is not None else None,
        detail=detail or {},
    )
