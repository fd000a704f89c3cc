"""What the fault tests start, stop and kill: a Redis of their own, Celery workers and
the outbox dispatcher as subprocesses on 127.0.0.1 against the test database, and a
PostgreSQL cluster of their own to restart. Every wait is bounded; everything started
is stopped when the test ends, however it ends (see ``conftest.py``)."""

from __future__ import annotations

import contextlib
import email
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from urllib.parse import urlsplit

import redis
from django.db import connections

from tests.postgres_cluster import _as_server_user, _bin_dir, postgres_cluster

ROOT = Path(__file__).resolve().parents[2]
WORKER_SETTINGS = "tests.faults.worker_settings"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Poll ``condition`` until it holds; fail the test after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not so after {seconds} s")
        time.sleep(0.2)


class RedisServer:
    """A Redis on a free port, without persistence: stopped, it forgets."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; `make test` installs it")
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                *("--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no", "--dir", str(self.folder)),
                *("--logfile", str(self.folder / "redis.log")),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: port_open(self.port), "Redis listening", seconds=20)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def tasks_held(self) -> int:
        """Messages waiting in the default queue or taken and not acknowledged."""
        client = redis.Redis(port=self.port, socket_timeout=5)
        try:
            return int(client.llen("celery")) + int(client.hlen("unacked"))
        finally:
            client.close()


class Service:
    """A Django command or a Celery worker in a process group of its own, with its
    output in ``<folder>/<name>.log``."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], folder: Path) -> None:
        self.name = name
        self.log = folder / f"{name}.log"
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL to the whole group (a Celery worker and its pool processes)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self, seconds: float = 20) -> int:
        """SIGTERM, then SIGKILL if it has not ended in ``seconds``; the exit code."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.process.returncode)


def service_environment(*, broker_url: str, mail: Path, private: Path, **extra: str) -> dict:
    """What a worker or the dispatcher needs to share this test's database, broker,
    mail folder and private files."""
    database = connections["default"].settings_dict
    user = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": WORKER_SETTINGS,
        "DATABASE_URL": (
            f"postgres://{user}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
        ),
        "CELERY_BROKER_URL": broker_url,
        "EMAIL_URL": "filemail://",
        "EMAIL_FILE_PATH": str(mail),
        "PRIVATE_MEDIA_ROOT": str(private),
        "LOG_LEVEL": "INFO",
        **extra,
    }


def celery_worker_command(name: str) -> list[str]:
    return [
        sys.executable,
        *("-m", "celery", "-A", "config", "worker", "-l", "INFO"),
        *("--pool", "prefork", "--concurrency", "1", "-n", f"{name}@faults"),
        *("--without-mingle", "--without-gossip", "--without-heartbeat"),
    ]


def dispatcher_command() -> list[str]:
    return [
        sys.executable,
        *("manage.py", "outbox_dispatch", "--interval", "0.2", "--max-wait", "1"),
    ]


def messages_sent(mail: Path) -> list[Message]:
    """Every message the file email backend wrote into ``mail``."""
    separator = "\n" + "-" * 79 + "\n"
    found = []
    for path in sorted(mail.glob("*.log")):
        for chunk in path.read_text().split(separator):
            if chunk.strip():
                found.append(email.message_from_string(chunk.lstrip("\n")))
    return found


def confirmation_files(private: Path) -> list[Path]:
    return sorted((private / "confirmations").rglob("*.pdf"))


@contextlib.contextmanager
def database_copy_on_own_cluster() -> Iterator[Callable[[], None]]:
    """A PostgreSQL cluster of the test's own, holding a copy of the test database,
    with the default connection pointed at it; yields a function that restarts that
    cluster. The shared test cluster is never restarted: other tests use it."""
    bin_dir = _bin_dir()
    connection = connections["default"]
    source = dict(connection.settings_dict)
    with postgres_cluster() as url:
        target = urlsplit(url)
        host, port, name = target.hostname, str(target.port), target.path.lstrip("/")
        dump = subprocess.run(
            [
                str(bin_dir / "pg_dump"),
                *("-h", source["HOST"], "-p", str(source["PORT"]), "-U", source["USER"]),
                *("--no-owner", "--no-privileges", source["NAME"]),
            ],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(
            [
                str(bin_dir / "psql"),
                *("-h", str(host), "-p", port, "-U", "postgres", "-q", "-v", "ON_ERROR_STOP=1"),
                name,
            ],
            input=dump,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        data = subprocess.run(
            [
                str(bin_dir / "psql"),
                *("-h", str(host), "-p", port, "-U", "postgres", "-tA"),
                *("-c", "SHOW data_directory", name),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

        def restart() -> None:
            subprocess.run(
                _as_server_user(
                    [
                        str(bin_dir / "pg_ctl"),
                        *("-D", data, "-l", str(Path(data).parent / "server.log")),
                        *("-m", "fast", "-w", "restart"),
                    ]
                ),
                check=True,
                stdout=subprocess.DEVNULL,
                cwd=Path(data).parent,
                timeout=60,
            )

        connection.close()
        connection.settings_dict.update(HOST=host, PORT=port, NAME=name)
        try:
            yield restart
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(source)
