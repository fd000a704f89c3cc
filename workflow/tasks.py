"""Celery tasks of the workflow app: thin wrappers that load by id and call a service.
Each retries errors that pass with backoff (``config.celery.ProductTask``); delivery
is at least once, so each one is safe to run twice."""

from __future__ import annotations

from celery import shared_task

from workflow.services import (
    address_decision_email,
    address_visit_email,
    registration_review_email,
    reminders_batch_send,
    reminders_requeue,
)


@shared_task
def registration_review_email_task(registration_id: int, outcome: str) -> int:
    """Tell the family their registration was approved or returned; sends nothing
    once the registration has moved on (see ``registration_review_email``)."""
    return registration_review_email(registration_id=registration_id, outcome=outcome)


@shared_task
def address_visit_email_task(visit_id: int) -> int:
    """Tell the family and the school office that a visit is booked; sends nothing
    for a booking cancelled since (see ``address_visit_email``)."""
    return address_visit_email(visit_id=visit_id)


@shared_task
def address_decision_email_task(request_id: int) -> int:
    """Tell the family their new address was verified, or why it was not."""
    return address_decision_email(request_id=request_id)


@shared_task
def reminders_send_task(reminder_ids: list[int]) -> int:
    """Email a batch of reminders; each one is sent once however often the task runs
    (see ``reminders_batch_send``)."""
    return reminders_batch_send(reminder_ids=reminder_ids)


@shared_task
def reminders_requeue_task() -> int:
    """Queue again the reminders whose first task never ran."""
    return reminders_requeue()


@shared_task
def dashboard_count_task(campaign_id: int) -> int:
    """Count a campaign's staff dashboard again (see ``workflow.dashboard``)."""
    from workflow.dashboard import dashboard_count
    from workflow.models import Campaign

    campaign = Campaign.objects.filter(pk=campaign_id).first()
    return 0 if campaign is None else dashboard_count(campaign)


@shared_task
def summary_count_task(key: str) -> int:
    """Count a district-wide summary again (see ``workflow.summaries``)."""
    from workflow.summaries import summary_count

    return summary_count(key).pk


@shared_task
def dashboards_count_task() -> int:
    """Count the dashboards of running campaigns, so staff rarely wait for one."""
    from workflow.dashboard import dashboard_count
    from workflow.selectors import campaign_running

    campaign = campaign_running()
    return 0 if campaign is None else dashboard_count(campaign)


@shared_task
def purge_expired_task() -> str:
    """Remove what is kept past its retention period (see ``workflow.retention``)."""
    from workflow.retention import purge_expired

    return str(purge_expired())
