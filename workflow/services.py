"""Every write in the workflow app: state transitions with their log rows, and the
audit log. A ``@transition`` method on a model only guards and sets fields; the
functions here call it, save, log, and schedule side effects after commit."""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone
from django_fsm import can_proceed

from registration.activation import code_generate, code_hash, code_lookup, code_salt
from registration.models import ActivationCode
from registration.throttle import client_ip
from workflow.models import AuditEvent, TransitionLog


class TransitionRefused(Exception):
    """The record is not in a state that allows this change; nothing was changed."""


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
        ip_address=(client_ip(request) or None) if request is not None else None,
        detail=detail or {},
    )


def transition_log(
    *,
    obj: Model,
    transition: str,
    source: str,
    target: str,
    actor: Any = None,
    actor_label: str = "",
    note: str = "",
) -> TransitionLog:
    return TransitionLog.objects.create(
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        transition=transition,
        source=source,
        target=target,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_label=actor_label[:150],
        note=note,
    )


def _apply(obj: Any, name: str, *, actor: Any, actor_label: str = "", note: str = "") -> None:
    """Run transition ``name`` on a locked row, save it, and log it."""
    method = getattr(obj, name)
    if not can_proceed(method):
        raise TransitionRefused(f"cannot {name} a {obj._meta.verbose_name} that is {obj.state}")
    source = obj.state
    method()
    obj.save()
    transition_log(
        obj=obj,
        transition=name,
        source=source,
        target=obj.state,
        actor=actor,
        actor_label=actor_label,
        note=note,
    )


# -- activation codes ---------------------------------------------------------------


def activation_code_issue(
    *,
    guardian: Any = None,
    student: Any = None,
    channel: str,
    issued_by: Any = None,
    actor_label: str = "",
) -> tuple[Any, str]:
    """Issue a new code for a guardian or a student, revoking the one they had.

    Returns the code's row and its clear text, which the caller hands over once (a
    letter, an email) and never stores.
    """
    person = {"guardian": guardian} if guardian is not None else {"student": student}
    with transaction.atomic():
        # Lock the person, so that two issues at once (a double click, a re-send
        # racing a staff action) follow each other instead of both inserting.
        owner = guardian if guardian is not None else student
        type(owner).objects.select_for_update().filter(pk=owner.pk).first()
        for old in (
            ActivationCode.objects.select_for_update()
            .filter(**person, state=ActivationCode.State.ISSUED)
            .order_by("pk")
        ):
            _apply(
                old,
                "revoke",
                actor=issued_by,
                actor_label=actor_label,
                note="replaced by a new code",
            )
        clear = code_generate()
        salt = code_salt()
        code = ActivationCode.objects.create(
            **person,
            lookup=code_lookup(clear),
            salt=salt,
            code_hash=code_hash(clear, salt),
            channel=channel,
            expires_at=timezone.now() + datetime.timedelta(days=settings.ACTIVATION_CODE_DAYS),
            issued_by=issued_by if issued_by is not None and issued_by.is_authenticated else None,
        )
        transition_log(
            obj=code,
            transition="issue",
            source="",
            target=code.state,
            actor=issued_by,
            actor_label=actor_label,
            note=channel,
        )
    return code, clear


def activation_code_redeem(*, code: Any, user: Any) -> None:
    """Mark a code used by the account it opened; a code works once."""
    with transaction.atomic():
        locked = ActivationCode.objects.select_for_update().get(pk=code.pk)
        _apply(locked, "redeem", actor=user, note=f"opened the account of user {user.pk}")


def activation_code_revoke(*, code: Any, actor: Any, note: str = "") -> None:
    with transaction.atomic():
        locked = ActivationCode.objects.select_for_update().get(pk=code.pk)
        _apply(locked, "revoke", actor=actor, note=note)


def activation_codes_expire(*, now: datetime.datetime | None = None) -> int:
    """Move every issued code past its expiry to expired; returns how many."""
    now = now or timezone.now()
    expired = 0
    due = ActivationCode.objects.filter(state=ActivationCode.State.ISSUED, expires_at__lte=now)
    for pk in due.values_list("pk", flat=True).iterator(chunk_size=2000):
        with transaction.atomic():
            code = ActivationCode.objects.select_for_update().get(pk=pk)
            if can_proceed(code.expire):
                _apply(code, "expire", actor=None, actor_label="expiry")
                expired += 1
    return expired
