"""The outbox: a task is recorded with the change that needs it, runs (or is published)
after the commit, and waits in the database for ``outbox_dispatch`` when it cannot.
The broker's side is in ``tests/faults`` (a real Redis); here tasks run in-process,
as in the embedded mode, or the broker is a port where nothing listens."""

from __future__ import annotations

import datetime
import logging
from io import StringIO
from smtplib import SMTPServerDisconnected
from unittest import mock

import pytest
from celery import shared_task
from celery.signals import task_failure
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection, connections, transaction
from django.utils import timezone

from outbox.models import DeliveryClaim, OutboxMessage
from outbox.services import (
    REOPEN_SECONDS,
    delivery_once,
    outbox_dispatch,
    task_enqueue,
)
from tests.outbox.broker import broker_at, port_closed
from workflow.models import AuditEvent
from workflow.retention import purge_expired

pytestmark = pytest.mark.django_db

CALLS: list[int] = []
REFUSING: set[int] = set()


@shared_task
def recorded_task(value: int) -> int:
    """Remembers that it ran; refuses the values in ``REFUSING``."""
    if value in REFUSING:
        raise ValueError(f"{value} refused")
    CALLS.append(value)
    return value


@pytest.fixture(autouse=True)
def fresh_calls():
    CALLS.clear()
    REFUSING.clear()
    yield
    CALLS.clear()
    REFUSING.clear()


def _clock_at(moment: datetime.datetime):
    """The outbox reads ``moment`` as the time now."""
    return mock.patch("outbox.services.timezone.now", return_value=moment)


def _due_now() -> None:
    """Let the time a waiting message waits pass."""
    OutboxMessage.objects.update(available_at=timezone.now() - datetime.timedelta(seconds=1))


def test_a_task_is_written_with_the_change_and_runs_right_after_the_commit(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        task_enqueue(recorded_task, 7)
        assert CALLS == []  # nothing before the commit
        message = OutboxMessage.objects.get()
    assert CALLS == [7]
    message.refresh_from_db()
    assert message.task_name == "tests.outbox.test_outbox.recorded_task"
    assert message.args == [7]
    assert message.dispatched_at is not None
    assert message.attempts == 1
    assert message.last_error == ""
    # The dispatcher finds nothing left to do.
    _due_now()
    assert outbox_dispatch().published == 0
    assert CALLS == [7]


def test_a_change_rolled_back_queues_nothing(django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        task_enqueue(recorded_task, 7)
        raise RuntimeError("the change failed")
    assert callbacks == []
    assert not OutboxMessage.objects.exists()
    assert CALLS == []


def test_arguments_that_are_not_json_are_refused_before_anything_is_written():
    with pytest.raises(TypeError):
        task_enqueue(recorded_task, object())
    assert not OutboxMessage.objects.exists()


def test_in_process_a_failed_task_waits_in_the_outbox_and_runs_again(
    django_capture_on_commit_callbacks, caplog
):
    REFUSING.add(7)
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        task_enqueue(recorded_task, 7)
    message = OutboxMessage.objects.get()
    assert message.dispatched_at is None
    assert message.attempts == 1
    assert message.last_error == "ValueError: 7 refused"
    assert outbox_dispatch().failed == 0  # not tried again at once: it waits a little
    assert "task tests.outbox.test_outbox.recorded_task(7,) failed" in caplog.text

    # Still refused: it waits longer each time (2 s after the first failure, 4 s after
    # the second), read on a clock the test moves.
    _due_now()
    report = outbox_dispatch()
    assert (report.published, report.failed) == (0, 1)
    message.refresh_from_db()
    assert message.attempts == 2
    REFUSING.clear()
    failed_at = timezone.now()
    for waited, published in ((0, 0), (3, 0), (5, 1)):
        with _clock_at(failed_at + datetime.timedelta(seconds=waited)):
            assert outbox_dispatch().published == published, waited
    assert CALLS == [7]
    OutboxMessage.objects.update(dispatched_at=None)  # and once more by the command
    CALLS.clear()
    _due_now()
    out = StringIO()
    call_command("outbox_dispatch", "--once", stdout=out)
    assert "Published 1 tasks; 0 failed and wait; 0 not dispatched." in out.getvalue()
    assert CALLS == [7]
    message.refresh_from_db()
    assert message.dispatched_at is not None
    assert message.attempts == 4


def test_a_message_for_an_unknown_task_waits_and_does_not_block_the_others():
    now = timezone.now()
    lost = OutboxMessage.objects.create(
        task_name="nowhere.tasks.gone_task", args=[1], available_at=now - datetime.timedelta(1)
    )
    OutboxMessage.objects.create(task_name=recorded_task.name, args=[2], available_at=now)
    report = outbox_dispatch()
    assert (report.published, report.failed) == (1, 1)
    assert CALLS == [2]
    lost.refresh_from_db()
    assert lost.dispatched_at is None
    assert "ModuleNotFoundError" in lost.last_error
    assert outbox_dispatch().failed == 0  # it waits before it is tried again


def test_with_the_broker_down_the_change_commits_and_the_task_waits(
    django_capture_on_commit_callbacks,
):
    with broker_at(f"redis://127.0.0.1:{port_closed()}/0"):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            task_enqueue(recorded_task, 1)
            task_enqueue(recorded_task, 2)
        _due_now()
        report = outbox_dispatch()
    assert report.broker_unreachable
    assert report.published == 0
    assert "Connection refused" in report.broker_error
    waiting = list(OutboxMessage.objects.order_by("pk"))
    assert all(message.dispatched_at is None for message in waiting)
    # The first refusal stops the batch: the broker is down for every message.
    assert [message.attempts for message in waiting] == [2, 0]
    assert CALLS == []
    # Once the broker is back (here: in-process again), everything goes out once.
    assert outbox_dispatch().published == 2
    assert sorted(CALLS) == [1, 2]
    assert outbox_dispatch().published == 0


def test_a_task_that_gave_up_during_an_outage_is_published_again_later():
    now = timezone.now()
    outage, bug = (
        OutboxMessage.objects.create(
            task_name=recorded_task.name, args=[n], available_at=now, dispatched_at=now, attempts=1
        )
        for n in (1, 2)
    )
    task_failure.send(
        sender=recorded_task,
        task_id=f"outbox-{outage.pk}",
        exception=SMTPServerDisconnected("the mail server went away"),
    )
    task_failure.send(sender=recorded_task, task_id=f"outbox-{bug.pk}", exception=KeyError("x"))
    task_failure.send(
        sender=recorded_task, task_id="not-from-the-outbox", exception=ConnectionError()
    )
    outage.refresh_from_db()
    assert outage.dispatched_at is None
    assert outage.last_error == "SMTPServerDisconnected: the mail server went away"
    bug.refresh_from_db()
    assert bug.dispatched_at == now  # a bug is not retried by the outbox
    # Published again once REOPEN_SECONDS have passed, not before (a clock the test moves).
    with _clock_at(now + datetime.timedelta(seconds=REOPEN_SECONDS - 60)):
        assert outbox_dispatch().published == 0
    with _clock_at(now + datetime.timedelta(seconds=REOPEN_SECONDS + 60)):
        assert outbox_dispatch().published == 1
    assert CALLS == [1]


@pytest.mark.postgresql  # SQLite's in-memory test database never really closes
@pytest.mark.django_db(transaction=True)
def test_a_task_whose_connection_broke_reopens_its_row_on_a_new_one():
    """Its last attempt failed because the worker's database connection broke: the
    row is reopened on a fresh connection, not on the broken one."""
    now = timezone.now()
    message = OutboxMessage.objects.create(
        task_name=recorded_task.name, args=[3], available_at=now, dispatched_at=now, attempts=1
    )
    broken = connection.connection
    connection.errors_occurred = True
    with mock.patch.object(type(connections["default"]), "is_usable", return_value=False):
        task_failure.send(
            sender=recorded_task,
            task_id=f"outbox-{message.pk}",
            exception=OperationalError("server closed the connection unexpectedly"),
        )
    assert connection.connection is not broken
    message.refresh_from_db()
    assert message.dispatched_at is None


def test_a_task_that_gave_up_while_the_database_was_down_stays_in_the_broker():
    """Its row cannot be reopened: the task is published again straight to the
    broker (which just delivered it, so is up), with the same id and arguments."""
    now = timezone.now()
    message = OutboxMessage.objects.create(
        task_name=recorded_task.name, args=[7], available_at=now, dispatched_at=now, attempts=1
    )
    with (
        mock.patch.object(
            OutboxMessage.objects, "filter", side_effect=OperationalError("server closed")
        ),
        mock.patch.object(recorded_task, "apply_async") as publish,
    ):
        task_failure.send(
            sender=recorded_task,
            task_id=f"outbox-{message.pk}",
            exception=OperationalError("the database went away"),
            args=[7],
            kwargs={},
        )
    publish.assert_called_once_with(
        args=[7], kwargs={}, task_id=f"outbox-{message.pk}", countdown=REOPEN_SECONDS
    )


def test_a_claimed_message_is_sent_once_and_a_failed_send_can_be_retried():
    sent: list[str] = []

    def failing() -> None:
        raise SMTPServerDisconnected("gone")

    with pytest.raises(SMTPServerDisconnected):
        delivery_once(key="k", send=failing)
    assert not DeliveryClaim.objects.exists()
    assert delivery_once(key="k", send=lambda: sent.append("first")) is True
    assert delivery_once(key="k", send=lambda: sent.append("second")) is False
    assert sent == ["first"]


def test_dispatched_rows_and_old_claims_are_purged_after_their_period(settings):
    settings.RETENTION_OUTBOX_DAYS = 7
    now = timezone.now()
    long_ago = now - datetime.timedelta(days=8)
    OutboxMessage.objects.create(
        task_name="a", available_at=long_ago, created_at=long_ago, dispatched_at=long_ago
    )
    kept = [
        OutboxMessage.objects.create(task_name="b", available_at=now, dispatched_at=now).pk,
        # Never dispatched, however old: it is work still to do.
        OutboxMessage.objects.create(task_name="c", available_at=long_ago, created_at=long_ago).pk,
    ]
    DeliveryClaim.objects.create(key="old", created_at=long_ago)
    DeliveryClaim.objects.create(key="new")

    assert purge_expired(dry_run=True).outbox == 2
    assert OutboxMessage.objects.count() == 3
    report = purge_expired()
    assert report.outbox == 2
    assert sorted(OutboxMessage.objects.values_list("pk", flat=True)) == sorted(kept)
    assert list(DeliveryClaim.objects.values_list("key", flat=True)) == ["new"]
    row = AuditEvent.objects.get(object_type="outbox.outboxmessage")
    assert row.detail["removed"] == 2
    assert purge_expired().outbox == 0


def test_the_dispatcher_fails_once_when_the_broker_is_unreachable():
    OutboxMessage.objects.create(
        task_name=recorded_task.name, args=[1], available_at=timezone.now()
    )
    with (
        broker_at(f"redis://127.0.0.1:{port_closed()}/0"),
        pytest.raises(CommandError, match=r"The broker is unreachable .*1 tasks wait"),
    ):
        call_command("outbox_dispatch", "--once", stdout=StringIO())
    assert OutboxMessage.objects.get().dispatched_at is None
