"""Runs of letters rendered in chunks by Celery workers, then joined into one PDF."""

from __future__ import annotations

from django.conf import settings
from django.db import models


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
    """A slice of a run, rendered by one task. Its PDF is deleted once joined."""

    run = models.ForeignKey(LetterRun, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    letters = models.PositiveIntegerField()
    pdf = models.FileField(upload_to="letter-chunks/", blank=True)
    rendered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="one_chunk_per_index")]

    def __str__(self) -> str:
        return f"chunk {self.index} of run {self.run_id}"
