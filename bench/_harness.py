"""What the benchmarks share: a generated district, one child process per database
(SQLite, then a throwaway PostgreSQL), and the command line each module answers.

A benchmark module defines ``generate(size, folder)`` and ``measure(size, bundle)``
and gets ``run`` and ``main`` from here::

    def run(*, quick: bool) -> list[dict[str, object]]:
        return on_both_databases(name="wizard", script=__file__, size=20 if quick else 200)

    if __name__ == "__main__":
        command_line(__doc__, generate=generate, measure=measure, run=run, default=200)

The leading underscore keeps ``bench/run.py`` from taking this module for a benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCHOOL_YEAR = 2027  # the district's current year; families register for the next one


def synthetic_district(folder: Path, *, households: int) -> None:
    """The generated district the benchmarks import, as a roster bundle in ``folder``."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from registration.roster.synthetic import generate_district

    generate_district(
        folder,
        households=households,
        seed=2027,
        school_year=SCHOOL_YEAR,
        district_name="Benchmark Unified School District",
    )


def child_environment(database_url: str, temporary: Path, **extra: str) -> dict[str, str]:
    """A measuring process's settings: its database, production-like (no debug, a
    queue instead of in-process tasks, mail kept in memory), its own files."""
    return dict(
        os.environ,
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="false",
        CELERY_BROKER_URL="memory://localhost/",
        EMAIL_URL="memorymail://",
        MEDIA_ROOT=str(temporary / "media"),
        PRIVATE_MEDIA_ROOT=str(temporary / "private"),
        **extra,
    )


def _script(script: str, *arguments: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, script, *arguments],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return result.stdout


def on_both_databases(
    *, name: str, script: str, size: int, env: dict[str, str] | None = None, quick: bool = False
) -> list[dict[str, object]]:
    """Generate the district once, then measure it on SQLite and on PostgreSQL, each in
    a fresh process; one figure per database. The quick run measures SQLite only
    (``make bench-quick`` has three minutes for every benchmark)."""
    sys.path.insert(0, str(ROOT))
    from tests.postgres_cluster import postgres_cluster

    figures: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        temporary = Path(folder)
        bundle = temporary / "bundle"
        _script(script, "--generate", "--size", str(size), "--bundle", str(bundle))

        def measured(database_url: str) -> dict[str, Any]:
            environment = child_environment(database_url, temporary, **(env or {}))
            output = _script(
                script, "--measure", "--size", str(size), "--bundle", str(bundle), env=environment
            )
            return json.loads(output.strip().splitlines()[-1])

        sqlite = measured(f"sqlite:///{temporary / 'bench.sqlite3'}")
        figures.append({"name": name, "database": "sqlite", **sqlite})
        if quick:
            return figures
        with postgres_cluster() as database_url:
            postgres = measured(database_url)
        figures.append({"name": name, "database": "postgresql", **postgres})
    return figures


def command_line(
    doc: str | None,
    *,
    generate: Callable[[int, Path], None],
    measure: Callable[[int, Path], object],
    run: Callable[..., list[dict[str, object]]],
    default: int,
) -> None:
    """``--size N`` sets the size; ``--quick`` the quick run; ``--generate`` and
    ``--measure`` are the child processes' own steps."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--size", type=int, default=default)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.generate:
        generate(args.size, args.bundle)
    elif args.measure:
        print(json.dumps(measure(args.size, args.bundle)))
    else:
        for figure in run(quick=args.quick):
            print(json.dumps(figure))


def campaign_running(*, opened_days_ago: int, documents: bool) -> Any:
    """Next school year's campaign, open since ``opened_days_ago`` and for a month
    more, with two documents to accept (one required) when ``documents``."""
    import datetime

    from django.utils import timezone

    from registration.models import AcademicSession
    from workflow.services import acknowledgement_save, campaign_open, campaign_save

    today = timezone.localdate()
    campaign = campaign_save(
        school_year=AcademicSession.objects.get(sourced_id=f"sy-{SCHOOL_YEAR + 1}"),
        opens_on=today - datetime.timedelta(days=opened_days_ago),
        closes_on=today + datetime.timedelta(days=30),
        fees_before_submit=False,
        approve_with_open_address_request=False,
        actor=None,
    )
    for key, required, position in (("handbook", True, 1), ("photo-day", False, 2)):
        if not documents:
            break
        acknowledgement_save(
            campaign=campaign,
            key=key,
            texts={
                "title_en": key.title(),
                "body_en": f"The {key} text. " * 40,
                "title_es": key.title(),
                "body_es": f"El texto de {key}. " * 40,
                "title_zh": key.title(),
                "body_zh": f"{key} 的文本。" * 40,
            },
            required=required,
            position=position,
            actor=None,
        )
    campaign_open(campaign=campaign)
    return campaign
