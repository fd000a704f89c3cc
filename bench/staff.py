"""The staff dashboard and queues on a large district, against a bare count.

For each database (SQLite, and PostgreSQL on a throwaway cluster) the benchmark
generates a district of N households as a roster bundle, imports it into a fresh
database, opens a campaign and spreads its registrations over the states with bulk
SQL (30 % not started, 25 % in progress, 20 % submitted, 5 % returned, 15 %
approved, 3 % exported, 2 % withdrawn), gives 40 % of the guardians an account and
some households an open address change, signs a registrar in, and times, as the
median of several rounds after a warm-up:

1. ``staff_dashboard``: ``workflow.selectors.registration_dashboard``, reading the
   counted rows (every school, every grade, every state) as the page does;
2. ``staff_dashboard_count``: ``workflow.dashboard.dashboard_count``, counting the
   whole district again, as a Celery worker does about once a minute while staff
   look at the dashboard;
3. ``staff_home``: GET /staff/, the whole page through the middleware, with counts
   younger than the maximum age (what a member of staff waits for);
4. ``staff_addresses`` and ``staff_registrations``: GET /staff/addresses/ and GET
   /staff/registrations/, the office queues, when those URLs exist (a figure is
   left out, and the run says so, when its URL does not resolve);
5. the baseline: ``Household.objects.count()``, the least a page about the
   district's households can cost, measured the same way in the same run.

value    = milliseconds per call
baseline = milliseconds per count
ratio    = baseline ÷ value (baseline seconds ÷ measured seconds, as the other
           benchmarks): 1 would be as cheap as counting the households

The two databases are set up side by side (each in its own process) and timed one
after the other. DEBUG is off, as in production. ``--explain`` prints the plan of each
of the dashboard's queries (EXPLAIN ANALYZE on PostgreSQL, EXPLAIN QUERY PLAN on
SQLite).

    python bench/staff.py [--households N] [--explain]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _harness import (
    ROOT,
    campaign_running,
    child_environment,
    migrated,
    spread,
    staff_user,
    synthetic_district,
)

PAGES = [
    ("staff_home", "/staff/"),
    ("staff_addresses", "/staff/addresses/"),
    ("staff_registrations", "/staff/registrations/"),
]


def _median_ms(call: Callable[[], object], rounds: int) -> float:
    call()  # warm up: templates, translations, the database's caches
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return round(1000 * statistics.median(seconds), 2)


def _explain(call: Callable[[], object]) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as context:
        call()
    prefix = "EXPLAIN ANALYZE " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        for query in context.captured_queries:
            sql = query["sql"]
            if not sql.lstrip("( ").upper().startswith("SELECT"):
                continue
            cursor.execute(prefix + sql)
            plan = "\n".join(" ".join(str(c) for c in row) for row in cursor.fetchall())
            print(f"-- {sql[:160]}\n{plan}\n", file=sys.stderr)


def measure(households: int, bundle: Path, explain: bool) -> list[dict[str, object]]:
    """Runs inside a process whose DATABASE_URL names an empty database."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.urls import Resolver404, resolve

    from registration.models import Household
    from registration.services import roster_import
    from workflow.dashboard import dashboard_count
    from workflow.models import Registration
    from workflow.selectors import registration_dashboard

    assert not settings.DEBUG
    # The pages read counted rows; counting them again is its own figure.
    settings.DASHBOARD_MAX_AGE_SECONDS = 24 * 60 * 60
    migrated()
    report = roster_import(path=bundle)
    assert report.ok, [str(p) for p in report.problems.errors[:5]]
    campaign = campaign_running(opened_days_ago=20, documents=False)
    spread(campaign)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    user = staff_user("registrar", "registrar@bench.example.org")
    client = Client()
    client.force_login(user)
    size = Household.objects.count()
    registrations = Registration.objects.filter(campaign=campaign).count()
    rounds = 7
    # The setups of the databases run side by side; the timings one after the other.
    print("ready", flush=True)
    sys.stdin.readline()

    baseline_ms = _median_ms(lambda: Household.objects.count(), rounds)

    dashboard_count(campaign)

    def dashboard() -> object:
        return registration_dashboard(user, campaign)

    def count() -> object:
        return dashboard_count(campaign)

    def page(url: str) -> Callable[[], object]:
        def get() -> object:
            response = client.get(url)
            if response.status_code != 200:
                raise RuntimeError(f"GET {url} answered {response.status_code}")
            return response

        return get

    timed: list[tuple[str, Callable[[], object]]] = [
        ("staff_dashboard", dashboard),
        ("staff_dashboard_count", count),
    ]
    skipped = []
    for name, url in PAGES:
        try:
            resolve(url)
        except Resolver404:
            skipped.append(url)
            continue
        timed.append((name, page(url)))
    if explain:
        _explain(count)
    figures: list[dict[str, object]] = []
    for name, call in timed:
        value_ms = _median_ms(call, rounds)
        figures.append(
            {
                "name": name,
                "size": size,
                "value": value_ms,
                "baseline": baseline_ms,
                "unit": "ms",
                "ratio": round(baseline_ms / value_ms, 4),
                "registrations": registrations,
                "rounds": rounds,
            }
        )
    for url in skipped:
        print(f"skipped {url}: the URL does not resolve", file=sys.stderr)
    connection.close()
    return figures


def generate(households: int, folder: Path) -> None:
    synthetic_district(folder, households=households)


def _start(
    database_url: str, households: int, bundle: Path, temporary: Path, explain: bool
) -> subprocess.Popen[str]:
    """A measuring process; it sets its database up, says ``ready`` and waits for a
    line on its input before it times anything."""
    env = child_environment(database_url, temporary)
    command = [
        sys.executable,
        __file__,
        "--measure",
        "--households",
        str(households),
        "--bundle",
        str(bundle),
        *(["--explain"] if explain else []),
    ]
    log = (temporary / f"{abs(hash(database_url))}.log").open("w+")
    process = subprocess.Popen(
        command,
        env=env,
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    process.log = log  # type: ignore[attr-defined]
    return process


def _lines_of(process: subprocess.Popen[str]) -> list[str]:
    log = process.log  # type: ignore[attr-defined]
    log.seek(0)
    return log.read().splitlines()


def _ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        process.wait()
        raise RuntimeError("\n".join(_lines_of(process)[-40:]))


def _measured(process: subprocess.Popen[str], explain: bool) -> list[dict[str, object]]:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write("go\n")
    process.stdin.flush()
    output = process.stdout.read()
    if process.wait() != 0:
        raise RuntimeError("\n".join(_lines_of(process)[-40:]))
    for line in _lines_of(process):
        if line.startswith("skipped ") or explain:
            print(line, file=sys.stderr)
    return json.loads(output.strip().splitlines()[-1])


def run(*, quick: bool, explain: bool = False, households: int | None = None) -> list[dict]:
    """Every figure of this benchmark, for bench/run.py."""
    sys.path.insert(0, str(ROOT))
    from tests.postgres_cluster import postgres_cluster

    # The dashboard and queues at a million students are bench/scale.py's; this one
    # compares the two databases at a size both hold.
    households = households or (1_500 if quick else 10_000)
    figures: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as name:
        temporary = Path(name)
        bundle = temporary / "bundle"
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--generate",
                "--households",
                str(households),
                "--bundle",
                str(bundle),
            ],
            cwd=ROOT,
            check=True,
        )
        sqlite_url = f"sqlite:///{temporary / 'bench.sqlite3'}"
        sqlite = _start(sqlite_url, households, bundle, temporary, explain)
        try:
            with postgres_cluster() as database_url:
                postgres = _start(database_url, households, bundle, temporary, explain)
                try:
                    _ready(sqlite)
                    _ready(postgres)
                    for figure in _measured(sqlite, explain):
                        figures.append({**figure, "database": "sqlite"})
                    for figure in _measured(postgres, explain):
                        figures.append({**figure, "database": "postgresql"})
                finally:
                    postgres.kill()
                    postgres.wait()
                    postgres.log.close()  # type: ignore[attr-defined]
        finally:
            sqlite.kill()
            sqlite.wait()
            sqlite.log.close()  # type: ignore[attr-defined]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--households", type=int)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.generate:
        generate(args.households, args.bundle)
    elif args.measure:
        print(json.dumps(measure(args.households, args.bundle, args.explain)))
    else:
        for figure in run(quick=args.quick, explain=args.explain, households=args.households):
            print(json.dumps(figure))


if __name__ == "__main__":
    main()
