"""Celery tasks of the payments app: thin wrappers that load by id and call a service.
Each retries errors that pass with backoff (``config.celery.ProductTask``); delivery
is at least once, so each one is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from payments.services import checkout_receipt_send


@shared_task
def checkout_receipt_send_task(checkout_id: int) -> bool:
    return checkout_receipt_send(checkout_id=checkout_id)
