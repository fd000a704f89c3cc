"""Celery tasks of the registration app: thin wrappers that load by id and call a service.
Each retries errors that pass with backoff (``config.celery.ProductTask``); delivery
is at least once, so each one is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from registration.models import Guardian, User
from registration.services import activation_code_email, activation_resend_due
from workflow.services import activation_codes_expire


@shared_task
def activation_codes_email_task(
    guardian_ids: list[int], reason: str, sent_by_id: int | None = None
) -> int:
    """Email each guardian a fresh code; returns how many were sent. A guardian who no
    longer needs one (activated, already sent, no email) is skipped."""
    sent_by = User.objects.filter(pk=sent_by_id).first() if sent_by_id else None
    sent = 0
    for guardian in Guardian.objects.filter(pk__in=guardian_ids).order_by("pk"):
        if activation_code_email(guardian=guardian, reason=reason, sent_by=sent_by):
            sent += 1
    return sent


@shared_task
def activation_resend_due_task() -> int:
    return activation_resend_due()


@shared_task
def activation_codes_expire_task() -> int:
    return activation_codes_expire()
