"""Point this process's Celery app at a real broker for a test, and back."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from config.celery import app
from outbox import services


def port_closed() -> int:
    """A port on 127.0.0.1 where nothing listens (a broker that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def broker_at(url: str) -> Iterator[None]:
    """Tasks are published to ``url`` instead of running in-process."""
    conf = app.conf
    saved = conf.task_always_eager, conf.broker_url
    conf.task_always_eager, conf.broker_url = False, url
    services._broker_down_until = 0.0
    try:
        yield
    finally:
        conf.task_always_eager, conf.broker_url = saved
        services._broker_down_until = 0.0
