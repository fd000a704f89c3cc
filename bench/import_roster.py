"""Roster import speed against a plain ``bulk_create`` of the same rows.

For each database (SQLite, and PostgreSQL on a throwaway cluster) the benchmark
generates a district of the wanted size as a roster bundle, then in a fresh database:

1. times ``import_roster`` of the bundle (read, check, write, history);
2. times a second import of the same bundle (nothing to write);
3. reads back every row the import wrote (records, memberships, history rows),
   empties the tables, and times a plain ``bulk_create`` of exactly those rows into
   the same tables: the baseline, what inserting the data costs with nothing else.

The figure is the ratio of the two rates (import students/s ÷ baseline students/s).

    python bench/import_roster.py [--students N] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDENTS_PER_HOUSEHOLD = 1.76


def measure(students: int, bundle: Path) -> dict[str, float]:
    """Runs inside a process whose DATABASE_URL names an empty database."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.apps import apps
    from django.core.management import call_command
    from django.db import connection, transaction

    from registration.models import Student
    from registration.services import roster_import

    call_command("migrate", verbosity=0)

    started = time.perf_counter()
    report = roster_import(path=bundle)
    import_seconds = time.perf_counter() - started
    assert report.ok, [str(p) for p in report.problems.errors[:5]]
    imported_students = Student.objects.count()

    started = time.perf_counter()
    again = roster_import(path=bundle)
    reimport_seconds = time.perf_counter() - started
    assert again.ok and again.total().created == 0 and again.total().updated == 0

    # Every table the import wrote, parents before children.
    models = [
        model
        for model in apps.get_app_config("registration").get_models(include_auto_created=True)
        if model.objects.exists()
    ]
    ordered = []
    pending = list(models)
    while pending:
        for model in list(pending):
            parents = {
                f.related_model
                for f in model._meta.concrete_fields
                if f.is_relation and f.related_model is not model
            }
            if not (parents & set(pending)):
                ordered.append(model)
                pending.remove(model)
    rows = {model: [model(**values) for values in model.objects.values()] for model in ordered}
    row_count = sum(len(objects) for objects in rows.values())
    call_command("flush", interactive=False, verbosity=0)

    started = time.perf_counter()
    with transaction.atomic():
        for model in ordered:
            model.objects.bulk_create(rows[model], batch_size=2000)
    baseline_seconds = time.perf_counter() - started
    connection.close()

    return {
        "size": imported_students,
        "value": round(imported_students / import_seconds, 1),
        "baseline": round(imported_students / baseline_seconds, 1),
        "unit": "students/s",
        "ratio": round(baseline_seconds / import_seconds, 3),
        "students": imported_students,
        "rows": row_count,
        "import_seconds": round(import_seconds, 3),
        "reimport_seconds": round(reimport_seconds, 3),
        "baseline_seconds": round(baseline_seconds, 3),
    }


def generate(students: int, folder: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from registration.roster.synthetic import generate_district

    generate_district(
        folder,
        households=round(students / STUDENTS_PER_HOUSEHOLD),
        seed=2027,
        school_year=2027,
        district_name="Benchmark Unified School District",
    )


def _in_process(database_url: str, students: int, bundle: Path) -> dict[str, float]:
    env = dict(os.environ, DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="config.settings")
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--measure",
            "--students",
            str(students),
            "--bundle",
            str(bundle),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def run(*, quick: bool) -> list[dict[str, object]]:
    """Every figure of this benchmark, for bench/run.py."""
    sys.path.insert(0, str(ROOT))
    from tests.postgres_cluster import postgres_cluster

    students = 5_000 if quick else 50_000
    figures: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as temporary:
        bundle = Path(temporary) / "bundle"
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--generate",
                "--students",
                str(students),
                "--bundle",
                str(bundle),
            ],
            cwd=ROOT,
            check=True,
        )
        sqlite = _in_process(f"sqlite:///{Path(temporary) / 'bench.sqlite3'}", students, bundle)
        figures.append({"name": "import_roster", "database": "sqlite", **sqlite})
        with postgres_cluster() as database_url:
            postgres = _in_process(database_url, students, bundle)
        figures.append({"name": "import_roster", "database": "postgresql", **postgres})
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=50_000)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.generate:
        generate(args.students, args.bundle)
    elif args.measure:
        print(json.dumps(measure(args.students, args.bundle)))
    else:
        for figure in run(quick=args.quick):
            print(json.dumps(figure))


if __name__ == "__main__":
    main()
