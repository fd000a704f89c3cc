"""Celery tasks: thin wrappers that load by id and call a service. Delivery is at
least once, so each one is safe to run twice."""

from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task

from payments.services import checkout_receipt_send


@shared_task(
    acks_late=True,
    max_retries=6,
    autoretry_for=(OSError, SMTPException),
    retry_backoff=True,
)
def checkout_receipt_send_task(checkout_id: int) -> bool:
    return checkout_receipt_send(checkout_id=checkout_id)
