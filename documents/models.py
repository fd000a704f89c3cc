"""Runs of letters rendered in chunks by Celery workers, then joined into one PDF."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from config.storage import private_storage_get


class LetterRun(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    letters = models.PositiveIntegerField()
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.letters} letters, {self.created_at:%Y-%m-%d %H:%M}"


class LetterChunk(models.Model):
    """A slice of a run, rendered by one task. Its PDF is deleted once joined; until
    then it holds activation codes in clear, so it is kept in the private storage."""

    run = models.ForeignKey(LetterRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    letters = models.PositiveIntegerField()
    pdf = models.FileField(storage=private_storage_get, upload_to="letter-chunks/", blank=True)
    rendered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="one_chunk_per_index")]

    def __str__(self) -> str:
        return f"chunk {self.index} of run {self.run_id}"


class Confirmation(models.Model):
    """The PDF confirmation of one submission. Written once, never overwritten: a
    resubmission is a new submission with its own confirmation."""

    created_at = models.DateTimeField(auto_now_add=True)
    submission = models.OneToOneField(
        "workflow.Submission", on_delete=models.PROTECT, related_name="confirmation"
    )
    pdf = models.FileField(storage=private_storage_get, upload_to="confirmations/%Y/%m/")
    sha256 = models.CharField(max_length=64)
    language = models.CharField(max_length=8)
    emailed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When it was sent to the household's guardians.")
    )

    def __str__(self) -> str:
        return f"Confirmation of submission {self.submission_id}"


class Receipt(models.Model):
    """The PDF receipt of one paid checkout, in the language of the household. Written
    once when the payment is confirmed, emailed to the guardian who paid and kept for
    download by the household and finance."""

    created_at = models.DateTimeField(auto_now_add=True)
    checkout = models.OneToOneField(
        "payments.Checkout", on_delete=models.PROTECT, related_name="receipt"
    )
    pdf = models.FileField(storage=private_storage_get, upload_to="receipts/%Y/%m/")
    sha256 = models.CharField(max_length=64)
    language = models.CharField(max_length=8)
    emailed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When it was sent to the guardian who paid.")
    )

    def __str__(self) -> str:
        return f"Receipt of checkout {self.checkout_id}"
