"""Celery tasks of the documents app: thin wrappers that load by id and call a service.
Each retries errors that pass with backoff (``config.celery.ProductTask``); delivery
is at least once, so each one is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from documents.services import confirmation_send, letter_chunk_render


@shared_task
def letter_chunk_render_task(chunk_id: int, sealed: str) -> None:
    letter_chunk_render(chunk_id=chunk_id, sealed=sealed)


@shared_task
def confirmation_send_task(submission_id: int) -> bool:
    return confirmation_send(submission_id=submission_id)
