"""Every write in the documents app: runs of letters split into chunks that Celery
workers render, then joined into the printer's files; registration confirmations;
payment receipts."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext

from config.encryption import decrypt_text, encrypt_text
from config.languages import language_or_default
from documents.letters import Letter, letters_pdf
from documents.models import Confirmation, LetterChunk, LetterRun, Receipt
from documents.pdf_join import tagged_join
from documents.rendering import pdf_from_html
from outbox.services import delivery_once
from payments.models import Checkout
from payments.money import money
from registration.models import Guardian, User
from registration.selectors import email_on_file, guardian_for
from registration.templatetags.phones import help_phone
from workflow.models import Submission


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
    # A part of the printer's file: in its language, whatever these letters' are.
    pdf = letters_pdf(letters, language=settings.LANGUAGE_CODE)
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


@dataclass(frozen=True)
class JoinedLetters:
    """The printer's files of a run of letters, in order, and their pages in all."""

    files: list[Path]
    pages: int


def letter_run_files(out: Path, count: int) -> list[Path]:
    """Where a run's ``count`` files are written: ``out`` alone, or ``out``'s name
    numbered, e.g. ``letters-01.pdf`` to ``letters-12.pdf``."""
    if count == 1:
        return [out]
    width = len(str(count))
    return [out.with_name(f"{out.stem}-{n:0{width}}{out.suffix}") for n in range(1, count + 1)]


def letter_run_join(
    *, run: LetterRun, out: Path, timeout: float = 3600, poll_seconds: float = 1.0
) -> JoinedLetters:
    """Wait for every chunk, join them in order into ``out``, or into several files
    of whole chunks and at most ``ACTIVATION_LETTERS_PER_FILE`` letters each
    (``letter_run_files``), deleting each chunk's file once joined."""
    deadline = time.monotonic() + timeout
    while run.chunks.filter(rendered_at__isnull=True).exists():
        if time.monotonic() > deadline:
            raise LetterRunTimeout(f"letter run {run.pk} is not finished after {timeout} s")
        time.sleep(poll_seconds)
    chunks = list(run.chunks.order_by("index"))
    per_file = max(settings.ACTIVATION_LETTERS_PER_FILE, max(c.letters for c in chunks))
    # Whole chunks to a file, as many as fit.
    groups: list[list[LetterChunk]] = []
    held = per_file
    for chunk in chunks:
        if held + chunk.letters > per_file:
            groups.append([])
            held = 0
        groups[-1].append(chunk)
        held += chunk.letters
    files = letter_run_files(out, len(groups))
    pages = 0
    for group, path in zip(groups, files, strict=True):
        # Joined with their structure trees, so that the printer's file is tagged PDF
        # too, in the district's language, each letter marked with its own.
        with path.open("wb") as handle:
            pages += tagged_join(_chunk_files(group), handle, lang=settings.LANGUAGE_CODE)
        for chunk in group:
            chunk.pdf.delete(save=True)
    run.finished_at = timezone.now()
    run.save(update_fields=["finished_at"])
    return JoinedLetters(files=files, pages=pages)


def _chunk_files(chunks: Sequence[LetterChunk]) -> Iterator[BinaryIO]:
    """Each chunk's file, open while it is read: one at a time, however long the run."""
    for chunk in chunks:
        with chunk.pdf.open("rb") as handle:
            yield handle


# -- registration confirmations -------------------------------------------------------


def confirmation_render(*, submission: Submission) -> Confirmation:
    """The submission's PDF confirmation, rendered once: a second delivery of the task
    finds it and renders nothing."""
    existing = Confirmation.objects.filter(submission=submission).first()
    if existing is not None:
        return existing
    registration = submission.registration
    with translation.override(submission.language):
        html = render_to_string(
            "documents/confirmation.html",
            {
                "submission": submission,
                "content": submission.content,
                "district": settings.DISTRICT_NAME,
                "help_email": settings.DISTRICT_HELP_EMAIL,
                "help_phone": help_phone(),
                "language": submission.language,
            },
        )
    pdf = pdf_from_html(html)
    name = f"confirmation-{registration.pk}-v{submission.version}.pdf"
    confirmation = Confirmation(
        submission=submission, sha256=hashlib.sha256(pdf).hexdigest(), language=submission.language
    )
    confirmation.pdf.save(name, ContentFile(pdf), save=False)
    try:
        with transaction.atomic():
            confirmation.save()
    except IntegrityError:
        # Another delivery stored it first; keep that one.
        confirmation.pdf.delete(save=False)
        return Confirmation.objects.get(submission=submission)
    return confirmation


def _recipients(submission: Submission) -> list[tuple[Guardian, str]]:
    """Every guardian of the household with an address to write to."""
    recipients = []
    household_id = submission.registration.household_id
    for guardian in Guardian.objects.filter(
        householdguardian__household_id=household_id, enabled=True
    ).select_related("user"):
        email = (guardian.user.email if guardian.user else "") or email_on_file(guardian)
        if email:
            recipients.append((guardian, email))
    return recipients


def confirmation_send(*, submission_id: int) -> bool:
    """Render the confirmation if needed and email it to each of the household's
    guardians once, however often the task is delivered: each message is claimed
    before it is sent (``outbox.services.delivery_once``), a failed send releases
    its claim so that the retry sends it (and only it), and ``emailed_at`` says when
    every message had gone. Returns whether this delivery sent anything."""
    from registration.services import guardian_language

    submission = Submission.objects.select_related("registration__campaign__school_year").get(
        pk=submission_id
    )
    confirmation = confirmation_render(submission=submission)
    # No shortcut on ``emailed_at``: another delivery may have set it while this
    # one's send was failing; the per-guardian claims alone say what went out.
    with confirmation.pdf.open("rb") as handle:
        pdf = handle.read()
    sent = False
    for guardian, email in _recipients(submission):
        context = {
            "guardian": guardian,
            "submission": submission,
            "year": submission.registration.campaign.school_year.label,
            "home_url": settings.SITE_URL.rstrip("/") + "/home/",
            "district": settings.DISTRICT_NAME,
            "help_email": settings.DISTRICT_HELP_EMAIL,
            "help_phone": help_phone(),
        }
        with translation.override(guardian_language(guardian)):
            subject = render_to_string("documents/email/confirmation_subject.txt", context)
            body = render_to_string("documents/email/confirmation_message.txt", context)
            filename = gettext("registration-%(year)s.pdf") % {"year": context["year"]}
        message = EmailMessage(
            " ".join(subject.split()), body, settings.DEFAULT_FROM_EMAIL, [email]
        )
        message.attach(filename, pdf, "application/pdf")
        if delivery_once(
            key=f"confirmation:{confirmation.pk}:guardian-{guardian.pk}", send=message.send
        ):
            sent = True
    Confirmation.objects.filter(pk=confirmation.pk, emailed_at__isnull=True).update(
        emailed_at=timezone.now()
    )
    return sent


# -- payment receipts -----------------------------------------------------------------


def receipt_number(checkout: Checkout) -> str:
    """The number printed on a checkout's receipt (and in its file name)."""
    return f"R-{checkout.pk:06d}"


def receipt_language(checkout: Checkout) -> str:
    """The language of a receipt and of its email: the paying guardian's choice
    (``Guardian.language``), else the household's, when the product speaks it,
    else the default."""
    guardian = guardian_for(checkout.created_by)
    return language_or_default(guardian.language if guardian else None, checkout.household.language)


def _payer_name(user: User) -> str:
    guardian = guardian_for(user)
    if guardian is not None:
        return guardian.full_name
    return user.get_full_name() or user.email


def receipt_render(*, checkout: Checkout) -> Receipt:
    """The PDF receipt of a paid checkout (tagged PDF/UA, in ``receipt_language``),
    stored once: a second call, or a second delivery of the task, finds it."""
    from payments import local_stripe

    existing = Receipt.objects.filter(checkout=checkout).first()
    if existing is not None:
        return existing
    checkout = Checkout.objects.select_related("household", "created_by").get(pk=checkout.pk)
    if checkout.state != Checkout.State.PAID or checkout.paid_at is None:
        raise ValueError(
            f"checkout {checkout.pk} is {checkout.state}: only paid ones have receipts"
        )
    language = receipt_language(checkout)
    lines = list(checkout.lines.select_related("student", "fee").order_by("pk"))
    with translation.override(language):
        html = render_to_string(
            "documents/receipt.html",
            {
                "language": language,
                "district": settings.DISTRICT_NAME,
                "help_email": settings.DISTRICT_HELP_EMAIL,
                "help_phone": help_phone(),
                "number": receipt_number(checkout),
                "reference": checkout.reference,
                "paid_at": checkout.paid_at,
                "payer": _payer_name(checkout.created_by),
                "payer_email": checkout.created_by.email,
                "rows": [
                    {
                        "child": line.student.full_name,
                        "fee": line.fee.title_in(language),
                        "amount": money(line.amount_cents),
                    }
                    for line in lines
                ],
                "total": money(checkout.total_cents),
                "payment_reference": checkout.stripe_payment_intent,
                "test_payment": local_stripe.is_local_payment(checkout.stripe_payment_intent),
            },
        )
    pdf = pdf_from_html(html)
    receipt = Receipt(checkout=checkout, sha256=hashlib.sha256(pdf).hexdigest(), language=language)
    receipt.pdf.save(f"receipt-{checkout.pk}.pdf", ContentFile(pdf), save=False)
    try:
        with transaction.atomic():
            receipt.save()
    except IntegrityError:
        # Another delivery stored it first; keep that one.
        receipt.pdf.delete(save=False)
        return Receipt.objects.get(checkout=checkout)
    return receipt
