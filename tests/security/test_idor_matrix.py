"""Nobody reaches another household's (or another school's) records by changing an id
in a URL.

Every URL pattern of the project that takes an argument is requested with the ids of
household hh-001's objects (its registration, address request and proof, submission
and confirmation, checkouts and receipt, guardians, children's fees; the objects of
the school its children attend), as every role: José (a guardian of hh-001, who may
open them: the control that the ids are right), Siobhan (a guardian of hh-002), a
student of hh-002 and a student of hh-001 itself, office staff of the family's school
and of another school, a teacher, the registrar, finance, and someone not signed in.

Who may use a URL gets the answer ``MATRIX`` gives (the staff URLs take theirs from
``tests/test_staff_url_matrix.py``); everyone else is refused (403, 404 or 405; a
redirect to a sign-in page when not signed in) with GET and with POST, and the
request writes nothing to the database. Finance never sees health data and
teachers never see who has free or reduced-price meals, on any answer. A new URL
with an argument fails ``test_every_url_with_an_argument_is_in_the_matrix`` until
it is added here. The admin (registrars only, every school by design) is covered as
a whole: every admin URL refuses every other role.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test import Client
from django.urls import get_resolver, reverse
from django.utils import timezone
from django.utils.http import int_to_base36

from documents.services import confirmation_render, receipt_render
from payments import local_stripe
from payments.models import Checkout, CheckoutLine, Fee
from payments.services import field_trip_create
from registration.models import ClassSection, Guardian, Student, StudentHealth, User
from tests.conftest import sign_in
from tests.test_staff_url_matrix import MATRIX as STAFF_MATRIX
from tests.test_staff_url_matrix import World, _paid_checkout, _walk, _world
from workflow.models import Submission
from workflow.services import registration_return

ROLES = (
    "guardian",
    "other_guardian",
    "student",
    "own_student",
    "office",
    "other_office",
    "teacher",
    "registrar",
    "finance",
    "anonymous",
)
STAFF_FIXTURES = {
    "office": "office_user",
    "other_office": "other_school_office_user",
    "teacher": "teacher_user",
    "registrar": "registrar_user",
    "finance": "finance_user",
}
# Students with their own sign-in: Zoë (grade 10, household hh-002) and Mateo (grade
# 7, household hh-001: his own household's pages are his guardians', not his).
STUDENT_ACCOUNTS = {"student": "stu-004", "own_student": "stu-002"}
# The roles the staff URL matrix names; the others answer as a guardian does there.
STAFF_MATRIX_ROLES = {"office", "other_office", "registrar", "finance", "teacher", "guardian"}

REFUSED = {403, 404, 405}
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
# Written into hh-001's children's health records and into the signed registration.
HEALTH_MARK = "Bee-sting anaphylaxis EpiPen-4417"
SEES_HEALTH = {"guardian", "office", "registrar"}
# What would tell a teacher that a child has free or reduced-price meals.
MEAL_WORDS = re.compile(r"Free meals|Reduced-price meals|\bwaived\b|\bwaiver", re.IGNORECASE)
# The trip page says whether the trip itself may be waived: a fact about the trip.
TRIP_WAIVABLE_LABEL = "Waived for free or reduced-price meals"


# -- the world ---------------------------------------------------------------------------


@dataclass
class IdorWorld:
    base: World
    submission: Submission
    checkout: Checkout  # paid, with a receipt
    local_checkout: Checkout  # open, on the local TEST checkout page
    users: dict[str, Any] = field(default_factory=dict)


def _student_user(sourced_id: str) -> User:
    student = Student.objects.get(sourced_id=sourced_id)
    student.user = User.objects.create_user(
        username=f"student-{sourced_id}", email=f"{sourced_id}@students.example.org"
    )
    student.save(update_fields=["user"])
    return student.user


def _build(request: Any, campaign: Any, guardian_user: Any, registrar_user: Any) -> IdorWorld:
    base = _world(campaign, guardian_user, registrar_user)
    household = base.household
    # Health on file for both children, and in the signed content staff review.
    for student in Student.objects.filter(householdstudent__household=household):
        StudentHealth.objects.update_or_create(
            student=student,
            defaults={"allergies": HEALTH_MARK, "medications": "", "conditions": ""},
        )
    submission = Submission.objects.get(registration=base.registration)
    content = dict(submission.content)
    content["sections"] = [
        *content["sections"],
        {
            "step": f"child-{base.student.pk}",
            "title": base.student.full_name,
            "rows": [
                {
                    "label": "Allergies",
                    "before": HEALTH_MARK,
                    "after": HEALTH_MARK,
                    "changed": False,
                    "sensitive": True,
                }
            ],
        },
    ]
    Submission.objects.filter(pk=submission.pk).update(content=content)
    submission.refresh_from_db()
    confirmation_render(submission=submission)

    # Mateo has free meals: the teacher's trip for his class is waived for him.
    mateo = Student.objects.get(sourced_id="stu-002")
    Student.objects.filter(pk=mateo.pk).update(meal_eligibility="free")
    teacher = request.getfixturevalue("teacher_user")
    field_trip_create(
        section=ClassSection.objects.get(sourced_id="cls-math-7"),
        title="Science museum",
        event_date=campaign.closes_on,
        amount_cents=1850,
        deadline=campaign.closes_on - datetime.timedelta(days=1),
        actor=teacher,
    )
    checkout = _paid_checkout(base)
    receipt_render(checkout=checkout)
    local_checkout = Checkout.objects.create(
        household=household,
        created_by=guardian_user,
        state=Checkout.State.OPEN,
        total_cents=3500,
        expires_at=timezone.now() + datetime.timedelta(hours=1),
        stripe_session_id=f"cs_{local_stripe.PREFIX}_idor",
        stripe_session_url="http://testserver/payments/test-checkout/",
    )
    # Older than the paid one, which the staff URL matrix finds as the household's first.
    Checkout.objects.filter(pk=local_checkout.pk).update(
        created_at=checkout.created_at - datetime.timedelta(hours=1)
    )
    CheckoutLine.objects.create(
        checkout=local_checkout,
        student=base.student,
        fee=Fee.objects.get(title="Yearbook"),
        amount_cents=3500,
        description="Yearbook",
    )
    return IdorWorld(
        base=base, submission=submission, checkout=checkout, local_checkout=local_checkout
    )


# -- the matrix --------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """``method`` is what the roles in ``allowed`` use, with the answer given there;
    every other role is refused with GET and with POST. ``refused`` widens what a
    refusal may look like (a page about an invalid key, for instance). ``prepare``
    runs before each request, inside the transaction rolled back afterwards."""

    method: str
    allowed: dict[str, int]
    kwargs: Callable[[IdorWorld], dict[str, Any]]
    data: Callable[[IdorWorld], dict[str, Any]] = lambda world: {}
    prepare: Callable[[IdorWorld], None] | None = None
    refused: frozenset[int] = frozenset(REFUSED)


def _registration(world: IdorWorld) -> dict[str, Any]:
    return {"pk": world.base.registration.pk}


def _step(world: IdorWorld) -> dict[str, Any]:
    return {"pk": world.base.registration.pk, "step": "contacts"}


def _contacts(world: IdorWorld) -> dict[str, Any]:
    """The contacts step as José would post it: an email for each guardian."""
    data: dict[str, Any] = {f"registration_{world.base.registration.pk}-current_step": "contacts"}
    for guardian in Guardian.objects.filter(householdguardian__household=world.base.household):
        data[f"contacts-g{guardian.pk}_email"] = f"{guardian.sourced_id}@example.com"
    return data


def _reopen(world: IdorWorld) -> None:
    """Staff return the registration, so that its wizard is open again."""
    registration_return(
        registration=world.base.registration,
        actor=world.users["registrar"],
        comment="Please check the phone numbers.",
        step="contacts",
    )


def _confirmation(world: IdorWorld) -> dict[str, Any]:
    return {"pk": world.base.registration.pk, "version": world.submission.version}


def _proof(world: IdorWorld) -> dict[str, Any]:
    return {"pk": world.base.registration.pk, "proof_pk": world.base.proof.pk}


def _household(world: IdorWorld) -> dict[str, Any]:
    return {"pk": world.base.household.pk}


def _checkout(world: IdorWorld) -> dict[str, Any]:
    return {"pk": world.checkout.pk}


def _local_session(world: IdorWorld) -> dict[str, Any]:
    return {"session_id": world.local_checkout.stripe_session_id}


def _email_key(world: IdorWorld) -> dict[str, Any]:
    """A made-up confirmation key: a key is the only thing that confirms an address."""
    return {"key": "MQ:1tXyZq:not-a-signature-of-anything"}


def _reset_key(world: IdorWorld) -> dict[str, Any]:
    """José's account with a made-up token."""
    return {"uidb36": int_to_base36(world.base.guardian.user_id), "key": "cz5v-0123456789abcdef"}


def _new_password(world: IdorWorld) -> dict[str, Any]:
    return {"password1": "taken-over-account-9", "password2": "taken-over-account-9"}


def _cart(world: IdorWorld) -> dict[str, Any]:
    return {"lines": [f"{world.base.student.pk}:1"]}


OWNER = "guardian"
KEY_PAGE = frozenset({200, 302, 404, 405})

MATRIX: dict[str, Entry] = {
    # The wizard and the pages around it: hh-001's guardians only.
    "registration_resume": Entry("GET", {OWNER: 302}, _registration, prepare=_reopen),
    "registration_step": Entry("POST", {OWNER: 302}, _step, _contacts, prepare=_reopen),
    "registration_status": Entry("GET", {OWNER: 200}, _registration),
    "registration_confirmation": Entry("GET", {OWNER: 200}, _confirmation),
    "registration_proof": Entry("GET", {OWNER: 200}, _proof),
    # Fees, payments and receipts: the household's guardians; receipts also finance
    # and the registrar (every school).
    "guardian_fees_household": Entry("POST", {OWNER: 200}, _household, _cart),
    "checkout_status": Entry("GET", {OWNER: 200}, _checkout),
    "test_checkout": Entry("GET", {OWNER: 200}, _local_session, lambda world: {"action": "pay"}),
    "receipt_download": Entry("GET", {OWNER: 200, "finance": 200, "registrar": 200}, _checkout),
    # Keys sent by email: without the real key nothing happens to José's account,
    # whoever asks.
    "account_confirm_email": Entry("POST", {}, _email_key, refused=KEY_PAGE),
    "account_reset_password_from_key": Entry(
        "POST", {}, _reset_key, _new_password, refused=KEY_PAGE
    ),
}


def _from_staff_matrix(name: str) -> Entry:
    staff = STAFF_MATRIX[name]
    allowed = {
        role: code
        for role, code in staff.answers.items()
        if role in STAFF_MATRIX_ROLES and code not in (403, 404)
    }

    def kwargs(world: IdorWorld) -> dict[str, Any]:
        return staff.kwargs(world.base)

    def data(world: IdorWorld) -> dict[str, Any]:
        return staff.data(world.base)

    return Entry(staff.method, allowed, kwargs, data)


# -- the URLs ------------------------------------------------------------------------------


def _has_argument(route: str) -> bool:
    return "<" in route or "(?P" in route


def routes_with_arguments() -> list[tuple[str, str | None]]:
    """(route, name) of every URL pattern with an argument, nested includes walked."""
    return [(r, n) for r, n in _walk(get_resolver().url_patterns, "", "") if _has_argument(r)]


def _entries() -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    for route, name in routes_with_arguments():
        if route.startswith("admin/") or name is None:
            continue
        if name in MATRIX:
            entries[name] = MATRIX[name]
        elif route.startswith("staff/") and name in STAFF_MATRIX:
            entries[name] = _from_staff_matrix(name)
    return entries


def _admin_urls(world: IdorWorld) -> list[str]:
    """Every admin URL with an argument, filled with hh-001's objects where the
    model has them (the first row otherwise)."""
    household = world.base.household
    values = {
        "app_label": "registration",
        "url": "registration/household/",
        "content_type_id": str(ContentType.objects.get_for_model(household).pk),
        "id": str(world.base.guardian.user_id),
    }
    urls = []
    for route, _name in routes_with_arguments():
        if not route.startswith("admin/"):
            continue
        object_id = str(household.pk)
        parts = route.split("/")
        model = _admin_model(parts[1], parts[2]) if len(parts) > 3 else None
        if model is not None and model._meta.label != "registration.Household":
            first = model._default_manager.order_by("pk").first()
            object_id = str(first.pk) if first is not None else "1"
        url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values.get(m.group(1), object_id), route)
        url = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values.get(m.group(1), object_id), url)
        urls.append("/" + url.rstrip("$"))
    return urls


def _admin_model(app_label: str, model_name: str) -> Any:
    try:
        return apps.get_model(app_label, model_name)
    except (LookupError, ValueError):
        return None


# -- requests ----------------------------------------------------------------------------


def _rows_written() -> int:
    """Rows this connection inserted, updated or deleted so far (sessions live in the
    cache in these tests, so a refused request should write none)."""
    if connection.vendor == "sqlite":
        return int(connection.connection.total_changes)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) "
            "FROM pg_stat_xact_all_tables"
        )
        return int(cursor.fetchone()[0])


@dataclass
class Answer:
    status: int
    location: str
    body: str
    rows_written: int


def _request(
    client: Client,
    method: str,
    url: str,
    data: dict[str, Any],
    prepare: Callable[[], None] | None = None,
) -> Answer:
    """One request whose writes are counted, then rolled back, so that every request
    sees the same world."""
    with transaction.atomic():
        if prepare is not None:
            prepare()
        before = _rows_written()
        response = client.post(url, data) if method == "POST" else client.get(url)
        streamed = response.streaming
        body = b"".join(response.streaming_content) if streamed else response.content
        written = _rows_written() - before
        transaction.set_rollback(True)
    text = "" if body.startswith(b"%PDF") else body.decode("utf-8", "replace")
    return Answer(response.status_code, response.get("Location", ""), text, written)


def _leaks(role: str, answer: Answer) -> list[str]:
    problems = []
    if role not in SEES_HEALTH and HEALTH_MARK in answer.body:
        problems.append("shows health data")
    if role == "teacher" and MEAL_WORDS.search(answer.body.replace(TRIP_WAIVABLE_LABEL, "")):
        problems.append("tells the teacher about meal eligibility")
    return problems


def _refusal_problem(role: str, answer: Answer, login: str, refused: frozenset[int]) -> str:
    if role == "anonymous":
        if answer.status == 302 and answer.location.startswith(login):
            return ""
        if answer.status in refused:
            return ""
        return f"{answer.status} {answer.location}, expected a redirect to {login}"
    if answer.status in refused:
        return ""
    return f"{answer.status} {answer.location}, expected one of {sorted(refused)}"


@pytest.fixture
def idor_world(request, settings, monkeypatch, campaign, guardian_user, registrar_user):
    # Sessions in the cache: a refused request then writes nothing to the database.
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    settings.STRIPE_MODE = "local"
    # Rendering is not what is tested here: every PDF is the same small file.
    monkeypatch.setattr(
        "documents.services.pdf_from_html", lambda html: b"%PDF-1.7\n% a test PDF\n%%EOF\n"
    )
    world = _build(request, campaign, guardian_user, registrar_user)
    world.users["registrar"] = registrar_user
    return world


def _client_of(request: Any, role: str) -> Client:
    client = Client()
    if role == "anonymous":
        return client
    if role in STUDENT_ACCOUNTS:
        client.force_login(_student_user(STUDENT_ACCOUNTS[role]))
    elif role == "guardian":
        sign_in(client, request.getfixturevalue("guardian_user"))
    elif role == "other_guardian":
        sign_in(client, request.getfixturevalue("other_guardian_user"))
    else:
        sign_in(client, request.getfixturevalue(STAFF_FIXTURES[role]))
    return client


# -- the tests ---------------------------------------------------------------------------


def test_every_url_with_an_argument_is_in_the_matrix():
    routes = routes_with_arguments()
    outside_admin = [(r, n) for r, n in routes if not r.startswith("admin/")]
    unnamed = [r for r, n in outside_admin if n is None]
    assert not unnamed, f"URLs with an argument and no name: {unnamed}"
    names = {n for _r, n in outside_admin}
    covered = set(_entries())
    missing = sorted(names - covered)
    assert not missing, f"URLs with an argument that the IDOR matrix does not request: {missing}"
    stale = sorted(set(MATRIX) - names)
    assert not stale, f"MATRIX names URLs that no longer exist: {stale}"


def test_the_walk_finds_every_kind_of_url_with_an_argument():
    names = {n for _r, n in routes_with_arguments()}
    for name in (
        "registration_step",
        "registration_proof",
        "receipt_download",
        "test_checkout",
        "staff_address_proof",
        "staff_payment_refund",
        "admin:registration_household_change",
        "account_reset_password_from_key",
    ):
        assert name in names, name


@pytest.mark.parametrize("role", ROLES)
def test_no_role_reaches_another_households_objects(request, role, idor_world):
    world = idor_world
    client = _client_of(request, role)
    wrong = []
    for name, entry in sorted(_entries().items()):
        url = reverse(name, kwargs=entry.kwargs(world))
        data = entry.data(world)
        prepare = (lambda e=entry: e.prepare(world)) if entry.prepare else None
        if role in entry.allowed:
            answer = _request(client, entry.method, url, data, prepare)
            if answer.status != entry.allowed[role]:
                wrong.append(
                    f"{entry.method} {url} ({name}): {answer.status} {answer.location}, "
                    f"expected {entry.allowed[role]}"
                )
            wrong += [f"{entry.method} {url} ({name}) {p}" for p in _leaks(role, answer)]
            continue
        for method in ("GET", "POST"):
            answer = _request(client, method, url, data, prepare)
            problem = _refusal_problem(role, answer, LOGIN, entry.refused)
            if problem:
                wrong.append(f"{method} {url} ({name}): {problem}")
            if answer.rows_written:
                wrong.append(f"{method} {url} ({name}): wrote {answer.rows_written} rows")
            wrong += [f"{method} {url} ({name}) {p}" for p in _leaks(role, answer)]
    assert not wrong, f"{role}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("role", [r for r in ROLES if r != "registrar"])
def test_the_admin_refuses_everyone_but_registrars(request, role, idor_world):
    client = _client_of(request, role)
    urls = _admin_urls(idor_world)
    assert len(urls) > 50
    wrong = []
    for url in urls:
        for method in ("GET", "POST"):
            answer = _request(client, method, url, {"post": "yes", "password1": "x" * 12})
            refused = answer.status in REFUSED or (
                answer.status == 302 and answer.location.startswith(ADMIN_LOGIN)
            )
            if not refused:
                wrong.append(f"{method} {url}: {answer.status} {answer.location}")
            if answer.rows_written:
                wrong.append(f"{method} {url}: wrote {answer.rows_written} rows")
    assert not wrong, f"{role}:\n" + "\n".join(wrong)


def test_the_markers_are_on_the_pages_that_may_show_them(request, idor_world):
    """The health data and the waiver the matrix looks for are really there for the
    roles that may see them, so that their absence elsewhere means something."""
    world = idor_world
    office = _client_of(request, "office")
    review = _request(
        office, "GET", reverse("staff_registration", args=[world.base.registration.pk]), {}
    )
    assert review.status == 200 and HEALTH_MARK in review.body
    finance = _client_of(request, "finance")
    trip = Fee.objects.get(title="Science museum")
    page = _request(finance, "GET", reverse("staff_field_trip", args=[trip.pk]), {})
    assert page.status == 200 and MEAL_WORDS.search(page.body.replace(TRIP_WAIVABLE_LABEL, ""))


def test_the_write_count_sees_what_an_allowed_post_writes(request, idor_world):
    """The control for "wrote nothing": José saving a step of his own wizard."""
    world = idor_world
    entry = MATRIX["registration_step"]
    answer = _request(
        _client_of(request, "guardian"),
        "POST",
        reverse("registration_step", kwargs=entry.kwargs(world)),
        entry.data(world),
        lambda: _reopen(world),
    )
    assert answer.status == 302 and answer.rows_written > 0
