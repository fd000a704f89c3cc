"""Work queued for Celery, kept in the database until the broker has it, and the
side effects that must happen once whatever the number of deliveries."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class OutboxMessage(models.Model):
    """One Celery task to run, written in the same transaction as the change that
    needs it: it exists exactly when the change committed. The web process publishes
    it right after the commit; ``outbox_dispatch`` publishes whatever is left (the
    broker was down, the process died). ``dispatched_at`` is set once the broker
    has taken it."""

    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    available_at = models.DateTimeField(
        help_text="The dispatcher leaves the row alone before this time."
    )
    dispatched_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["available_at", "id"],
                condition=Q(dispatched_at__isnull=True),
                name="outbox_waiting",
            )
        ]

    def __str__(self) -> str:
        return f"{self.task_name}{tuple(self.args)}"


class DeliveryClaim(models.Model):
    """A message (an email) that must go out once: the first task delivery to
    insert its key sends it, any other delivery finds the key and sends nothing."""

    key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.key
