"""python manage.py outbox_dispatch [--once] [--batch N] [--interval S] [--max-wait S]

Publishes the outbox's waiting tasks to the broker (see ``outbox.services``). Runs as
a process of its own, next to the Celery workers and independent of beat: it polls
the database, so it keeps running, and keeps every task, while the broker is down,
waiting a little longer after each refusal (up to ``--max-wait`` seconds). It stops
after the batch in hand on SIGTERM or SIGINT. Several may run at once on different
machines: each row is locked by one of them (``SKIP LOCKED``).

``--once`` publishes everything due and exits (tests, or cron instead of the loop);
it fails when the broker could not be reached.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections

from outbox.services import DispatchReport, outbox_dispatch, outbox_waiting

log = logging.getLogger("outbox")


class Command(BaseCommand):
    help = "Publish the outbox's waiting tasks to the broker, in a loop or --once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Publish what is due, then exit.")
        parser.add_argument("--batch", type=int, default=100, help="Rows locked at a time.")
        parser.add_argument(
            "--interval", type=float, default=1.0, help="Seconds between polls when idle."
        )
        parser.add_argument(
            "--max-wait",
            type=float,
            default=60.0,
            help="Longest pause between tries while the broker or database is down.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["once"]:
            self._once(options["batch"])
            return
        self._loop(options["batch"], options["interval"], options["max_wait"])

    def _once(self, batch: int) -> None:
        published = failed = 0
        while True:
            report = outbox_dispatch(limit=batch)
            published += report.published
            failed += report.failed
            if report.broker_unreachable:
                raise CommandError(
                    f"The broker is unreachable ({report.broker_error}); published "
                    f"{published}, {outbox_waiting()} tasks wait in the outbox."
                )
            if report.published + report.failed < batch:
                break
        self.stdout.write(
            f"Published {published} tasks; {failed} failed and wait; "
            f"{outbox_waiting()} not dispatched."
        )

    def _loop(self, batch: int, interval: float, max_wait: float) -> None:
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        log.info("outbox_dispatch: started (batch %s, every %s s)", batch, interval)
        wait = interval
        down = ""
        while not stop.is_set():
            try:
                report = outbox_dispatch(limit=batch)
                trouble = report.broker_error and f"broker: {report.broker_error}"
            except DatabaseError as error:
                # The database restarts or cannot be reached: drop the connection
                # and try again later.
                connections.close_all()
                report, trouble = DispatchReport(), f"database: {error}"
            if trouble:
                if not down:
                    log.warning("outbox_dispatch: waiting (%s)", trouble)
                down = trouble
                wait = min(max(wait * 2, interval), max_wait)
                stop.wait(wait)
                continue
            if down:
                log.info("outbox_dispatch: publishing again")
                down = ""
            wait = interval
            if report.published:
                log.info("outbox_dispatch: published %s tasks", report.published)
            if report.published + report.failed < batch:
                stop.wait(interval)
        log.info("outbox_dispatch: stopped")
