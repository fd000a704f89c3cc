"""Celery tasks of the registration app: thin wrappers that load by id and call a service.
Each retries errors that pass with backoff (``config.celery.ProductTask``); delivery
is at least once, so each one is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from registration.models import Guardian, User
from registration.services import activation_code_email, activation_resend_due
from workflow.services import activation_codes_expire


@shared_task
def activation_code_email_task(
    guardian_id: int, reason: str, sent_by_id: int | None = None
) -> bool:
    guardian = Guardian.objects.filter(pk=guardian_id).first()
    if guardian is None:
        return False
    sent_by = User.objects.filter(pk=sent_by_id).first() if sent_by_id else None
    return activation_code_email(guardian=guardian, reason=reason, sent_by=sent_by) is not None


@shared_task
def activation_resend_due_task() -> int:
    return activation_resend_due()


@shared_task
def activation_codes_expire_task() -> int:
    return activation_codes_expire()
