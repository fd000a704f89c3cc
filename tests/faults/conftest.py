"""Fixtures of the fault tests: a Redis of their own, and the workers and dispatcher
they start, all stopped at the end of the test before its database is emptied."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.processes import (
    RedisServer,
    Service,
    celery_worker_command,
    dispatcher_command,
    service_environment,
    wait_for,
)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mail_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mail"
    folder.mkdir()
    return folder


@pytest.fixture
def services(
    transactional_db, redis_server: RedisServer, mail_folder: Path, private_files, tmp_path: Path
) -> Iterator[Callable[..., Service]]:
    """``services("worker-1", **env)`` starts a Celery worker (ready when it returns),
    ``services("dispatcher", kind="dispatcher")`` the outbox dispatcher."""
    started: list[Service] = []

    def start(name: str, *, kind: str = "worker", **env: str) -> Service:
        command = dispatcher_command() if kind == "dispatcher" else celery_worker_command(name)
        environment = service_environment(
            broker_url=redis_server.url, mail=mail_folder, private=Path(private_files), **env
        )
        service = Service(name, command, environment, tmp_path)
        started.append(service)
        ready = "outbox_dispatch: started" if kind == "dispatcher" else " ready."
        wait_for(
            lambda: ready in service.output() or not service.alive,
            f"{name} starting",
            seconds=90,
        )
        assert service.alive, service.output()[-3000:]
        return service

    try:
        yield start
    finally:
        for service in reversed(started):
            service.stop()
