"""The registrar's data quality page, through HTTP: each list finds what the import or
the families left broken and links to where it is fixed; the lists cost the same
number of queries however large the district; long lists are capped with their count."""

from __future__ import annotations

import datetime
import re

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from registration.models import (
    ContactPoint,
    ContactPreference,
    Guardian,
    Household,
    HouseholdGuardian,
    HouseholdStudent,
    School,
    Student,
    StudentGuardian,
)
from tests.conftest import sign_in
from workflow.models import AuditEvent, EnrollmentDecision, Summary
from workflow.quality import LIST_LIMIT
from workflow.summaries import summary_count

URL = "/staff/quality/"


@pytest.fixture
def registrar(client, registrar_user):
    sign_in(client, registrar_user)
    return client


def _section(html: str, anchor: str) -> str:
    """The HTML of one list's section, found by its heading's id."""
    match = re.search(
        rf'<section class="card" aria-labelledby="{anchor}">(.*?)</section>', html, re.S
    )
    assert match, anchor
    return match.group(1)


def _admin_change(model: str, pk: int) -> str:
    return reverse(f"admin:registration_{model}_change", args=[pk])


def test_the_page_is_for_registrars_only(
    client, office_user, finance_user, teacher_user, guardian_user
):
    assert reverse("staff_quality") == URL
    assert client.get(URL).status_code == 302
    for user in (office_user, finance_user, teacher_user, guardian_user):
        client.logout()
        sign_in(client, user)
        assert client.get(URL).status_code == 403, user.email


def test_a_clean_district_has_nothing_to_fix_in_the_sample_lists(registrar):
    page = registrar.get(URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Opted out of everything means" in html
    for anchor in (
        "no-guardian",
        "bounced",
        "opted-out",
        "duplicate-guardians",
        "duplicate-students",
    ):
        assert "None." in _section(html, anchor), anchor


def test_a_household_with_no_working_phone_or_email_is_listed(registrar):
    household = Household.objects.create(sourced_id="hh-broken", street1="1 Lost Ln")
    guardian = Guardian.objects.create(
        sourced_id="par-broken", given_name="Ann", family_name="Lost"
    )
    HouseholdGuardian.objects.create(household=household, guardian=guardian)
    ContactPoint.objects.create(
        guardian=guardian,
        kind=ContactPoint.Kind.EMAIL,
        email="ann@bounce.example",
        bounced_at=timezone.now(),
    )
    with_phone = Household.objects.create(sourced_id="hh-phone", street1="2 Found Ln")
    reachable = Guardian.objects.create(sourced_id="par-ok", given_name="Bo", family_name="Ok")
    HouseholdGuardian.objects.create(household=with_phone, guardian=reachable)
    ContactPoint.objects.create(
        guardian=reachable, kind=ContactPoint.Kind.PHONE, phone="+16505550177"
    )
    home_phone = Household.objects.create(sourced_id="hh-home", phone="+16505550178")

    section = _section(registrar.get(URL).content.decode(), "unreachable")

    assert f'href="{_admin_change("household", household.pk)}"' in section
    assert "1 Lost Ln" in section
    assert "hh-phone" not in section
    assert home_phone.sourced_id not in section
    # The registrar can open the record the link names.
    assert registrar.get(_admin_change("household", household.pk)).status_code == 200


def test_a_student_without_a_guardian_is_listed(registrar):
    astrid = Student.objects.get(sourced_id="stu-009")
    StudentGuardian.objects.filter(student=astrid).delete()

    section = _section(registrar.get(URL).content.decode(), "no-guardian")

    assert f'href="{_admin_change("student", astrid.pk)}"' in section
    assert "Astrid" in section
    assert "Sofía" not in section
    assert registrar.get(_admin_change("student", astrid.pk)).status_code == 200


def test_bounced_email_and_opting_out_of_everything_are_listed(registrar):
    jose = Guardian.objects.get(sourced_id="par-002")
    ContactPoint.objects.filter(guardian=jose, kind=ContactPoint.Kind.EMAIL).update(
        bounced_at=timezone.now() - datetime.timedelta(days=2)
    )
    ngozi = Guardian.objects.get(sourced_id="par-005")
    silent = dict(
        non_emergency_opt_out=True,
        attendance_voice=False,
        attendance_sms=False,
        attendance_email=False,
        general_voice=False,
        general_sms=False,
        general_email=False,
    )
    ContactPreference.objects.update_or_create(guardian=ngozi, defaults=silent)
    # Opted out, but one general channel still on: not "everything".
    adaeze = Guardian.objects.get(sourced_id="par-006")
    ContactPreference.objects.update_or_create(
        guardian=adaeze, defaults={**silent, "general_email": True}
    )
    # Every channel off, but the opt-out not ticked: not "everything" either.
    emeka = Guardian.objects.get(sourced_id="par-007")
    ContactPreference.objects.update_or_create(
        guardian=emeka, defaults={**silent, "non_emergency_opt_out": False}
    )

    html = registrar.get(URL).content.decode()

    bounced = _section(html, "bounced")
    assert f'href="{reverse("staff_guardian", args=[jose.pk])}"' in bounced
    assert "jose.garcia@example.com" in bounced
    opted_out = _section(html, "opted-out")
    assert f'href="{reverse("staff_guardian", args=[ngozi.pk])}"' in opted_out
    assert "Adaeze" not in opted_out
    assert "Emeka" not in opted_out


def test_people_who_look_duplicated_are_listed_side_by_side(registrar):
    jose = Guardian.objects.get(sourced_id="par-002")
    phone = ContactPoint.objects.filter(guardian=jose, kind=ContactPoint.Kind.PHONE).first()
    twin = Guardian.objects.create(
        sourced_id="par-dup", given_name="JOSE ANGEL", family_name="Garcia"
    )
    ContactPoint.objects.create(guardian=twin, kind=ContactPoint.Kind.PHONE, phone=phone.phone)
    # The same name with nothing shared is someone else.
    namesake = Guardian.objects.create(
        sourced_id="par-namesake", given_name="José Ángel", family_name="García"
    )
    ContactPoint.objects.create(
        guardian=namesake, kind=ContactPoint.Kind.EMAIL, email="other.jose@example.com"
    )
    sofia = Student.objects.get(sourced_id="stu-001")
    sofia.birth_date = datetime.date(2018, 4, 2)
    sofia.save(update_fields=["birth_date"])
    copy = Student.objects.create(
        sourced_id="stu-dup",
        given_name="SOFIA",
        family_name="Garcia-Nunez",
        birth_date=sofia.birth_date,
        grade="03",
        school=sofia.school,
    )
    Student.objects.create(
        sourced_id="stu-other-day",
        given_name="Sofía",
        family_name="García Núñez",
        birth_date=datetime.date(2018, 4, 3),
        grade="03",
        school=sofia.school,
    )

    html = registrar.get(URL).content.decode()

    guardians = _section(html, "duplicate-guardians")
    assert f'href="{reverse("staff_guardian", args=[jose.pk])}"' in guardians
    assert f'href="{reverse("staff_guardian", args=[twin.pk])}"' in guardians
    assert "par-namesake" not in guardians
    assert str(phone.phone) in guardians
    students = _section(html, "duplicate-students")
    assert f'href="{_admin_change("student", sofia.pk)}"' in students
    assert f'href="{_admin_change("student", copy.pk)}"' in students
    assert "stu-other-day" not in students


def test_disabled_records_are_left_out(registrar):
    astrid = Student.objects.get(sourced_id="stu-009")
    StudentGuardian.objects.filter(student=astrid).delete()
    Student.objects.filter(pk=astrid.pk).update(enabled=False)

    assert "Astrid" not in _section(registrar.get(URL).content.decode(), "no-guardian")


def _break_records(count: int, tag: str) -> None:
    """``count`` of each kind of broken record."""
    school = School.objects.get(sourced_id="sch-elem")
    for n in range(count):
        household = Household.objects.create(sourced_id=f"hh-{tag}-{n}")
        guardian = Guardian.objects.create(
            sourced_id=f"par-{tag}-{n}", given_name=f"Pat{tag}{n}", family_name="Doe"
        )
        HouseholdGuardian.objects.create(household=household, guardian=guardian)
        ContactPoint.objects.create(
            guardian=guardian,
            kind=ContactPoint.Kind.EMAIL,
            email=f"pat{tag}{n}@example.com",
            bounced_at=timezone.now(),
        )
        twin = Guardian.objects.create(
            sourced_id=f"par-{tag}-{n}-twin", given_name=f"Pat{tag}{n}", family_name="Doe"
        )
        ContactPoint.objects.create(
            guardian=twin, kind=ContactPoint.Kind.EMAIL, email=f"PAT{tag}{n}@example.com"
        )
        ContactPreference.objects.create(
            guardian=twin,
            non_emergency_opt_out=True,
            attendance_voice=False,
            attendance_email=False,
            general_email=False,
        )
        for copy in range(2):
            Student.objects.create(
                sourced_id=f"stu-{tag}-{n}-{copy}",
                given_name=f"Kid{tag}{n}",
                family_name="Doe",
                birth_date=datetime.date(2015, 1, 1),
                grade="04",
                school=school,
            )


@pytest.fixture(autouse=True)
def _checked_on_every_view(settings):
    """Most tests change records and look again at once: every view checks anew."""
    settings.SUMMARY_MAX_AGE_SECONDS = 0


def test_the_number_of_queries_does_not_grow_with_the_district(registrar, settings):
    registrar.get(URL)  # the first count makes the summary's row; later ones update it
    _break_records(2, "a")
    with CaptureQueriesContext(connection) as few:
        assert registrar.get(URL).status_code == 200
    _break_records(20, "b")
    with CaptureQueriesContext(connection) as many:
        page = registrar.get(URL)
    html = page.content.decode()
    assert len(many) == len(few), [q["sql"][:120] for q in many]
    assert "(44)" in _section(html, "duplicate-guardians")  # 22 pairs
    assert "(44)" in _section(html, "duplicate-students")
    assert "(22)" in _section(html, "opted-out")

    # Reading the last check costs the same for 2 broken records as for 22.
    settings.SUMMARY_MAX_AGE_SECONDS = 300
    with CaptureQueriesContext(connection) as read_many:
        assert "(44)" in _section(registrar.get(URL).content.decode(), "duplicate-students")
    _break_records(40, "c")
    summary_count("quality")
    with CaptureQueriesContext(connection) as read_more:
        assert "(124)" in _section(registrar.get(URL).content.decode(), "duplicate-students")
    assert len(read_more) == len(read_many) < len(many)


def test_the_page_has_a_pinned_query_count(registrar, settings, django_assert_max_num_queries):
    _break_records(3, "c")
    with django_assert_max_num_queries(34):  # the lists checked, kept and read
        assert registrar.get(URL).status_code == 200
    settings.SUMMARY_MAX_AGE_SECONDS = 300
    with django_assert_max_num_queries(18):  # the last check read
        assert registrar.get(URL).status_code == 200


def test_the_last_check_is_shown_while_a_worker_checks_again(
    registrar, settings, django_capture_on_commit_callbacks
):
    """The page reads the last check; one older than the maximum age is still shown,
    and a worker is asked, once, to check again."""
    settings.SUMMARY_MAX_AGE_SECONDS = 300
    cache.clear()
    astrid = Student.objects.get(sourced_id="stu-009")
    # Never checked: checked at once.
    html = registrar.get(URL).content.decode()
    assert "Astrid" not in _section(html, "no-guardian")
    assert "Checked on" in html and "more than 5 minutes old" in html

    StudentGuardian.objects.filter(student=astrid).delete()
    with django_capture_on_commit_callbacks(execute=True) as queued:
        html = registrar.get(URL).content.decode()
    assert "Astrid" not in _section(html, "no-guardian")  # checked too recently to show
    assert queued == []

    Summary.objects.update(taken_at=timezone.now() - datetime.timedelta(minutes=6))
    with django_capture_on_commit_callbacks(execute=True) as queued:
        html = registrar.get(URL).content.decode()
        registrar.get(URL)
    assert "Astrid" not in _section(html, "no-guardian")  # the old check, while one runs
    assert len(queued) == 1  # the second view did not ask again
    # The worker's check (run in-process here) is what the next view shows.
    section = _section(registrar.get(URL).content.decode(), "no-guardian")
    assert "Astrid" in section and "(1)" in section
    assert Summary.objects.count() == 1  # only the latest is kept


def test_a_record_removed_since_the_last_check_is_left_out(registrar, settings):
    settings.SUMMARY_MAX_AGE_SECONDS = 300
    astrid = Student.objects.get(sourced_id="stu-009")
    StudentGuardian.objects.filter(student=astrid).delete()
    assert "Astrid" in _section(registrar.get(URL).content.decode(), "no-guardian")
    HouseholdStudent.objects.filter(student=astrid).delete()
    EnrollmentDecision.objects.filter(student=astrid).delete()
    astrid.delete()
    assert "Astrid" not in _section(registrar.get(URL).content.decode(), "no-guardian")


def test_a_long_list_is_capped_and_counted(registrar, monkeypatch, settings):
    school = School.objects.get(sourced_id="sch-elem")
    Student.objects.bulk_create(
        Student(
            sourced_id=f"stu-orphan-{n}",
            given_name=f"Orphan{n:03}",
            family_name="Roe",
            grade="02",
            school=school,
        )
        for n in range(LIST_LIMIT + 5)
    )

    section = _section(registrar.get(URL).content.decode(), "no-guardian")

    assert f"({LIST_LIMIT + 5})" in section
    assert f"Showing the first {LIST_LIMIT} of {LIST_LIMIT + 5}." in section
    assert section.count("/admin/registration/student/") == LIST_LIMIT

    # Lists counted before the limit was lowered show the new limit at once.
    settings.SUMMARY_MAX_AGE_SECONDS = 3600  # the page reads the count above
    monkeypatch.setattr("workflow.quality.LIST_LIMIT", 3)
    section = _section(registrar.get(URL).content.decode(), "no-guardian")
    assert f"Showing the first 3 of {LIST_LIMIT + 5}." in section
    assert section.count("/admin/registration/student/") == 3


def test_opening_the_page_is_audited(registrar, registrar_user):
    astrid = Student.objects.get(sourced_id="stu-009")
    StudentGuardian.objects.filter(student=astrid).delete()

    registrar.get(URL)

    event = AuditEvent.objects.filter(actor=registrar_user, action="list").latest("id")
    assert event.detail["page"] == "data quality"
    assert str(astrid.pk) in event.detail["student_ids"]
    assert event.detail["totals"]["students_without_guardian"] == 1
