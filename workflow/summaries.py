"""District-wide summaries: counted in the background, read in one query.

Some staff pages sum up the whole district: the data quality lists compare every
name for duplicates, the activation page counts guardians and households with an
account per school. For a million students that reads millions of rows, seconds on
every view. So each summary is counted by a function (``COUNTERS``) whose result,
plain JSON, is kept as a ``Summary`` row, and the page reads that row:

- never counted (or ``settings.SUMMARY_MAX_AGE_SECONDS`` is 0): counted at once;
- older than the maximum age: shown as it is, while a Celery task counts it again
  (asked once per maximum age, however many staff look);
- the page says when it was counted.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from workflow.models import Summary

# The function that counts each summary; each returns JSON-ready data.
COUNTERS = {
    "quality": "workflow.quality.quality_count",
    "activation": "registration.selectors.activation_count",
    "reminders": "workflow.selectors.reminder_count",
    "campaigns": "workflow.selectors.campaign_count",
}


def summary_count(key: str) -> Summary:
    """Count the summary now and keep it."""
    data = import_string(COUNTERS[key])()
    # Two counts at once (two staff on a page never counted, a worker's recount
    # while a campaign is opened): the second waits for the first's row, then
    # writes its own count over it.
    summary, _created = Summary.objects.update_or_create(
        key=key, defaults={"taken_at": timezone.now(), "data": data}
    )
    return summary


def _queued_key(key: str) -> str:
    return f"summary-count-queued:{key}"


def summary_count_queue(key: str) -> bool:
    """Ask a worker to count the summary again, unless one was asked within the
    maximum age already. Returns whether it was asked now."""
    from workflow.tasks import summary_count_task

    if not cache.add(_queued_key(key), True, timeout=max(settings.SUMMARY_MAX_AGE_SECONDS, 1)):
        return False
    transaction.on_commit(lambda: summary_count_task.delay(key), robust=True)
    return True


def summary_current(key: str) -> Summary:
    """The summary as last counted; counted at once when it never was (or when the
    maximum age is 0), and counted again by a worker when older than the maximum age."""
    max_age = settings.SUMMARY_MAX_AGE_SECONDS
    summary = Summary.objects.filter(key=key).first()
    if summary is None or max_age <= 0:
        return summary_count(key)
    if (timezone.now() - summary.taken_at).total_seconds() > max_age:
        summary_count_queue(key)
    return summary
