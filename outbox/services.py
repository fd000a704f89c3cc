"""The outbox: Celery tasks recorded in the database with the change that needs them,
so that a broker outage delays the work and never drops it.

- ``task_enqueue(task, *args)``, called inside the change's transaction, writes an
  ``OutboxMessage``: the row exists exactly when the change committed. Right after
  the commit the same process publishes it; in the embedded mode (no broker, tasks
  in-process) the task runs then, as it always did.
- ``outbox_dispatch`` (the ``outbox_dispatch`` command: a process of its own, not a
  beat task, that needs only the database to keep running) publishes what is left:
  rows whose first publish failed or never happened. It locks them with
  ``SELECT ... FOR UPDATE SKIP LOCKED``, so several dispatchers share the work.
- A row is marked dispatched by a compare-and-set update once the broker took it.
  A crash between the two publishes it again: delivery is at least once, and every
  task is idempotent (``delivery_once`` for messages that must go out once).
- Dispatched rows and claims are removed after ``RETENTION_OUTBOX_DAYS`` by
  ``purge_expired``.
"""

from __future__ import annotations

import datetime
import importlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery import Celery, Task
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db import connection as database
from django.db.models import F
from django.utils import timezone
from kombu import Connection
from kombu.exceptions import OperationalError as BrokerOperationalError

from outbox.models import DeliveryClaim, OutboxMessage

log = logging.getLogger("outbox")

# A row whose publish failed waits 2, 4, 8 ... seconds, at most this long.
RETRY_MAX_SECONDS = 300
# A task that gave up on an error that passes is published again this much later,
# as long as the row has been published fewer than MAX_ATTEMPTS times.
REOPEN_SECONDS = 15 * 60
MAX_ATTEMPTS = 20
# After the broker refused a publish, this process leaves publishing to the
# dispatcher for a few seconds rather than make every request wait for it.
BROKER_PAUSE_SECONDS = 5.0
# A publish tries to connect once, this long at most: the dispatcher retries, so
# the broker client's own retries would only hold up a request.
BROKER_CONNECT_SECONDS = 2.0
TASK_ID_PREFIX = "outbox-"

_broker_down_until = 0.0


def _celery() -> Celery[Any]:
    from config.celery import app

    return app


def _eager() -> bool:
    return bool(_celery().conf.task_always_eager)


def _broker_connection() -> Connection:
    """A connection to the broker that fails at once when it cannot connect."""
    app = _celery()
    return app.connection_for_write(
        transport_options={**app.conf.broker_transport_options, "max_retries": 0},
        connect_timeout=BROKER_CONNECT_SECONDS,
    )


def _broker_errors(connection: Connection) -> tuple[type[BaseException], ...]:
    """What a publish raises when the broker cannot be reached."""
    return (BrokerOperationalError, OSError, *connection.connection_errors)


def _task_named(name: str) -> Task:
    """The registered task ``name`` (``app.tasks.x_task``), importing its module."""
    importlib.import_module(name.rsplit(".", 1)[0])
    return _celery().tasks[name]


def _retry_delay(attempts: int) -> datetime.timedelta:
    return datetime.timedelta(seconds=min(2**attempts, RETRY_MAX_SECONDS))


def task_enqueue(task: Task, *args: Any) -> OutboxMessage:
    """Record ``task(*args)`` in the current transaction and publish it after the
    commit (at once outside a transaction). The arguments must be JSON: ids and
    short strings. A publish that fails leaves the row to ``outbox_dispatch``; it
    never turns the committed change into an error."""
    json.dumps(args)  # a TypeError here, not in the dispatcher
    now = timezone.now()
    message = OutboxMessage.objects.create(
        task_name=task.name,
        args=list(args),
        created_at=now,
        available_at=now + datetime.timedelta(seconds=settings.OUTBOX_GRACE_SECONDS),
    )

    def publish() -> None:
        message_publish(message_id=message.pk)

    # Django logs an on_commit callback by its qualified name.
    publish.__qualname__ = f"outbox publish of {task.name}"
    transaction.on_commit(publish, robust=True)
    return message


def _publish(message: OutboxMessage, connection: Connection | None) -> Exception | None:
    """Hand ``message`` to the broker over ``connection`` (in-process, without one:
    run the task) and mark it dispatched; returns the error instead when it failed."""
    try:
        task = _task_named(message.task_name)
        task.apply_async(
            args=message.args,
            task_id=f"{TASK_ID_PREFIX}{message.pk}",
            retry=False,
            # Celery's documented option, missing from its type stubs.
            connection=connection,  # type: ignore[call-arg]
        )
    except Exception as error:
        return error
    OutboxMessage.objects.filter(pk=message.pk, dispatched_at__isnull=True).update(
        dispatched_at=timezone.now(), attempts=F("attempts") + 1
    )
    return None


def _failure_record(
    message: OutboxMessage, error: Exception, *, retry_in: datetime.timedelta | None
) -> None:
    changes: dict[str, Any] = {
        "attempts": F("attempts") + 1,
        "last_error": f"{type(error).__name__}: {error}"[:2000],
    }
    if retry_in is not None:
        changes["available_at"] = timezone.now() + retry_in
    OutboxMessage.objects.filter(pk=message.pk, dispatched_at__isnull=True).update(**changes)


def message_publish(*, message_id: int) -> bool:
    """Publish one message now: what ``task_enqueue`` does after the commit. Returns
    whether the broker took it (in-process: whether the task succeeded); otherwise
    the row waits for the dispatcher."""
    global _broker_down_until
    waiting = OutboxMessage.objects.filter(pk=message_id, dispatched_at__isnull=True)
    if _eager():
        message = waiting.first()
        if message is None:
            return False
        error = _publish(message, None)
        if error is not None:
            delay = _retry_delay(message.attempts + 1)
            log.error(
                "task %s failed; outbox_dispatch runs it again after %s",
                message,
                delay,
                exc_info=error,
            )
            _failure_record(message, error, retry_in=delay)
        return error is None
    if time.monotonic() < _broker_down_until:
        waiting.update(available_at=timezone.now())
        return False
    with transaction.atomic(), _broker_connection() as connection:
        message = waiting.select_for_update(skip_locked=True).first()
        if message is None:  # the dispatcher has it, or had it
            return False
        error = _publish(message, connection)
        if error is not None:
            _broker_down_until = time.monotonic() + BROKER_PAUSE_SECONDS
            log.warning(
                "could not queue %s (%s: %s); outbox_dispatch will publish it",
                message,
                type(error).__name__,
                error,
            )
            _failure_record(message, error, retry_in=datetime.timedelta(0))
    return error is None


@dataclass
class DispatchReport:
    published: int = 0
    failed: int = 0
    broker_error: str = ""

    @property
    def broker_unreachable(self) -> bool:
        return bool(self.broker_error)


def outbox_dispatch(*, limit: int = 100) -> DispatchReport:
    """Publish up to ``limit`` waiting messages whose time has come, oldest first.
    Stops at the first publish the broker refuses (the rest would fail the same
    way: the caller waits and tries again); a message that fails on its own (an
    unknown task, or in-process a task that raised) waits a little longer each
    time."""
    report = DispatchReport()
    due = OutboxMessage.objects.filter(
        dispatched_at__isnull=True, available_at__lte=timezone.now()
    ).order_by("available_at", "id")
    if _eager():
        for message in list(due[:limit]):
            error = _publish(message, None)
            if error is None:
                report.published += 1
            else:
                log.error("task %s failed", message, exc_info=error)
                _failure_record(message, error, retry_in=_retry_delay(message.attempts + 1))
                report.failed += 1
        return report
    with transaction.atomic(), _broker_connection() as connection:
        broker_errors = _broker_errors(connection)
        for message in list(due.select_for_update(skip_locked=True)[:limit]):
            error = _publish(message, connection)
            if error is None:
                report.published += 1
            elif isinstance(error, broker_errors):
                _failure_record(message, error, retry_in=None)
                report.broker_error = f"{type(error).__name__}: {error}"
                break
            else:
                log.error("could not queue %s", message, exc_info=error)
                _failure_record(message, error, retry_in=_retry_delay(message.attempts + 1))
                report.failed += 1
    return report


def outbox_waiting() -> int:
    """How many messages are not dispatched yet."""
    return OutboxMessage.objects.filter(dispatched_at__isnull=True).count()


def message_reopen_after_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: Any = (),
    kwargs: Any = None,
    **_: Any,
) -> None:
    """Celery's ``task_failure`` signal: a task published from the outbox gave up on
    an error that passes (its retries ran out while the mail server or the database
    was down). Its row waits for the dispatcher again, ``REOPEN_SECONDS`` later, so
    the work is delayed and not dropped; after ``MAX_ATTEMPTS`` publishes it is left
    for a person to look at."""
    from config.celery import TRANSIENT_ERRORS

    if not task_id or not task_id.startswith(TASK_ID_PREFIX):
        return
    if not isinstance(exception, TRANSIENT_ERRORS):
        return
    # The task may have failed because its connection broke: never reuse that one
    # (outside a transaction; a worker runs its tasks in autocommit).
    if database.connection is not None and not database.in_atomic_block:
        database.close_if_unusable_or_obsolete()
    try:
        message_id = int(task_id.removeprefix(TASK_ID_PREFIX))
        reopened = OutboxMessage.objects.filter(
            pk=message_id, dispatched_at__isnull=False, attempts__lt=MAX_ATTEMPTS
        ).update(
            dispatched_at=None,
            available_at=timezone.now() + datetime.timedelta(seconds=REOPEN_SECONDS),
            last_error=f"{type(exception).__name__}: {exception}"[:2000],
        )
    except (ValueError, DatabaseError):
        # The database is still down: keep the work alive in the broker instead,
        # which just handed this task over and so is up.
        log.exception("could not reopen outbox message of task %s", task_id)
        if sender is not None:
            try:
                sender.apply_async(
                    args=args, kwargs=kwargs, task_id=task_id, countdown=REOPEN_SECONDS
                )
            except Exception:
                log.exception("could not publish task %s again either", task_id)
            else:
                log.warning("task %s gave up; published again in %s s", task_id, REOPEN_SECONDS)
        return
    if reopened:
        log.warning("task %s gave up; published again in %s s", task_id, REOPEN_SECONDS)
    else:
        log.error("task %s gave up for good: %s", task_id, exception)


def delivery_once(*, key: str, send: Callable[[], object]) -> bool:
    """Call ``send`` unless a delivery of the same task (or another task) already
    claimed ``key``; returns whether it sent. A failed send releases the claim, so
    that the retry sends. A worker killed between the claim and the send loses that
    one message: a second copy of an email is the worse mistake here."""
    try:
        with transaction.atomic():
            DeliveryClaim.objects.create(key=key)
    except IntegrityError:
        return False
    try:
        send()
    except Exception:
        DeliveryClaim.objects.filter(key=key).delete()
        raise
    return True


def outbox_purge(*, before: datetime.datetime, dry_run: bool = False) -> int:
    """Remove messages dispatched before ``before`` and claims made before it;
    returns how many rows (or would, with ``dry_run``)."""
    messages = OutboxMessage.objects.filter(dispatched_at__lt=before)
    claims = DeliveryClaim.objects.filter(created_at__lt=before)
    if dry_run:
        return messages.count() + claims.count()
    return messages.delete()[0] + claims.delete()[0]
