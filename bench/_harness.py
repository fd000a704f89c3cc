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
import atexit
import json
import os
import shutil
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


def sqlite_template() -> str:
    """A migrated SQLite database, made once per run (``BENCH_SQLITE_TEMPLATE``): the
    measuring processes copy it instead of migrating a database of their own, which
    took about 7 s each, a third of ``make bench-quick``."""
    path = os.environ.get("BENCH_SQLITE_TEMPLATE", "")
    if path and Path(path).is_file():
        return path
    folder = tempfile.mkdtemp(prefix="bench-template-")
    atexit.register(shutil.rmtree, folder, True)
    path = str(Path(folder) / "migrated.sqlite3")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity=0"],
        env={
            **os.environ,
            "DATABASE_URL": f"sqlite:///{path}",
            "DJANGO_SETTINGS_MODULE": "config.settings",
        },
        cwd=ROOT,
        check=True,
    )
    os.environ["BENCH_SQLITE_TEMPLATE"] = path
    return path


def migrated() -> None:
    """Migrates this process's database. A SQLite database not made yet starts as a
    copy of the run's migrated template, so that migrating only checks it."""
    from django.core.management import call_command
    from django.db import connection

    template = os.environ.get("BENCH_SQLITE_TEMPLATE", "")
    name = Path(str(connection.settings_dict["NAME"]))
    if connection.vendor == "sqlite" and template and not (name.exists() and name.stat().st_size):
        connection.close()
        shutil.copyfile(template, name)
    call_command("migrate", verbosity=0)


def child_environment(database_url: str, temporary: Path, **extra: str) -> dict[str, str]:
    """A measuring process's settings: its database, production-like (no debug, a
    queue instead of in-process tasks, mail kept in memory), its own files."""
    if database_url.startswith("sqlite:"):
        extra = {"BENCH_SQLITE_TEMPLATE": sqlite_template(), **extra}
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


SPREAD = [
    (30, "not_started"),
    (25, "in_progress"),
    (20, "submitted"),
    (5, "returned"),
    (15, "approved"),
    (3, "exported"),
    (2, "withdrawn"),
]
ACCOUNTS_PERCENT = 40


def spread(campaign: Any) -> None:
    """Registrations over the states, open address changes, guardians' accounts: in
    set-based SQL, as a district weeks into its campaign would have them."""
    from django.db import connection, transaction
    from django.utils import timezone

    from registration.models import Guardian, HouseholdGuardian, User
    from workflow.models import AddressChangeRequest, Registration

    registrations = Registration._meta.db_table
    requests = AddressChangeRequest._meta.db_table
    users, guardians = User._meta.db_table, Guardian._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        low = 0
        for percent, state in SPREAD:
            cursor.execute(
                f"UPDATE {registrations} SET state = %s "
                "WHERE campaign_id = %s AND id %% 100 >= %s AND id %% 100 < %s",
                [state, campaign.pk, low, low + percent],
            )
            low += percent
        moved = {
            household_id: registration_id
            for household_id, registration_id in Registration.objects.filter(
                campaign=campaign, state__in=["in_progress", "submitted"]
            )
            .values_list("household_id", "pk")
            .iterator(chunk_size=10_000)
            if household_id % 8 == 0
        }
        first_guardian: dict[int, int] = {}
        for household_id, guardian_id in (
            HouseholdGuardian.objects.filter(household_id__in=list(moved))
            .order_by("household_id", "guardian_id")
            .values_list("household_id", "guardian_id")
            .iterator(chunk_size=10_000)
        ):
            first_guardian.setdefault(household_id, guardian_id)
        AddressChangeRequest.objects.bulk_create(
            (
                AddressChangeRequest(
                    household_id=household_id,
                    registration_id=registration_id,
                    requested_by_id=first_guardian[household_id],
                    street1=f"{household_id} New Rd",
                    city="Riverside",
                    state_code="CA",
                    postal_code="95210",
                )
                for household_id, registration_id in moved.items()
                if household_id in first_guardian
            ),
            batch_size=5000,
        )
        cursor.execute(
            f"UPDATE {requests} SET state = 'awaiting_visit' "
            f"WHERE registration_id IN (SELECT id FROM {registrations} WHERE state = 'submitted')"
        )
        cursor.execute(
            f"INSERT INTO {users} (password, is_superuser, username, first_name, last_name, "
            "email, is_staff, is_active, date_joined) "
            "SELECT '!', false, 'bench-g' || id, '', '', 'bench-g' || id || '@example.org', "
            f"false, true, %s FROM {guardians} WHERE id %% 100 < %s AND user_id IS NULL",
            [timezone.now(), ACCOUNTS_PERCENT],
        )
        cursor.execute(
            f"UPDATE {guardians} SET user_id = u.id FROM {users} u "
            f"WHERE u.username = 'bench-g' || {guardians}.id"
        )


def staff_user(role: str, email: str) -> Any:
    from registration.mfa import totp_enrol
    from registration.models import User
    from registration.services import staff_account_create

    existing = User.objects.filter(email=email).first()
    if existing is not None:  # a district set up by an earlier run (--measure by hand)
        return existing

    staff = staff_account_create(
        email=email, role=role, given_name="Bench", family_name=role.title(), password=None
    )
    totp_enrol(user=staff.user)
    return staff.user


def roster_models() -> list[Any]:
    """Every model of the registration app with rows (the tables an import wrote),
    parents before children."""
    from django.apps import apps

    models = [
        model
        for model in apps.get_app_config("registration").get_models(include_auto_created=True)
        if model._default_manager.exists()
    ]
    ordered: list[Any] = []
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
    return ordered


def deciding_guardian(registrations: Any) -> tuple[Any, Any] | None:
    """The first of ``registrations`` with a guardian who holds education rights and
    has no sign-in yet, and that guardian."""
    from registration.models import Guardian

    for registration in registrations:
        guardian = (
            Guardian.objects.filter(
                householdguardian__household_id=registration.household_id,
                # Rights for a child this registration decides for (a grandparent may
                # hold rights only for a child of another household).
                student_links__has_education_rights=True,
                student_links__student__decisions__registration=registration,
                user__isnull=True,
            )
            .order_by("pk")
            .first()
        )
        if guardian is not None:
            return registration, guardian
    return None
