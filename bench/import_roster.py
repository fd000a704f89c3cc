"""Roster import speed against a plain ``bulk_create`` of the same rows.

For each database (SQLite, and PostgreSQL on a throwaway cluster) the benchmark
generates a district of the wanted size as a roster bundle, then in a fresh database:

1. times ``import_roster`` of the bundle (read, check, write, history);
2. times a second import of the same bundle (nothing to write);
3. reads back every row the import wrote (records, memberships, history rows),
   empties the tables, and times a plain ``bulk_create`` of exactly those rows into
   the same tables: the baseline, what inserting the data costs with nothing else.

The figure is the ratio of the two rates (import students/s ÷ baseline students/s).

    python bench/import_roster.py [--size STUDENTS] [--quick]
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from _harness import command_line, migrated, on_both_databases, roster_models, synthetic_district

STUDENTS_PER_HOUSEHOLD = 1.76


def measure(students: int, bundle: Path) -> dict[str, float]:
    """Runs inside a process whose DATABASE_URL names an empty database."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from registration.models import Student
    from registration.services import roster_import

    migrated()

    started = time.perf_counter()
    report = roster_import(path=bundle)
    import_seconds = time.perf_counter() - started
    assert report.ok, [str(p) for p in report.problems.errors[:5]]
    imported_students = Student.objects.count()

    started = time.perf_counter()
    again = roster_import(path=bundle)
    reimport_seconds = time.perf_counter() - started
    assert again.ok and again.total().created == 0 and again.total().updated == 0

    ordered = roster_models()
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
    synthetic_district(folder, households=round(students / STUDENTS_PER_HOUSEHOLD))


def run(*, quick: bool) -> list[dict[str, object]]:
    """Every figure of this benchmark, for bench/run.py."""
    return on_both_databases(
        name="import_roster", script=__file__, size=2_000 if quick else 10_000, quick=quick
    )


if __name__ == "__main__":
    command_line(__doc__, generate=generate, measure=measure, run=run, default=50_000)
