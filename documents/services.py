"""Every write in the documents app: runs of letters split into chunks that Celery
workers render, then joined into one PDF."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from pypdf import PdfWriter

from config.encryption import decrypt_text, encrypt_text
from documents.letters import Letter, letters_pdf
from documents.models import LetterChunk, LetterRun
from registration.models import User


class LetterRunTimeout(Exception):
    """The workers did not render every chunk in time."""


def letter_run_start(*, letters: Sequence[Letter], created_by: User | None = None) -> LetterRun:
    """Split ``letters`` into chunks and queue one rendering task per chunk.

    The letters carry activation codes, so each chunk travels to its worker
    encrypted: the broker never holds a code in clear.
    """
    from documents.tasks import letter_chunk_render_task  # tasks import this module

    size = settings.ACTIVATION_LETTER_CHUNK
    with transaction.atomic():
        run = LetterRun.objects.create(letters=len(letters), created_by=created_by)
        for index, start in enumerate(range(0, len(letters), size)):
            batch = letters[start : start + size]
            chunk = LetterChunk.objects.create(run=run, index=index, letters=len(batch))
            sealed = encrypt_text(json.dumps([letter.as_json() for letter in batch]))
            transaction.on_commit(partial(letter_chunk_render_task.delay, chunk.pk, sealed))
    return run


def letter_chunk_render(*, chunk_id: int, sealed: str) -> None:
    """Render one chunk into its PDF. Delivered twice, it renders at most once into
    storage: the file has a fixed name and only the first to finish records it."""
    chunk = LetterChunk.objects.get(pk=chunk_id)
    if chunk.rendered_at is not None:
        return
    letters = [Letter.from_json(data) for data in json.loads(decrypt_text(sealed))]
    pdf = letters_pdf(letters)
    storage = chunk.pdf.storage
    name = f"letter-chunks/run-{chunk.run_id}-{chunk.index}.pdf"
    if storage.exists(name):
        storage.delete(name)  # a half-finished earlier delivery
    saved = storage.save(name, ContentFile(pdf))
    claimed = LetterChunk.objects.filter(pk=chunk.pk, rendered_at__isnull=True).update(
        pdf=saved, rendered_at=timezone.now()
    )
    if not claimed and saved != name:
        # Another delivery finished first: its file is the one kept.
        storage.delete(saved)


def letter_run_join(
    *, run: LetterRun, out: Path, timeout: float = 3600, poll_seconds: float = 1.0
) -> int:
    """Wait for every chunk, join them in order into ``out``, delete the chunks'
    files. Returns the number of pages."""
    deadline = time.monotonic() + timeout
    while run.chunks.filter(rendered_at__isnull=True).exists():
        if time.monotonic() > deadline:
            raise LetterRunTimeout(f"letter run {run.pk} is not finished after {timeout} s")
        time.sleep(poll_seconds)
    writer = PdfWriter()
    chunks = list(run.chunks.order_by("index"))
    for chunk in chunks:
        with chunk.pdf.open("rb") as handle:
            writer.append(handle)
    with out.open("wb") as handle:
        writer.write(handle)
    pages = len(writer.pages)
    for chunk in chunks:
        chunk.pdf.delete(save=True)
    run.finished_at = timezone.now()
    run.save(update_fields=["finished_at"])
    return pages
