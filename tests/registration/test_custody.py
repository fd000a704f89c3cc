"""Custody notes: written by registrars and by the office staff of the child's school,
encrypted at rest, audited without their text, and kept by roster imports."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from registration.models import Guardian, School, Student, StudentGuardian
from registration.services import roster_import
from tests.conftest import sign_in
from workflow.models import AuditEvent

NOTE = "Court order of 3 March 2026: Mr. Okafor may not pick Chidi up.\nCall the mother."


@pytest.fixture
def ngozi():
    """Ngozi raises Chidi (Las Lomas, the office user's school) and is a grandparent
    of Amara, who now attends Mission Ridge High."""
    Student.objects.filter(sourced_id="stu-006").update(
        school=School.objects.get(sourced_id="sch-high")
    )
    return Guardian.objects.get(sourced_id="par-005")


def _link(guardian: Guardian, student: str) -> StudentGuardian:
    return StudentGuardian.objects.get(guardian=guardian, student__sourced_id=student)


def _stored(link: StudentGuardian) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT custody_note FROM {StudentGuardian._meta.db_table} WHERE id = %s", [link.pk]
        )
        return cursor.fetchone()[0]


def _post(client, link: StudentGuardian, note: str):
    return client.post(
        reverse("staff_custody_note", args=[link.pk]), {f"custody-{link.pk}-note": note}
    )


def test_office_staff_write_a_note_kept_encrypted_and_audited_without_its_text(
    client, office_user, ngozi
):
    chidi = _link(ngozi, "stu-005")
    assert chidi.custody_note is None and _stored(chidi) is None  # as the roster left it
    sign_in(client, office_user)
    page = client.get(reverse("staff_guardian", args=[ngozi.pk])).content.decode()
    assert "Custody note for Chidi Okafor" in page
    assert "Amara" not in page  # another school's child: no form, no name

    response = _post(client, chidi, NOTE)
    assert response.status_code == 302
    assert response.url == reverse("staff_guardian", args=[ngozi.pk]) + f"#custody-{chidi.pk}"
    chidi.refresh_from_db()
    assert chidi.custody_note == NOTE.strip()
    stored = _stored(chidi)
    assert stored and "Okafor" not in stored and "Court" not in stored  # a token
    event = AuditEvent.objects.get(action="update", object_type="registration.student")
    assert event.object_id == str(chidi.student_id) and event.actor == office_user
    assert event.detail == {"field": "custody_note", "guardian": ngozi.pk, "note": "written"}
    assert "Okafor may not" not in str(AuditEvent.objects.values_list("detail", flat=True))

    page = client.get(response.url).content.decode()
    assert "Custody note for Chidi Okafor saved." in page
    assert "Mr. Okafor may not pick Chidi up." in page  # in the textarea, to read and edit


def test_saving_the_same_note_again_changes_nothing(client, registrar_user, ngozi):
    chidi = _link(ngozi, "stu-005")
    sign_in(client, registrar_user)
    _post(client, chidi, NOTE)
    token = _stored(chidi)
    page = client.get(_post(client, chidi, NOTE + "  ").url).content.decode()
    assert "did not change" in page
    assert _stored(chidi) == token
    assert AuditEvent.objects.filter(action="update").count() == 1


def test_a_cleared_note_is_still_a_token(client, registrar_user, ngozi):
    chidi = _link(ngozi, "stu-005")
    sign_in(client, registrar_user)
    _post(client, chidi, NOTE)
    _post(client, chidi, "")
    chidi.refresh_from_db()
    assert chidi.custody_note == ""
    assert _stored(chidi)  # not NULL: whether a note was ever written is not in clear
    assert (
        AuditEvent.objects.filter(action="update").order_by("pk").last().detail["note"] == "cleared"
    )


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("No pick-up by the father\x07", "invisible control characters"),
        ("x" * 2001, "at most 2000 characters"),
    ],
)
def test_a_refused_note_keeps_what_was_typed_next_to_its_error(
    client, registrar_user, ngozi, typed, message
):
    chidi = _link(ngozi, "stu-005")
    sign_in(client, registrar_user)
    response = _post(client, chidi, typed)
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert f'id="id_custody-{chidi.pk}-note_error"' in html  # next to its field
    assert typed.replace("\x07", "")[:40] in html.replace("&#x27;", "'")
    chidi.refresh_from_db()
    assert chidi.custody_note is None
    assert not AuditEvent.objects.filter(action="update").exists()


def test_another_schools_office_cannot_write_a_note(
    client, office_user, other_school_office_user, ngozi
):
    chidi, amara = _link(ngozi, "stu-005"), _link(ngozi, "stu-006")
    sign_in(client, office_user)
    assert _post(client, amara, NOTE).status_code == 404  # Amara is at Mission Ridge
    client.logout()
    sign_in(client, other_school_office_user)
    assert _post(client, chidi, NOTE).status_code == 404
    assert _post(client, amara, "Lives with her grandmother.").status_code == 302
    chidi.refresh_from_db()
    amara.refresh_from_db()
    assert chidi.custody_note is None
    assert amara.custody_note == "Lives with her grandmother."


@pytest.mark.parametrize("role", ["teacher_user", "finance_user", "guardian_user"])
def test_teachers_finance_and_families_neither_write_nor_read_notes(
    client, registrar_user, ngozi, role, request
):
    chidi = _link(ngozi, "stu-005")
    sign_in(client, registrar_user)
    _post(client, chidi, NOTE)
    client.logout()
    sign_in(client, request.getfixturevalue(role))
    assert _post(client, chidi, "Nothing").status_code in (403, 404)
    assert client.get(reverse("staff_guardian", args=[ngozi.pk])).status_code in (403, 404)
    chidi.refresh_from_db()
    assert chidi.custody_note == NOTE.strip()


def test_a_roster_import_keeps_the_notes(client, registrar_user, ngozi, roster_path):
    chidi = _link(ngozi, "stu-005")
    sign_in(client, registrar_user)
    _post(client, chidi, NOTE)
    report = roster_import(path=roster_path)
    assert report.ok
    chidi.refresh_from_db()
    assert chidi.custody_note == NOTE.strip()


def test_a_key_rotation_reencrypts_the_notes(client, registrar_user, ngozi, settings):
    old, new = settings.FIELD_ENCRYPTION_KEYS[0], Fernet.generate_key().decode()
    chidi = _link(ngozi, "stu-005")
    sign_in(client, registrar_user)
    _post(client, chidi, NOTE)
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    out = StringIO()
    call_command("reencrypt_fields", stdout=out)
    assert "registration.StudentGuardian: " in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = [new]
    chidi.refresh_from_db()
    assert chidi.custody_note == NOTE.strip()
