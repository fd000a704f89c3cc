"""A production-like stack on 127.0.0.1, from installed binaries.

    python ops/stack.py start     # PostgreSQL, Redis, gunicorn, a Celery worker and beat,
                                  # the outbox dispatcher
    python ops/stack.py stop      # stops them all (the data stays for the next start)
    python ops/stack.py status
    python ops/stack.py env       # the environment the stack's processes run with

``make stack`` installs what is missing and starts it with the demo district loaded;
``make stack-stop`` stops it. Everything the stack writes lives under
``var/stack/`` except PostgreSQL's data folder, which must belong to the
``postgres`` system user when run as root and so lives in the system's temporary
folder (its path is kept in ``var/stack/state.json``).

The web server runs with DEBUG off and static files collected, the broker is a
real Redis, e-mail goes to files under ``var/stack/mail``, payments use the local
TEST checkout. Ports: ``STACK_WEB_PORT`` (8000), ``STACK_PG_PORT`` (54329),
``STACK_REDIS_PORT`` (63790); ``STACK_WEB_WORKERS`` (3) gunicorn workers.
``STACK_DIR`` moves ``var/stack/`` elsewhere and ``STACK_SETTINGS_MODULE`` names
another settings module: ``bench/load.py`` runs a second stack of its own that way.
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STACK = Path(os.environ.get("STACK_DIR") or ROOT / "var" / "stack")
STATE = STACK / "state.json"
BIN = Path(sys.executable).parent
WEB_PORT = int(os.environ.get("STACK_WEB_PORT", "8000"))
PG_PORT = int(os.environ.get("STACK_PG_PORT", "54329"))
REDIS_PORT = int(os.environ.get("STACK_REDIS_PORT", "63790"))
WEB_WORKERS = int(os.environ.get("STACK_WEB_WORKERS", "3"))


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        sys.exit("PostgreSQL server binaries not found: run `make stack`, which installs them")
    return Path(found[-1]).parent


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _state() -> dict[str, str]:
    if STATE.exists():
        return dict(json.loads(STATE.read_text()))
    state = {
        "pg_data": tempfile.mkdtemp(prefix="reregistration-stack-pg-"),
        "secret_key": secrets.token_urlsafe(50),
    }
    STACK.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps(state, indent=2))
    return state


def environment() -> dict[str, str]:
    state = _state()
    return {
        "DJANGO_SETTINGS_MODULE": os.environ.get("STACK_SETTINGS_MODULE", "config.settings"),
        "DEBUG": "false",
        "SECRET_KEY": state["secret_key"],
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": f"http://127.0.0.1:{WEB_PORT}",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{PG_PORT}/reregistration",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
        "CACHE_URL": f"redis://127.0.0.1:{REDIS_PORT}/1",
        "EMAIL_URL": "filemail://",
        "EMAIL_FILE_PATH": str(STACK / "mail"),
        "STATIC_ROOT": str(STACK / "static"),
    }


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(port: int, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not _port_open(port):
        if time.monotonic() > deadline:
            sys.exit(f"{what} did not start on 127.0.0.1:{port}; see {STACK}/*.log")
        time.sleep(0.2)


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(command, check=True, cwd=ROOT, env=env)


def _postgres_start(state: dict[str, str]) -> None:
    pg = _pg_bin()
    data = Path(state["pg_data"])
    # The system's temporary folder may have been emptied since (a reboot): start afresh.
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    if not (data / "PG_VERSION").exists():
        _run(
            _as_postgres(
                [
                    str(pg / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            )
        )
    if _port_open(PG_PORT):
        return
    log = data / "server.log"
    _run(
        _as_postgres(
            [
                str(pg / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                f"-h 127.0.0.1 -p {PG_PORT} -k {data} -c max_connections=100",
                "-w",
                "start",
            ]
        )
    )
    _wait_for(PG_PORT, "PostgreSQL")
    exists = subprocess.run(
        [
            str(pg / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(PG_PORT),
            "-U",
            "postgres",
            "-tAc",
            "SELECT 1 FROM pg_database WHERE datname = 'reregistration'",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if exists != "1":
        _run(
            [
                str(pg / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(PG_PORT),
                "-U",
                "postgres",
                "reregistration",
            ]
        )


def _redis_start() -> None:
    if _port_open(REDIS_PORT):
        return
    redis = shutil.which("redis-server")
    if redis is None:
        sys.exit("redis-server not found: run `make stack`, which installs it")
    (STACK / "redis").mkdir(parents=True, exist_ok=True)
    _run(
        [
            redis,
            "--bind",
            "127.0.0.1",
            "--port",
            str(REDIS_PORT),
            "--daemonize",
            "yes",
            "--dir",
            str(STACK / "redis"),
            "--pidfile",
            str(STACK / "redis.pid"),
            "--logfile",
            str(STACK / "redis.log"),
            "--save",
            "60 1",
            "--appendonly",
            "yes",
        ]
    )
    _wait_for(REDIS_PORT, "Redis")


def _daemon(name: str, command: list[str], env: dict[str, str]) -> None:
    pidfile = STACK / f"{name}.pid"
    if _alive(pidfile):
        return
    log = (STACK / f"{name}.log").open("ab")
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    pidfile.write_text(str(process.pid))


def _alive(pidfile: Path) -> bool:
    if not pidfile.exists():
        return False
    try:
        os.kill(int(pidfile.read_text()), 0)
    except (ValueError, ProcessLookupError, PermissionError):
        return False
    return True


def start() -> None:
    state = _state()
    for folder in ("mail", "static"):
        (STACK / folder).mkdir(parents=True, exist_ok=True)
    _postgres_start(state)
    _redis_start()
    env = {**os.environ, **environment()}
    python = str(BIN / "python")
    _run([python, "manage.py", "migrate", "--noinput", "-v0"], env)
    _run([python, "manage.py", "collectstatic", "--noinput", "-v0"], env)
    _run([python, "manage.py", "seed_demo"], env)
    _daemon(
        "gunicorn",
        [
            str(BIN / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{WEB_PORT}",
            "--workers",
            str(WEB_WORKERS),
            "--timeout",
            "60",
            "--graceful-timeout",
            "20",
            "--max-requests",
            "2000",
            "--max-requests-jitter",
            "200",
        ],
        env,
    )
    _daemon("celery-worker", [str(BIN / "celery"), "-A", "config", "worker", "-l", "info"], env)
    # Publishes the tasks a web process could not hand to Redis (outbox.services).
    _daemon("outbox-dispatch", [python, "manage.py", "outbox_dispatch"], env)
    _daemon(
        "celery-beat",
        [
            str(BIN / "celery"),
            "-A",
            "config",
            "beat",
            "-l",
            "info",
            "--schedule",
            str(STACK / "beat-schedule"),
        ],
        env,
    )
    _wait_for(WEB_PORT, "gunicorn")
    print(
        f"The stack is up: http://127.0.0.1:{WEB_PORT} (PostgreSQL :{PG_PORT}, Redis :{REDIS_PORT})"
    )


def _stop_daemon(name: str, seconds: float = 20) -> None:
    pidfile = STACK / f"{name}.pid"
    if not _alive(pidfile):
        pidfile.unlink(missing_ok=True)
        return
    pid = int(pidfile.read_text())
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while _alive(pidfile) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pidfile):
        os.killpg(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)


def stop() -> None:
    for name in ("celery-beat", "outbox-dispatch", "celery-worker", "gunicorn"):
        _stop_daemon(name)
    redis_cli = shutil.which("redis-cli")
    if redis_cli and _port_open(REDIS_PORT):
        subprocess.run(
            [redis_cli, "-p", str(REDIS_PORT), "shutdown"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    if STATE.exists():
        data = Path(_state()["pg_data"])
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_postgres(
                    [str(_pg_bin() / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]
                ),
                check=False,
                stdout=subprocess.DEVNULL,
            )
    print("The stack is stopped.")


def status() -> int:
    rows = [
        ("PostgreSQL", _port_open(PG_PORT)),
        ("Redis", _port_open(REDIS_PORT)),
        ("gunicorn", _port_open(WEB_PORT)),
        ("Celery worker", _alive(STACK / "celery-worker.pid")),
        ("Celery beat", _alive(STACK / "celery-beat.pid")),
        ("outbox dispatch", _alive(STACK / "outbox-dispatch.pid")),
    ]
    for name, up in rows:
        print(f"{name:16} {'up' if up else 'down'}")
    return 0 if all(up for _name, up in rows) else 1


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "start":
        start()
    elif command == "stop":
        stop()
    elif command == "status":
        return status()
    elif command == "env":
        for name, value in environment().items():
            print(f"{name}={value}")
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
