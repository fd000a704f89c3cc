"""Celery tasks of the finance app: thin wrappers around ``finance.services``.
Delivery is at least once; a second run of the same reconciliation changes nothing."""

from __future__ import annotations

import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from config.celery import TRANSIENT_ERRORS
from finance.services import reconcile_payouts
from payments.stripe_gateway import PaymentServiceUnavailable


@shared_task(
    max_retries=5,
    autoretry_for=(PaymentServiceUnavailable, *TRANSIENT_ERRORS),
    retry_backoff=300,
)
def payouts_reconcile_task() -> int:
    """The daily reconciliation: the payouts of the last ``FINANCE_RECONCILE_DAYS``
    days (a late webhook in that window resolves its mismatch). Returns the run's id."""
    since = timezone.localdate() - datetime.timedelta(days=settings.FINANCE_RECONCILE_DAYS)
    return reconcile_payouts(since=since, actor_label="daily reconciliation").pk
