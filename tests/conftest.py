"""Shared fixtures: the sample district from tests/data/roster and the people who use it.

The actors are named once here and reused by every test: a guardian, a guardian of
another household, office staff of a school and of another school, a teacher, the
registrar and finance.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from registration.mfa import totp_code, totp_enrol, totp_secret
from registration.models import Guardian, School, StaffProfile
from registration.services import guardian_account_create, roster_import, staff_account_create

DATA = Path(__file__).parent / "data"
ROSTER = DATA / "roster"
PASSWORD = "a-long-test-password"


@pytest.fixture
def roster_path() -> Path:
    return ROSTER


@pytest.fixture
def sample_district(db):
    report = roster_import(path=ROSTER)
    assert report.ok, [str(p) for p in report.problems.errors]
    return report


def _guardian_user(sourced_id: str, email: str):
    guardian = Guardian.objects.get(sourced_id=sourced_id)
    return guardian_account_create(guardian=guardian, email=email, password=PASSWORD)


def sign_in(client, user, password: str = PASSWORD):
    """Sign in through the pages, answering the second-factor step when there is one.
    Returns the response that ends the sign-in (a redirect into the product)."""
    response = client.post(reverse("account_login"), {"login": user.email, "password": password})
    assert response.status_code == 302, response.content[:300]
    if response.url == reverse("mfa_authenticate"):
        code = totp_code(totp_secret(user))
        response = client.post(reverse("mfa_authenticate"), {"code": code})
        assert response.status_code == 302, response.content[:500]
    return response


def _staff_user(email: str, role: str, school_ids: tuple[str, ...] = (), roster_id: str = ""):
    profile = StaffProfile.objects.get(sourced_id=roster_id) if roster_id else None
    given, family = (
        (profile.given_name, profile.family_name)
        if profile
        else (email.split("@")[0].split(".")[0].title(), "Staff")
    )
    staff = staff_account_create(
        email=email,
        role=role,
        given_name=given,
        family_name=family,
        password=PASSWORD,
        schools=School.objects.filter(sourced_id__in=school_ids),
        profile=profile,
    )
    totp_enrol(user=staff.user)
    return staff.user


@pytest.fixture
def guardian_user(sample_district):
    """José Ángel García: father of Sofía (elementary) and Mateo (middle), household hh-001."""
    return _guardian_user("par-002", "jose.garcia@example.com")


@pytest.fixture
def other_guardian_user(sample_district):
    """Siobhan O'Brien: mother of Liam and Zoë, household hh-002."""
    return _guardian_user("par-003", "siobhan.obrien@example.com")


@pytest.fixture
def office_user(sample_district):
    """Carmen Ortiz, office staff of Las Lomas Elementary (from the roster)."""
    return _staff_user(
        "carmen.ortiz@riverside.example.org", StaffProfile.Role.OFFICE, roster_id="adm-001"
    )


@pytest.fixture
def other_school_office_user(sample_district):
    """Office staff of Mission Ridge High School only."""
    return _staff_user(
        "high.office@riverside.example.org", StaffProfile.Role.OFFICE, school_ids=("sch-high",)
    )


@pytest.fixture
def teacher_user(sample_district):
    """Daniel Ramírez, who teaches Math 6 and Math 7 at Sequoia Middle School."""
    return _staff_user(
        "daniel.ramirez@riverside.example.org", StaffProfile.Role.TEACHER, roster_id="tch-002"
    )


@pytest.fixture
def registrar_user(sample_district):
    return _staff_user("registrar@riverside.example.org", StaffProfile.Role.REGISTRAR)


@pytest.fixture
def finance_user(sample_district):
    return _staff_user("finance@riverside.example.org", StaffProfile.Role.FINANCE)


@pytest.fixture(autouse=True)
def empty_cache():
    """Rate limits and used TOTP codes live in the cache: start each test with none."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def default_language():
    """A request in another language leaves that language active in the thread, and
    the next test of the same worker would start in it: each test starts in the
    default language instead."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def private_files(settings, tmp_path):
    """Proofs and confirmations go to a folder of the test's own."""
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    return settings.PRIVATE_MEDIA_ROOT


@pytest.fixture
def campaign(sample_district, registrar_user):
    """Registration for 2027–28, running today, opened by the registrar, with one
    required acknowledgement and one optional one."""
    import datetime

    from django.utils import timezone

    from registration.models import AcademicSession
    from workflow.services import acknowledgement_save, campaign_open, campaign_save

    today = timezone.localdate()
    created = campaign_save(
        school_year=AcademicSession.objects.get(sourced_id="sy-2028"),
        opens_on=today - datetime.timedelta(days=1),
        closes_on=today + datetime.timedelta(days=30),
        fees_before_submit=False,
        approve_with_open_address_request=False,
        actor=registrar_user,
    )
    acknowledgement_save(
        campaign=created,
        key="handbook",
        texts={
            "title_en": "Family handbook",
            "body_en": "Attendance, behaviour and safety rules.",
            "title_es": "Manual para familias",
            "body_es": "Reglas de asistencia, conducta y seguridad.",
            "title_zh": "家庭手册",
            "body_zh": "出勤、行为和安全规定。",
        },
        required=True,
        position=1,
        actor=registrar_user,
    )
    acknowledgement_save(
        campaign=created,
        key="photo-day",
        texts={
            "title_en": "Photo day",
            "body_en": "Class photos are taken in September.",
            "title_es": "Día de fotos",
            "body_es": "Las fotos de clase se toman en septiembre.",
            "title_zh": "拍照日",
            "body_zh": "班级照在九月拍摄。",
        },
        required=False,
        position=2,
        actor=registrar_user,
    )
    campaign_open(campaign=created, actor=registrar_user)
    return created


def pytest_collection_modifyitems(config, items):
    """Tests marked ``postgresql`` race real row locks (``select_for_update``) between
    threads, which SQLite does not have. ``make test`` runs the suite twice, and they
    run in the PostgreSQL pass; the SQLite pass leaves them out, and says so."""
    from django.conf import settings

    if "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        return
    kept, routed = [], []
    for item in items:
        (routed if item.get_closest_marker("postgresql") else kept).append(item)
    if routed:
        config.hook.pytest_deselected(items=routed)
        items[:] = kept
        config._postgresql_routed = len(routed)


def pytest_terminal_summary(terminalreporter, config):
    routed = getattr(config, "_postgresql_routed", 0)
    if routed:
        terminalreporter.write_line(
            f"{routed} tests need PostgreSQL and run in the PostgreSQL pass "
            "(make pytest-postgres), not on SQLite."
        )
