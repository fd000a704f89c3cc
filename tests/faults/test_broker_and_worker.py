"""A real Redis and real Celery workers (subprocesses) against the test database: a
worker killed in the middle of a confirmation, and Redis stopped while families sign.

PostgreSQL only: the workers share the test database with this process, so the data
is committed (``transaction=True``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command

from documents.models import Confirmation
from documents.services import _recipients
from outbox.models import OutboxMessage
from tests.faults.families import household_answered, household_submit
from tests.faults.processes import confirmation_files, messages_sent, wait_for
from tests.outbox.broker import broker_at
from workflow.models import Registration, Submission

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


def _attachments(message) -> list[str]:
    return [part.get_content_type() for part in message.walk() if part.get_filename()]


def test_a_worker_killed_while_rendering_a_confirmation_leaves_one_document_and_one_email(
    campaign, guardian_user, redis_server, services, mail_folder, private_files, tmp_path
):
    registration, guardian = household_answered(campaign, "hh-001")
    rendering = tmp_path / "rendering"
    first = services("worker-1", FAULT_RENDER_PAUSE_SECONDS="120", FAULT_RENDER_MARK=str(rendering))
    with broker_at(redis_server.url):
        submission = household_submit(registration, guardian)
    assert OutboxMessage.objects.get().dispatched_at is not None  # Redis has it

    wait_for(rendering.exists, "the first worker rendering the confirmation")
    first.kill()
    assert not Confirmation.objects.exists()
    assert messages_sent(mail_folder) == []
    assert redis_server.tasks_held() == 1  # taken, never acknowledged

    # A new worker takes the task the dead one never acknowledged (here after one
    # second instead of an hour) and renders and sends it.
    second = services("worker-2", CELERY_VISIBILITY_TIMEOUT="1")
    wait_for(
        lambda: Confirmation.objects.filter(
            submission=submission, emailed_at__isnull=False
        ).exists(),
        "the confirmation sent",
    )
    wait_for(lambda: redis_server.tasks_held() == 0, "the task acknowledged")
    assert second.stop() == 0

    confirmation = Confirmation.objects.get()
    assert confirmation.submission == submission
    assert [path.name for path in confirmation_files(Path(private_files))] == [
        Path(confirmation.pdf.name).name
    ]
    (message,) = messages_sent(mail_folder)
    assert message["To"] == "jose.garcia@example.com"
    assert _attachments(message) == ["application/pdf"]


def test_submissions_while_redis_is_down_are_saved_and_go_out_once_when_it_is_back(
    campaign,
    guardian_user,
    other_guardian_user,
    redis_server,
    services,
    mail_folder,
    private_files,
):
    families = [household_answered(campaign, h) for h in ("hh-001", "hh-002", "hh-003")]
    services("worker")
    dispatcher = services("dispatcher", kind="dispatcher")
    redis_server.stop()

    with broker_at(redis_server.url):
        submissions = [
            household_submit(registration, guardian) for registration, guardian in families
        ]

    # Every submission is saved; its confirmation waits in the outbox.
    assert Submission.objects.count() == 3
    assert set(
        Registration.objects.filter(pk__in=[r.pk for r, _g in families]).values_list(
            "state", flat=True
        )
    ) == {Registration.State.SUBMITTED}
    waiting = OutboxMessage.objects.filter(dispatched_at__isnull=True)
    assert sorted(waiting.values_list("args", flat=True)) == sorted([s.pk] for s in submissions)
    # The dispatcher keeps trying, and keeps running, while Redis is down.
    wait_for(lambda: waiting.filter(attempts__gte=2).exists(), "the dispatcher trying")
    assert dispatcher.alive
    assert not Confirmation.objects.exists()

    redis_server.start()
    wait_for(
        lambda: Confirmation.objects.filter(emailed_at__isnull=False).count() == 3,
        "every confirmation sent",
        seconds=90,
    )
    wait_for(lambda: not waiting.exists(), "the outbox empty")
    wait_for(lambda: redis_server.tasks_held() == 0, "every task acknowledged")
    assert dispatcher.stop() == 0  # SIGTERM: it finishes its batch and exits

    # Nothing is left to publish; nothing went out twice.
    with broker_at(redis_server.url):
        call_command("outbox_dispatch", "--once")
    assert redis_server.tasks_held() == 0
    assert Confirmation.objects.count() == 3
    assert len(confirmation_files(Path(private_files))) == 3
    sent = messages_sent(mail_folder)
    recipients = sorted(email for s in submissions for _guardian, email in _recipients(s))
    assert "siobhan.obrien@example.com" in recipients
    assert sorted(message["To"] for message in sent) == recipients
    assert all(_attachments(message) == ["application/pdf"] for message in sent)
