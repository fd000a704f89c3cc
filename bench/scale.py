"""District scale on PostgreSQL: a million students imported, and every page timed at
a thousand students and at a million.

The benchmark generates two districts as roster bundles (deterministic; the large one
of 1,000,000 students in about 570,000 households), starts a throwaway PostgreSQL
cluster with the memory a district's database server would have, and for each
district, in a fresh database and a fresh process:

1. imports the bundle with the real importer (``roster_import``: read, check, write,
   history), timed. For the large district the baseline is PostgreSQL's ``COPY`` of
   exactly the rows the import wrote, into the same tables of another freshly
   migrated database, in one transaction: the fastest way to put those rows in. A
   second baseline is Django's ``bulk_create`` of a sample of those rows into the same
   tables, timed before the COPY;
2. opens next year's campaign for every household, spreads the registrations over
   the states in bulk (as weeks into a campaign: 30 % not started, 25 % in progress,
   20 % submitted, 5 % returned, 15 % approved, 3 % exported, 2 % withdrawn), gives
   40 % of the guardians an account and one in eight started households an address
   change, and runs ANALYZE;
3. recounts the dashboard (what a Celery worker does about once a minute), timed;
4. times every staff page (a registrar's, and a finance clerk's for the finance
   pages) and every wizard step of a three-child household (GET, and POST with "This
   is all still correct" or the family's answers), each the median of several
   rounds after a warm-up, with the number of queries each makes.

Figures (``bench/results.json``):

- ``scale_import``: students/s of the real import of the large district, against
  students/s of the COPY baseline;
- ``scale_import_bulk_create``: rows/s of the same import against rows/s of Django's
  ``bulk_create`` of a consistent sample of the rows it wrote (every row's parents in
  the sample, so the foreign keys are checked at commit), into the same empty tables;
- one figure per page and step: milliseconds at the large district against the
  milliseconds at the small one as the baseline, so ratio = small ÷ large (goal: at
  least 1/1.5 = 0.67), with both query counts (goal: equal);
- ``scale_dashboard`` and the queues carry their absolute times (goals: the dashboard
  under 300 ms, the queues under 150 ms at a million students).

    python bench/scale.py [--quick] [--students N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import (
    ROOT,
    campaign_running,
    child_environment,
    deciding_guardian,
    migrated,
    roster_models,
    spread,
    staff_user,
    synthetic_district,
)

STUDENTS_PER_HOUSEHOLD = 1.76
SMALL = 1_000
LARGE = 1_000_000
QUICK_LARGE = 3_000
ROUNDS = int(os.environ.get("BENCH_SCALE_ROUNDS", "5"))  # 3 in the quick run
# A district's database server: a quarter of this machine's memory for PostgreSQL's
# own cache, room for a bulk load between checkpoints, memory for sorts.
SERVER = "-c shared_buffers=4GB -c max_wal_size=16GB -c work_mem=64MB -c maintenance_work_mem=1GB"
DASHBOARD_GOAL_MS = 300
QUEUE_GOAL_MS = 150
QUEUES = ("staff_addresses", "staff_address_visits", "staff_registrations")

# -- timing ---------------------------------------------------------------------------


def timed(call: Callable[[], object], rounds: int = ROUNDS) -> dict[str, float | int]:
    """Median milliseconds over ``rounds`` after a warm-up, and the queries of one call."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call()  # templates, translations, the database's caches
    with CaptureQueriesContext(connection) as captured:
        call()
    queries = len(captured)  # now: the next request empties the log it reads
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return {"ms": round(1000 * statistics.median(seconds), 2), "queries": queries}


def page(client: Any, method: str, url: str, data: dict[str, Any] | None = None) -> Callable:
    def request() -> object:
        response = getattr(client, method)(url, data or {})
        expected = (302,) if method == "post" else (200,)
        if response.status_code not in expected:
            raise RuntimeError(f"{method.upper()} {url} answered {response.status_code}")
        return response

    return request


def staff_pages(registrar: Any, clerk: Any) -> dict[str, tuple[Any, str]]:
    """Every staff page a registrar or finance clerk opens, with a real object of the
    district behind each URL that takes one."""
    from django.urls import reverse

    from registration.models import Guardian, Household
    from workflow.models import AddressChangeRequest, Campaign, Registration

    campaign = Campaign.objects.get()
    guardian = Guardian.objects.filter(user__isnull=False).order_by("pk").first()
    household = Household.objects.order_by("pk")[Household.objects.count() // 2]
    request = AddressChangeRequest.objects.filter(state="awaiting_visit").order_by("pk").first()
    submitted = Registration.objects.filter(state="submitted").order_by("pk").first()
    assert guardian and request and submitted
    name = guardian.family_name
    registrar_urls = {
        "staff_home": reverse("staff_home"),
        "staff_guardians": reverse("staff_guardians"),
        "staff_guardians_search": reverse("staff_guardians") + f"?q={name}",
        "staff_guardian": reverse("staff_guardian", args=[guardian.pk]),
        "staff_activation": reverse("staff_activation"),
        "staff_campaigns": reverse("staff_campaigns"),
        "staff_campaign": reverse("staff_campaign", args=[campaign.pk]),
        "staff_campaign_edit": reverse("staff_campaign_edit", args=[campaign.pk]),
        "staff_reminders": reverse("staff_reminders"),
        "staff_quality": reverse("staff_quality"),
        "staff_audit": reverse("staff_audit"),
        "staff_addresses": reverse("staff_addresses"),
        "staff_address": reverse("staff_address", args=[request.pk]),
        "staff_address_visits": reverse("staff_address_visits"),
        "staff_address_schedule": reverse("staff_address_schedule"),
        "staff_registrations": reverse("staff_registrations"),
        "staff_registration": reverse("staff_registration", args=[submitted.pk]),
        "staff_registration_export": reverse("staff_registration_export"),
        "staff_field_trips": reverse("staff_field_trips"),
        "staff_fees": reverse("staff_fees"),
        "staff_meal_eligibility": reverse("staff_meal_eligibility"),
        "staff_payments": reverse("staff_payments"),
        "staff_household_payments": reverse("staff_household_payments", args=[household.pk]),
    }
    clerk_urls = {
        "staff_finance": reverse("staff_finance"),
        "staff_finance_mismatches": reverse("staff_finance_mismatches"),
        "staff_finance_collections": reverse("staff_finance_collections"),
        "staff_finance_outstanding": reverse("staff_finance_outstanding"),
        "staff_finance_refunds": reverse("staff_finance_refunds"),
        "staff_finance_summary": reverse("staff_finance_summary"),
    }
    return {
        **{name: (registrar, url) for name, url in registrar_urls.items()},
        **{name: (clerk, url) for name, url in clerk_urls.items()},
    }


def three_child_family() -> tuple[Any, Any]:
    """A registration not started yet whose household has three children, and a
    guardian of it with education rights and an account."""
    from django.db.models import Count

    from registration.models import HouseholdStudent
    from registration.services import guardian_account_create
    from workflow.models import Registration

    households = (
        HouseholdStudent.objects.values("household_id")
        .annotate(children=Count("student_id"))
        .filter(children=3)
        .values_list("household_id", flat=True)
    )
    found = deciding_guardian(
        Registration.objects.filter(
            state="not_started", household_id__in=households[:200]
        ).order_by("pk")
    )
    if found is not None:
        registration, guardian = found
        user = guardian_account_create(
            guardian=guardian,
            email=f"{guardian.sourced_id}@bench.example.org",
            password="a-long-benchmark-password",
        )
        return registration, user
    raise RuntimeError("no three-child household to register")


def wizard_steps(client: Any, registration: Any, signed_name: str) -> dict[str, dict]:
    """Each step of the registration: its GET and its POST timed, walking on with the
    family's answers; the review is signed once (its POST submits)."""
    from django.urls import reverse
    from wizard import Family, _step_data, _typed_data

    family = Family(
        registration_id=registration.pk,
        user_id=0,
        email="",
        signed_name=signed_name,
        address="127.0.0.1",
    )
    status = reverse("registration_status", kwargs={"pk": registration.pk})
    response = client.get(reverse("registration_resume", kwargs={"pk": registration.pk}))
    path = response["Location"]
    figures: dict[str, dict] = {}
    seen: dict[str, int] = {}
    for _ in range(30):
        if path == status:
            return figures
        step = path.rstrip("/").rsplit("/", 1)[1]
        base = re.sub(r"-\d+$", "", step)
        seen[base] = seen.get(base, 0) + 1
        label = f"wizard_{base}" + (f"_{seen[base]}" if base == "child" else "")
        figures[f"{label}_get"] = timed(page(client, "get", path))
        html = client.get(path).content.decode()
        data = _step_data(family, step, html)
        response = client.post(path, data)
        if response.status_code == 200 and step != "review":
            data = _typed_data(family, step, response.content.decode())
            response = client.post(path, data)
        if response.status_code != 302:
            raise RuntimeError(f"{step}: the family's answers were refused")
        if step != "review":
            figures[f"{label}_post"] = timed(page(client, "post", path, data))
        path = response["Location"]
    raise RuntimeError("the registration never reached its status page")


# -- the COPY baseline ------------------------------------------------------------------


def copy_baseline(copy_url: str, folder: Path) -> dict[str, float | int]:
    """Seconds to COPY every row the import wrote into the same, empty tables of
    another database, in one transaction (the rows read out first, not timed)."""
    import psycopg
    from django.db import connection

    tables = [model._meta.db_table for model in roster_models()]
    rows = 0
    files = []
    with connection.cursor() as cursor:
        for table in tables:
            path = folder / f"{table}.copy"
            with path.open("wb") as out, cursor.copy(f'COPY "{table}" TO STDOUT') as copy:
                for block in copy:
                    out.write(block)
            cursor.execute(f'SELECT count(*) FROM "{table}"')
            rows += cursor.fetchone()[0]
            files.append((table, path))
    with psycopg.connect(copy_url) as target:
        started = time.perf_counter()
        with target.transaction(), target.cursor() as cursor:
            for table, path in files:
                with path.open("rb") as source, cursor.copy(f'COPY "{table}" FROM STDIN') as copy:
                    while block := source.read(1 << 20):
                        copy.write(block)
        seconds = time.perf_counter() - started
    for _table, path in files:
        path.unlink()
    return {"seconds": round(seconds, 2), "rows": rows}


# -- the bulk_create baseline ------------------------------------------------------------

# Tables this small are taken whole into the sample; larger ones from their first rows.
WHOLE_TABLE_ROWS = 50_000
SAMPLE_ROWS = int(os.environ.get("BENCH_SCALE_SAMPLE_ROWS", "200000"))


def consistent_sample(share: float) -> dict[Any, Any]:
    """A share of the rows the import wrote, each table's queryset, chosen so that
    every row's parents are in the sample too: the sample can be inserted into empty
    tables and committed with every foreign key checked."""
    from django.db.models import Q

    samples: dict[Any, Any] = {}
    for model in roster_models():
        rows = model._default_manager.all()
        total = rows.count()
        if total > WHOLE_TABLE_ROWS:
            ids = rows.order_by("pk").values_list("pk", flat=True)
            rows = rows.filter(pk__lte=ids[max(0, int(total * share) - 1)])
        for field in model._meta.concrete_fields:
            parent = field.related_model
            if field.is_relation and field.db_constraint and parent in samples:
                inside = Q(**{f"{field.attname}__in": samples[parent].values("pk")})
                if field.null:
                    inside |= Q(**{f"{field.attname}__isnull": True})
                rows = rows.filter(inside)
        samples[model] = rows
    return samples


def bulk_create_baseline(copy_url: str, total_rows: int) -> dict[str, float | int]:
    """Seconds for Django's ``bulk_create`` of a consistent sample of the rows the
    import wrote (about SAMPLE_ROWS of them) into the same, empty tables of another
    database, in one transaction with its foreign keys checked at commit; the tables
    are emptied again afterwards for the COPY baseline."""
    from django.db import connections, transaction

    connections.settings["baseline"] = {
        **connections.settings["default"],
        "NAME": copy_url.rsplit("/", 1)[1],
    }
    samples = consistent_sample(min(1.0, SAMPLE_ROWS / total_rows))
    objects = {
        model: [model(**values) for values in rows.values()] for model, rows in samples.items()
    }
    rows = sum(len(made) for made in objects.values())
    started = time.perf_counter()
    with transaction.atomic(using="baseline"):
        for model, made in objects.items():
            model._default_manager.using("baseline").bulk_create(made, batch_size=2000)
    seconds = time.perf_counter() - started
    tables = ", ".join(f'"{model._meta.db_table}"' for model in objects)
    with connections["baseline"].cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} CASCADE")
    connections["baseline"].close()
    return {"seconds": round(seconds, 2), "rows": rows}


# -- one district -----------------------------------------------------------------------


def measure(students: int, bundle: Path, copy_url: str | None, folder: Path) -> dict[str, Any]:
    """Runs inside a process whose DATABASE_URL names an empty database."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.conf import settings
    from django.db import connection

    from registration.models import Household, Student
    from registration.services import roster_import
    from workflow.dashboard import dashboard_count
    from workflow.models import Campaign

    assert not settings.DEBUG and connection.vendor == "postgresql"
    # The pages read counted rows and summaries, as they do between two counts.
    settings.DASHBOARD_MAX_AGE_SECONDS = settings.SUMMARY_MAX_AGE_SECONDS = 24 * 60 * 60
    migrated()
    result: dict[str, Any] = {}
    if Student.objects.exists():
        # Set up by an earlier run: only the pages are measured again (a way to work
        # on a slow page without importing a million students each time).
        return result | measure_pages(Campaign.objects.get())

    started = time.perf_counter()
    report = roster_import(path=bundle)
    result["import_seconds"] = round(time.perf_counter() - started, 2)
    result["import_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    assert report.ok, [str(p) for p in report.problems.errors[:5]]
    result["students"] = Student.objects.count()
    result["households"] = Household.objects.count()
    print(f"imported {result['students']} students in {result['import_seconds']} s", flush=True)
    if copy_url:
        written = sum(model._default_manager.count() for model in roster_models())
        result["bulk_create"] = bulk_create_baseline(copy_url, written)
        print(f"bulk_create baseline {result['bulk_create']}", flush=True)
        result["copy"] = copy_baseline(copy_url, folder)
        print(f"COPY baseline {result['copy']}", flush=True)

    started = time.perf_counter()
    campaign = campaign_running(opened_days_ago=20, documents=True)
    result["campaign_open_seconds"] = round(time.perf_counter() - started, 2)
    spread(campaign)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print("district ready", flush=True)
    started = time.perf_counter()
    dashboard_count(campaign)
    result["dashboard_count_seconds"] = round(time.perf_counter() - started, 2)
    result |= measure_pages(campaign)
    connection.close()
    return result


def measure_pages(campaign: Any) -> dict[str, Any]:
    """Every staff page and wizard step, timed, with their queries."""
    from django.test import Client

    from registration.models import Household, StaffProfile, Student

    registrar = staff_user(StaffProfile.Role.REGISTRAR, "registrar@bench.example.org")
    clerk = staff_user(StaffProfile.Role.FINANCE, "finance@bench.example.org")
    registration, guardian_user = three_child_family()
    pages: dict[str, dict] = {}
    clients: dict[int, Any] = {}
    for user in (registrar, clerk, guardian_user):
        clients[user.pk] = Client()
        clients[user.pk].force_login(user)
    for name, (user, url) in staff_pages(registrar, clerk).items():
        pages[name] = timed(page(clients[user.pk], "get", url))
    guardian = guardian_user.guardian
    pages |= wizard_steps(
        clients[guardian_user.pk], registration, f"{guardian.given_name} {guardian.family_name}"
    )
    return {
        "pages": pages,
        "students": Student.objects.count(),
        "households": Household.objects.count(),
    }


# -- the run ----------------------------------------------------------------------------


def _child(arguments: list[str], env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, __file__, *arguments],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench/scale.py {' '.join(arguments[:1])} failed")
    return result.stdout


def _database(url: str, name: str, template: str = "") -> str:
    """A new database of the cluster, a copy of ``template`` when given."""
    import psycopg

    copied = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"{copied}')
    return url.rsplit("/", 1)[0] + f"/{name}"


def run(*, quick: bool, students: int | None = None) -> list[dict[str, object]]:
    """Every figure of this benchmark, for bench/run.py."""
    sys.path.insert(0, str(ROOT))
    from tests.postgres_cluster import postgres_cluster

    large = students or (QUICK_LARGE if quick else LARGE)
    measured: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as name:
        temporary = Path(name)
        with postgres_cluster(SERVER) as url:
            # Migrated once; each district's database and the COPY baseline's are copies.
            template = _database(url, "migrated")
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--verbosity=0"],
                env=child_environment(template, temporary),
                cwd=ROOT,
                check=True,
            )
            for size in (SMALL, large):
                bundle = temporary / f"bundle-{size}"
                started = time.perf_counter()
                _child(["--generate", "--students", str(size), "--bundle", str(bundle)])
                generated = round(time.perf_counter() - started, 1)
                print(f"generated {size} students in {generated} s", flush=True)
                database = _database(url, f"district_{size}", template="migrated")
                copy_url = None
                env = child_environment(database, temporary)
                env["BENCH_SCALE_ROUNDS"] = "3" if quick else str(ROUNDS)
                if size == large:
                    copy_url = _database(url, f"copy_{size}", template="migrated")
                arguments = ["--measure", "--students", str(size), "--bundle", str(bundle)]
                arguments += ["--folder", str(temporary)]
                output = _child(arguments + (["--copy", copy_url] if copy_url else []), env)
                measured[size] = json.loads(output.strip().splitlines()[-1])
                measured[size]["generate_seconds"] = generated
    return figures(measured[SMALL], measured[large])


def figures(small: dict[str, Any], large: dict[str, Any]) -> list[dict[str, object]]:
    students = large["students"]
    copy = large["copy"]
    out: list[dict[str, object]] = [
        {
            "name": "scale_import",
            "database": "postgresql",
            "size": students,
            "value": round(students / large["import_seconds"]),
            "baseline": round(students / copy["seconds"]),
            "unit": "students/s",
            "ratio": round(copy["seconds"] / large["import_seconds"], 3),
            "import_seconds": large["import_seconds"],
            "import_peak_rss_mib": large["import_peak_rss_mib"],
            "copy_seconds": copy["seconds"],
            "rows": copy["rows"],
            "households": large["households"],
            "generate_seconds": large["generate_seconds"],
            "campaign_open_seconds": large["campaign_open_seconds"],
            "dashboard_count_seconds": large["dashboard_count_seconds"],
            "goal": 0.5,
        }
    ]
    # The same import against Django's bulk_create of a consistent sample of its rows,
    # as rows per second (the sample is a few hundred thousand of the rows).
    bulk = large["bulk_create"]
    import_rate = copy["rows"] / large["import_seconds"]
    bulk_rate = bulk["rows"] / bulk["seconds"]
    out.append(
        {
            "name": "scale_import_bulk_create",
            "database": "postgresql",
            "size": students,
            "value": round(import_rate),
            "baseline": round(bulk_rate),
            "unit": "rows/s",
            "ratio": round(import_rate / bulk_rate, 3),
            "rows": copy["rows"],
            "sample_rows": bulk["rows"],
            "bulk_create_seconds": bulk["seconds"],
            "goal": 0.5,
        }
    )
    for name, at_large in large["pages"].items():
        at_small = small["pages"][name]
        figure: dict[str, object] = {
            "name": f"scale_{name}",
            "database": "postgresql",
            "size": students,
            "value": at_large["ms"],
            "baseline": at_small["ms"],
            "unit": "ms",
            "ratio": round(at_small["ms"] / at_large["ms"], 3),
            "small_students": small["students"],
            "queries": at_large["queries"],
            "queries_small": at_small["queries"],
            "queries_constant": at_large["queries"] == at_small["queries"],
            "goal": round(1 / 1.5, 2),
        }
        if name == "staff_home":
            figure["goal_ms"] = DASHBOARD_GOAL_MS
        elif name in QUEUES:
            figure["goal_ms"] = QUEUE_GOAL_MS
        out.append(figure)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--folder", type=Path)
    parser.add_argument("--copy")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.generate:
        synthetic_district(args.bundle, households=round(args.students / STUDENTS_PER_HOUSEHOLD))
    elif args.measure:
        print(json.dumps(measure(args.students, args.bundle, args.copy, args.folder)))
    else:
        for figure in run(quick=args.quick, students=args.students):
            print(json.dumps(figure))


if __name__ == "__main__":
    main()
