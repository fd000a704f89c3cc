from __future__ import annotations

from smtplib import SMTPException

from celery import shared_task

from documents.services import confirmation_send, letter_chunk_render


@shared_task(acks_late=True, max_retries=3, autoretry_for=(OSError,), retry_backoff=True)
def letter_chunk_render_task(chunk_id: int, sealed: str) -> None:
    letter_chunk_render(chunk_id=chunk_id, sealed=sealed)


@shared_task(
    acks_late=True,
    max_retries=6,
    autoretry_for=(OSError, SMTPException),
    retry_backoff=True,
)
def confirmation_send_task(submission_id: int) -> bool:
    return confirmation_send(submission_id=submission_id)
