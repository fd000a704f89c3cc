"""Activation letters per second: the in-process pipeline against one-line pages, and
real Celery workers, per core, against bare WeasyPrint.

``letters``: the real pipeline on a throwaway SQLite database: letters split into
chunks, each chunk sealed, queued and rendered by the (in-process) Celery task into
storage, then joined into one PDF. The baseline, measured in the same process, is
WeasyPrint rendering the same number of minimal one-line pages in chunks of the same
size. Memory is sampled after every chunk: the resident size must not grow with the
run.

``letters_workers``: the same letters rendered as in production, on 127.0.0.1: a
throwaway PostgreSQL cluster, a Redis of its own without persistence, and one
``celery worker`` with one prefork process per CPU core (``--concurrency`` =
``os.cpu_count()``, prefetch as the settings say). ``letter_run_start`` queues the
chunks, the workers render them into the private storage, ``letter_run_join`` joins
them; the time runs from the start to the joined PDF, whose pages are counted.

value    = letters/s ÷ worker processes: what the pipeline gets out of each core
baseline = bare WeasyPrint on one core: the measuring process, with no database, no
           Celery, no storage and no join, renders the same letters into documents of
           the same chunk size (the same page HTML that ``documents.letters`` builds,
           made before the clock starts) through ``documents.rendering.pdf_from_html``,
           one after the other: letters/s. It is what one core can do at best, so the
           ratio says what share of each core the pipeline keeps
ratio    = value ÷ baseline (the goal: at least 0.6)

The details say where the rest goes: the seconds the tasks themselves ran (from the
worker's log) against the render window, the join, the peak resident size of the
worker's processes (read from /proc while they run). Every server and worker is
stopped at the end, however it ends, and the whole figure has a time limit.

    python bench/letters.py [--quick] [--only letters_workers] [--letters N]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _harness import child_environment, migrated

ROOT = Path(__file__).resolve().parents[1]
# How often ``letter_run_join`` looks whether every chunk is rendered: short, so that
# the wait adds little to the measured time.
JOIN_POLL_SECONDS = 0.1


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def sample_letters(count: int) -> list[Any]:
    """``count`` letters to made-up people, in English and Spanish, some to students."""
    from documents.letters import Letter
    from registration.activation import code_display, code_generate

    return [
        Letter(
            kind="guardian" if n % 7 else "student",
            sourced_id=f"par-{n:06d}",
            name=("María José Núñez-Peña", "Siobhan O'Brien", "Thị Hoa Nguyễn")[n % 3],
            street1=f"{100 + n} Alameda de las Pulgas",
            street2="Apt 4" if n % 5 == 0 else "",
            city="Riverside",
            state="CA",
            postal_code=f"{95201 + n % 7}",
            language="es" if n % 4 == 0 else "en",
            code=code_display(code_generate()),
            expires_on=datetime.date(2027, 2, 26),
            children=["Sofía", "Mateo"][: 1 + n % 2],
            household=f"hh-{n:06d}",
        )
        for n in range(count)
    ]


def measure(count: int, workdir: Path) -> dict[str, object]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from weasyprint import HTML

    from documents import services as document_services

    migrated()
    settings.MEDIA_ROOT = str(workdir / "media")
    chunk = settings.ACTIVATION_LETTER_CHUNK
    letters = sample_letters(count)

    # Warm up both paths (fonts, stylesheets) so neither pays it in the timing.
    document_services.letters_pdf(letters[:2])
    HTML(string="<p>warm</p>").write_pdf()

    samples: list[float] = []
    real_render = document_services.letter_chunk_render

    def sampled_render(**kwargs: object) -> None:
        real_render(**kwargs)  # type: ignore[arg-type]
        samples.append(rss_mib())

    document_services.letter_chunk_render = sampled_render  # type: ignore[assignment]
    from documents import tasks

    tasks.letter_chunk_render = sampled_render  # type: ignore[assignment]

    started = time.perf_counter()
    run = document_services.letter_run_start(letters=letters)
    joined = document_services.letter_run_join(run=run, out=workdir / "letters.pdf")
    pages = joined.pages
    letters_seconds = time.perf_counter() - started
    assert pages == count, (pages, count)

    started = time.perf_counter()
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        body = "".join(
            f'<p style="page-break-after: always">Page {start + i + 1}</p>' for i in range(size)
        )
        HTML(string=f"<html><body>{body}</body></html>").write_pdf()
    baseline_seconds = time.perf_counter() - started

    return {
        "size": count,
        "value": round(count / letters_seconds, 1),
        "baseline": round(count / baseline_seconds, 1),
        "unit": "letters/s",
        "ratio": round(baseline_seconds / letters_seconds, 3),
        "chunk": chunk,
        "letters_seconds": round(letters_seconds, 2),
        "baseline_seconds": round(baseline_seconds, 2),
        "rss_after_first_chunk_mib": round(samples[0], 1),
        "rss_after_middle_chunk_mib": round(samples[len(samples) // 2], 1),
        "rss_after_last_chunk_mib": round(samples[-1], 1),
        "rss_per_chunk_mib": [round(sample) for sample in samples],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "pdf_bytes": sum(path.stat().st_size for path in joined.files),
        "files": len(joined.files),
    }


def letters_figure(count: int) -> dict[str, object]:
    """The in-process pipeline against one-line pages (``measure``, in a child)."""
    with tempfile.TemporaryDirectory() as temporary:
        env = dict(
            os.environ,
            DATABASE_URL=f"sqlite:///{Path(temporary) / 'bench.sqlite3'}",
            DJANGO_SETTINGS_MODULE="config.settings",
        )
        env.pop("CELERY_BROKER_URL", None)
        result = subprocess.run(
            [
                sys.executable,
                __file__,
                "--measure",
                "--letters",
                str(count),
                "--workdir",
                temporary,
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    figure = json.loads(result.stdout.strip().splitlines()[-1])
    return {"name": "letters", "database": "", **figure}


# -- real Celery workers --------------------------------------------------------------


def measure_workers(count: int, workdir: Path, workers: int, timeout: float) -> dict[str, object]:
    """In a process whose database is migrated and whose broker the workers read:
    the letters through the workers, then bare WeasyPrint on the same letters."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db.models import Max
    from django.utils import timezone
    from pypdf import PdfReader

    from documents.letters import letters_html
    from documents.rendering import pdf_from_html
    from documents.services import letter_run_join, letter_run_start

    assert not settings.CELERY_TASK_ALWAYS_EAGER, "the letters must go to the workers"
    deadline = time.monotonic() + timeout
    chunk = settings.ACTIVATION_LETTER_CHUNK
    letters = sample_letters(count)
    today = datetime.date.today()

    # Warm up each worker process (fonts, stylesheets, its first queries): one small
    # run per process, queued at once so that each takes one.
    warm_ups = [letter_run_start(letters=letters[:2]) for _ in range(workers)]
    for warm_up in warm_ups:
        letter_run_join(
            run=warm_up,
            out=workdir / "warm-up.pdf",
            timeout=deadline - time.monotonic(),
            poll_seconds=JOIN_POLL_SECONDS,
        )

    out = workdir / "letters.pdf"
    started_at = timezone.now()
    started = time.perf_counter()
    run = letter_run_start(letters=letters)
    queued = time.perf_counter()
    joined_files = letter_run_join(
        run=run, out=out, timeout=deadline - time.monotonic(), poll_seconds=JOIN_POLL_SECONDS
    )
    pages = joined_files.pages
    joined = time.perf_counter()
    letters_seconds = joined - started
    last_rendered = run.chunks.aggregate(last=Max("rendered_at"))["last"]
    rendered_seconds = (last_rendered - started_at).total_seconds()
    pages_in_file = len(PdfReader(out).pages)
    assert pages == pages_in_file == count, (pages, pages_in_file, count)

    # Bare WeasyPrint: each chunk's HTML is made before its clock starts.
    pdf_from_html(letters_html(letters[:2], today=today))
    baseline_seconds = baseline_cpu_seconds = html_seconds = 0.0
    for start in range(0, count, chunk):
        made = time.perf_counter()
        html = letters_html(letters[start : start + chunk], today=today)
        rendering, rendering_cpu = time.perf_counter(), time.process_time()
        pdf_from_html(html)
        baseline_seconds += time.perf_counter() - rendering
        baseline_cpu_seconds += time.process_time() - rendering_cpu
        html_seconds += rendering - made

    value = count / letters_seconds / workers
    baseline = count / baseline_seconds
    return {
        "size": count,
        "value": round(value, 1),
        "baseline": round(baseline, 1),
        "unit": "letters/s/core",
        "ratio": round(value / baseline, 3),
        "workers": workers,
        "chunk": chunk,
        "chunks": run.chunks.count(),
        "pages": pages_in_file,
        "letters_per_second": round(count / letters_seconds, 1),
        "letters_seconds": round(letters_seconds, 2),
        "baseline_seconds": round(baseline_seconds, 2),
        "start_seconds": round(queued - started, 2),
        "rendered_seconds": round(rendered_seconds, 2),
        "join_seconds": round(letters_seconds - rendered_seconds, 2),
        "baseline_cpu_seconds": round(baseline_cpu_seconds, 2),
        "baseline_html_seconds": round(html_seconds, 2),
        "pdf_bytes": sum(path.stat().st_size for path in joined_files.files),
        "warm_up_tasks": workers,
    }


def worker_command(concurrency: int) -> list[str]:
    """One Celery worker as production runs it (``ops/stack.py``), with ``concurrency``
    prefork processes and the prefetch the settings give."""
    return [
        sys.executable,
        *("-m", "celery", "-A", "config", "worker", "-l", "INFO"),
        *("--pool", "prefork", "--concurrency", str(concurrency), "-n", "letters@bench"),
        *("--without-mingle", "--without-gossip", "--without-heartbeat"),
    ]


class WorkerProcesses:
    """The peak resident size and the CPU time of each process of a process group (a
    Celery worker and its pool), read from /proc twice a second while it runs."""

    def __init__(self, group: int) -> None:
        self.group = group
        self.peak_kib: dict[int, int] = {}
        self.cpu_seconds: dict[int, float] = {}
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stopped.set()
            self._thread.join(timeout=10)

    def sample(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError, IndexError):
                # After the command's name: state, parent, process group, ... and the
                # user and system CPU time in clock ticks (fields 14 and 15).
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) != self.group:
                    continue
                pid = int(entry.name)
                self.cpu_seconds[pid] = (int(fields[11]) + int(fields[12])) / tick
                for line in Path(entry.path, "status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = int(line.split()[1])
                        self.peak_kib[pid] = max(self.peak_kib.get(pid, 0), peak)

    def _sample_until_stopped(self) -> None:
        while not self._stopped.is_set():
            self.sample()
            self._stopped.wait(0.5)


TASK_SUCCEEDED = re.compile(r"letter_chunk_render_task\[[^\]]+\] succeeded in ([0-9.]+)s")


@contextlib.contextmanager
def stopped_on_sigterm() -> Iterator[None]:
    """SIGTERM ends the benchmark as Ctrl-C does: through every ``finally``, so that
    what it started is stopped."""

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(f"stopped by signal {signum}")

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def letters_workers_figure(count: int) -> dict[str, object]:
    """PostgreSQL, Redis and one worker with a process per core, all on 127.0.0.1 and
    all stopped at the end; the measuring process in between (``measure_workers``)."""
    sys.path.insert(0, str(ROOT))
    from tests.faults.processes import RedisServer, Service, wait_for
    from tests.postgres_cluster import postgres_cluster

    workers = os.cpu_count() or 1
    load_before = round(os.getloadavg()[0], 2)
    # Everything, servers included, must be over by then: two minutes for the servers,
    # and for the workers, the join and the baseline 0.15 s a letter, three times what
    # they take on this machine's two cores when nothing else runs.
    deadline = time.monotonic() + 120 + count * 0.15

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("letters_workers ran out of time")
        return left

    with (
        stopped_on_sigterm(),
        tempfile.TemporaryDirectory() as folder,
        postgres_cluster() as database_url,
    ):
        temporary = Path(folder)
        redis = RedisServer(temporary)
        worker: Service | None = None
        processes: WorkerProcesses | None = None
        try:
            redis.start()
            env = {**child_environment(database_url, temporary), "CELERY_BROKER_URL": redis.url}
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
                env=env,
                cwd=ROOT,
                check=True,
                capture_output=True,
                timeout=remaining(),
            )
            worker = Service("celery-worker", worker_command(workers), env, temporary)
            started = worker
            wait_for(
                lambda: " ready." in started.output() or not started.alive,
                "the Celery worker starting",
                seconds=min(90, remaining()),
            )
            if not worker.alive:
                raise RuntimeError(worker.output()[-3000:])
            processes = WorkerProcesses(worker.process.pid)
            processes.sample()
            cpu_before = dict(processes.cpu_seconds)
            processes.start()
            result = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--measure-workers",
                    *("--letters", str(count), "--workers", str(workers)),
                    *("--workdir", str(temporary), "--timeout", str(remaining() - 30)),
                ],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
                timeout=remaining(),
            )
            processes.stop()
            processes.sample()  # the processes are still there: their final figures
            if result.returncode != 0:
                raise RuntimeError(result.stderr[-3000:] + worker.output()[-2000:])
            figure: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        finally:
            if processes is not None:
                processes.stop()
            if worker is not None:
                worker.stop()
            redis.stop()
        log = worker.output()

    task_seconds = [float(seconds) for seconds in TASK_SUCCEEDED.findall(log)]
    task_seconds = task_seconds[figure.pop("warm_up_tasks") :]
    assert len(task_seconds) == figure["chunks"], (len(task_seconds), figure["chunks"])
    busy = sum(task_seconds)
    main_pid = worker.process.pid
    pool = [kib for pid, kib in processes.peak_kib.items() if pid != main_pid]
    main_kib = processes.peak_kib.get(main_pid, 0)
    cpu = {
        pid: seconds - cpu_before.get(pid, 0.0) for pid, seconds in processes.cpu_seconds.items()
    }
    pool_cpu = sum(seconds for pid, seconds in cpu.items() if pid != main_pid)
    return {
        "name": "letters_workers",
        "database": "postgresql",
        **figure,
        # The seconds the tasks ran (decrypting, the templates, WeasyPrint, the
        # storage, the database), from the worker's log, and the letters/s inside them.
        "task_seconds": round(busy, 2),
        "task_letters_per_second": round(count / busy, 1),
        # The share of the render window the worker processes spent in tasks.
        "busy_share": round(busy / (workers * figure["rendered_seconds"]), 3),
        # CPU the pool processes got (the warm-up included) against the seconds their
        # tasks ran: below 1, other processes had the cores part of the time.
        "pool_cpu_seconds": round(pool_cpu, 2),
        "pool_cpu_share": round(pool_cpu / busy, 3),
        # The ratio in CPU time rather than seconds: about what it would be on cores
        # nothing else uses, the join (after the last chunk) left aside.
        "cpu_ratio": round(figure["baseline_cpu_seconds"] / pool_cpu, 3),
        "worker_main_cpu_seconds": round(cpu.get(main_pid, 0.0), 2),
        "load_average_before": load_before,
        "worker_processes_seen": len(pool),
        "peak_rss_per_worker_process_mib": round(max(pool, default=0) / 1024, 1),
        "peak_rss_worker_main_mib": round(main_kib / 1024, 1),
        "peak_rss_workers_total_mib": round((sum(pool) + main_kib) / 1024, 1),
    }


def run(*, quick: bool, only: str = "", letters: int = 0) -> list[dict[str, object]]:
    """Every figure of this benchmark, for bench/run.py."""
    figures = []
    if only in ("", "letters"):
        figures.append(letters_figure(letters or (100 if quick else 5_000)))
    if only in ("", "letters_workers"):
        figures.append(letters_workers_figure(letters or (100 if quick else 1_500)))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--letters", type=int, default=0, help="instead of the run's sizes")
    parser.add_argument("--only", choices=("letters", "letters_workers"), default="")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure-workers", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.measure:
        print(json.dumps(measure(args.letters, args.workdir)))
    elif args.measure_workers:
        print(json.dumps(measure_workers(args.letters, args.workdir, args.workers, args.timeout)))
    else:
        for figure in run(quick=args.quick, only=args.only, letters=args.letters):
            print(json.dumps(figure))


if __name__ == "__main__":
    main()
