"""Re-registration wizard completions per second against a minimal view.

For each database (SQLite, and PostgreSQL on a throwaway cluster) the benchmark
generates a district as a roster bundle, imports it into a fresh database, opens a
campaign (one required and one optional document to accept), gives one guardian of
each of the first N households a sign-in, and then, with Django's test client:

1. times N completions, one per household, each as a browser makes it: sign in
   (the real password hasher), open the household's registration, every step ("This
   is all still correct" where offered, every document accepted, read-only children
   passed), sign and submit, and land on the status page. Every redirect is followed
   and counted as a request;
2. times the baseline: as many requests as the completions made, each a POST by a
   signed-in client to one view behind the same middleware that reads the session
   and writes one row (``bench/_baseline_urls.py``); the median of three rounds.

value    = completions/s
baseline = baseline requests/s ÷ requests per completion: the completions/s the
           wizard would reach if each of its requests cost what the minimal one does
ratio    = value ÷ baseline = baseline seconds ÷ wizard seconds
steps_ratio, among the details: the same per request without the sign-in, whose
           password hashing (PBKDF2, about 0.2 s) is slow on purpose

The confirmation (PDF and email) is queued, not rendered: the measuring process runs
with an in-memory broker, as the web servers run with Redis, so the figure is the
cost of the web requests; ``bench/letters.py`` measures WeasyPrint. DEBUG is off, as
in production.

    python bench/wizard.py [--size HOUSEHOLDS] [--quick]
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from _harness import campaign_running, command_line, migrated, on_both_databases, synthetic_district

PASSWORD = "a-long-benchmark-password"  # the accounts live in a throwaway database
BASELINE_URLCONF = "bench._baseline_urls"


@dataclass
class Completion:
    requests: int
    sign_in_requests: int
    sign_in_seconds: float
    steps_seconds: float
    typed_steps: int  # steps where "all still correct" was refused and the family typed


@dataclass
class Family:
    registration_id: int
    user_id: int
    email: str
    signed_name: str
    address: str  # each family signs in from its own address (sign-in is rate-limited)


class _MainForm(HTMLParser):
    """The fields of a wizard step's form as a browser would post them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None
        start = html.find('enctype="multipart/form-data"')
        self.feed(html[html.rfind("<form", 0, start) : html.find("</form>", start)])

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        name = attrs.get("name")
        kind = attrs.get("type", "text")
        if tag == "input" and name and kind in ("checkbox", "radio"):
            values = self.fields.setdefault(name, [])
            if "checked" in attrs:
                values.append(attrs.get("value", "on"))
        elif tag == "input" and name and kind not in ("submit", "button", "file"):
            self.fields.setdefault(name, []).append(attrs.get("value", ""))
        elif tag == "select" and name:
            self._select = name
            self.fields[name] = []
        elif tag == "option" and self._select and "selected" in attrs:
            self.fields[self._select].append(attrs.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = [""]

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea][0] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


class Browser:
    """A test client that follows redirects itself and counts every request."""

    def __init__(self, address: str) -> None:
        from django.test import Client

        self.client = Client(REMOTE_ADDR=address)
        self.requests = 0

    def go(self, method: str, url: str, data: dict[str, Any] | None = None) -> Any:
        response = getattr(self.client, method)(url, data or {})
        self.requests += 1
        while response.status_code in (301, 302, 303):
            response = self.client.get(response["Location"])
            self.requests += 1
        if response.status_code != 200:
            raise RuntimeError(f"{method.upper()} {url} answered {response.status_code}")
        return response


def _step_data(family: Family, step: str, html: str) -> dict[str, Any]:
    """What the family posts on ``step``: "This is all still correct" where offered,
    every document accepted, the signature on the review."""
    management = {f"registration_{family.registration_id}-current_step": step}
    if 'name="unchanged"' in html:
        return {**management, "unchanged": "1"}
    fields = _MainForm(html).fields
    data: dict[str, Any] = {k: v for k, v in fields.items() if v}
    if step == "acknowledgements":
        data.update({k: "on" for k in fields if k.startswith("acknowledgements-")})
    elif step == "review":
        data.update({"review-signed_name": family.signed_name, "review-attest": "on"})
    return {**data, **management}


def _typed_data(family: Family, step: str, html: str) -> dict[str, Any]:
    """The step's form as shown again after "all still correct" was refused because
    something is missing on file, with what the family then types in: a phone for
    a guardian with none, an emergency contact for a household with none."""
    fields = _MainForm(html).fields
    data: dict[str, Any] = {k: v for k, v in fields.items() if v}
    data[f"registration_{family.registration_id}-current_step"] = step
    if step == "contacts":
        for name in (n for n in fields if n.endswith("_mobile")):
            group = name.removesuffix("mobile")
            if not any(v for n, values in fields.items() if n.startswith(group) for v in values):
                data[name] = "(650) 555-0148"
    elif step == "emergency" and not any(fields.get("emergency-c1_name", [])):
        data.update(
            {
                "emergency-c1_name": "Rosa Delgado",
                "emergency-c1_relationship": "aunt",
                "emergency-c1_phone": "(650) 555-0149",
            }
        )
    return data


def complete(family: Family) -> Completion:
    """One family, from the sign-in page to the status page after signing."""
    from django.urls import reverse

    browser = Browser(family.address)
    started = time.perf_counter()
    home = browser.go(
        "post", reverse("account_login"), {"login": family.email, "password": PASSWORD}
    )
    if home.wsgi_request.path != reverse("guardian_home"):
        raise RuntimeError(f"{family.email} did not sign in")
    signed_in, sign_in_requests = time.perf_counter(), browser.requests
    status = reverse("registration_status", kwargs={"pk": family.registration_id})
    typed = 0
    page = browser.go("get", reverse("registration_resume", kwargs={"pk": family.registration_id}))
    for _ in range(50):
        path = page.wsgi_request.path
        if path == status:
            return Completion(
                requests=browser.requests,
                sign_in_requests=sign_in_requests,
                sign_in_seconds=signed_in - started,
                steps_seconds=time.perf_counter() - signed_in,
                typed_steps=typed,
            )
        step = path.rstrip("/").rsplit("/", 1)[1]
        page = browser.go("post", path, _step_data(family, step, page.content.decode()))
        if page.wsgi_request.path == path and step != "review":
            typed += 1
            page = browser.go("post", path, _typed_data(family, step, page.content.decode()))
        if page.wsgi_request.path == path:
            shown = page.content.decode()
            summary = shown[shown.find('class="error-summary"') :][:1500]
            raise RuntimeError(f"registration {family.registration_id}, {step}: {summary}")
    raise RuntimeError(f"registration {family.registration_id} never reached its status page")


def _families(campaign: Any, count: int) -> list[Family]:
    """One guardian per household who holds education rights for a child it decides
    for, each a different person, with a sign-in. Accounts are made with a fast hasher,
    then all given the same password hashed by the real one: signing in costs what it
    costs in production."""
    from django.contrib.auth.hashers import make_password
    from django.test.utils import override_settings

    from registration.models import Guardian, User
    from registration.services import guardian_account_create
    from workflow.models import Registration

    families: list[Family] = []
    used: set[int] = set()
    registrations = Registration.objects.filter(campaign=campaign).order_by("pk")
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        for registration in registrations.iterator():
            guardian = (
                Guardian.objects.filter(
                    householdguardian__household_id=registration.household_id,
                    # Rights for a child this registration decides for (a grandparent may
                    # hold rights only for a child of another household).
                    student_links__has_education_rights=True,
                    student_links__student__decisions__registration=registration,
                    user__isnull=True,  # the demo district's own sign-ins stay as they are
                )
                .exclude(pk__in=used)
                .order_by("pk")
                .first()
            )
            if guardian is None:
                continue
            used.add(guardian.pk)
            email = f"{guardian.sourced_id}@bench.example.org"
            user = guardian_account_create(guardian=guardian, email=email, password=PASSWORD)
            n = len(families)
            families.append(
                Family(
                    registration_id=registration.pk,
                    user_id=user.pk,
                    email=email,
                    signed_name=f"{guardian.given_name} {guardian.family_name}",
                    address=f"10.{n // 250}.{n % 250}.{1 + n % 200}",
                )
            )
            if len(families) == count:
                break
    if len(families) < count:
        raise RuntimeError(f"the district has only {len(families)} households to register")
    User.objects.filter(pk__in=[f.user_id for f in families]).update(
        password=make_password(PASSWORD)
    )
    return families


def _baseline(families: list[Family], requests: list[int], rounds: int = 3) -> float:
    """Seconds for ``requests[i]`` POSTs to the minimal view by family i's client: the
    median of ``rounds`` rounds, the baseline being short enough to be noisy."""
    from django.test import Client
    from django.test.utils import override_settings

    from registration.models import User

    clients = []
    for family in families:
        client = Client(REMOTE_ADDR=family.address)
        client.force_login(User.objects.get(pk=family.user_id))
        clients.append(client)
    with override_settings(ROOT_URLCONF=BASELINE_URLCONF):
        for _ in range(20):  # warm up
            clients[0].post("/minimal/")
        seconds = []
        for _ in range(rounds):
            started = time.perf_counter()
            for client, count in zip(clients, requests, strict=True):
                for _ in range(count):
                    if client.post("/minimal/").status_code != 200:
                        raise RuntimeError("the baseline view failed")
            seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def measure(households: int, bundle: Path) -> dict[str, object]:
    """Runs inside a process whose DATABASE_URL names an empty database."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.conf import settings
    from django.db import connection

    from documents.models import Confirmation
    from registration.services import roster_import
    from workflow.models import Registration, Submission

    assert not settings.DEBUG and not settings.CELERY_TASK_ALWAYS_EAGER
    migrated()
    report = roster_import(path=bundle)
    assert report.ok, [str(p) for p in report.problems.errors[:5]]
    campaign = campaign_running(opened_days_ago=1, documents=True)
    warm_up, *families = _families(campaign, households + 1)
    complete(warm_up)  # templates, translations, the first queries of each kind

    completions = []
    started = time.perf_counter()
    for family in families:
        completions.append(complete(family))
    wizard_seconds = time.perf_counter() - started
    submitted = Registration.objects.filter(
        pk__in=[f.registration_id for f in families], state=Registration.State.SUBMITTED
    ).count()
    assert submitted == households == Submission.objects.count() - 1, submitted
    assert not Confirmation.objects.exists()  # queued for the workers, not rendered here

    requests = [c.requests for c in completions]
    baseline_seconds = _baseline(families, requests)
    connection.close()

    total = sum(requests)
    sign_in_requests = sum(c.sign_in_requests for c in completions)
    sign_in_seconds = sum(c.sign_in_seconds for c in completions)
    steps_seconds = sum(c.steps_seconds for c in completions)
    per_completion = total / households
    return {
        "size": households,
        "value": round(households / wizard_seconds, 2),
        "baseline": round(total / baseline_seconds / per_completion, 2),
        "unit": "completions/s",
        "ratio": round(baseline_seconds / wizard_seconds, 3),
        "requests": total,
        "requests_per_completion": round(per_completion, 1),
        "typed_steps": sum(c.typed_steps for c in completions),
        "wizard_seconds": round(wizard_seconds, 2),
        "sign_in_seconds": round(sign_in_seconds, 2),
        "steps_seconds": round(steps_seconds, 2),
        "baseline_seconds": round(baseline_seconds, 2),
        "ms_per_request": round(1000 * wizard_seconds / total, 2),
        "ms_per_sign_in_request": round(1000 * sign_in_seconds / sign_in_requests, 2),
        "ms_per_step_request": round(1000 * steps_seconds / (total - sign_in_requests), 2),
        "baseline_ms_per_request": round(1000 * baseline_seconds / total, 2),
        # The same ratio without the sign-in, whose password hashing is slow on purpose.
        "steps_ratio": round(
            (baseline_seconds / total) / (steps_seconds / (total - sign_in_requests)), 3
        ),
    }


def generate(households: int, folder: Path) -> None:
    # Some households have no guardian who decides: generate a few more.
    synthetic_district(folder, households=households + 20)


def run(*, quick: bool) -> list[dict[str, object]]:
    """Every figure of this benchmark, for bench/run.py."""
    return on_both_databases(name="wizard", script=__file__, size=10 if quick else 60, quick=quick)


if __name__ == "__main__":
    command_line(__doc__, generate=generate, measure=measure, run=run, default=200)
