"""Children's health notes are encrypted at rest (history included), stay readable
while keys rotate, and ``reencrypt_fields`` moves them to the new key."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.exceptions import FieldError
from django.core.management import CommandError, call_command
from django.db import connection

from config.encryption import UndecryptableValue
from registration.mfa import totp_enrol, totp_secret
from registration.models import Student, StudentHealth, User

OLD, NEW = "old-field-key-for-tests", "new-field-key-for-tests"


def stored(model, column: str, pk: int, pk_column: str = "id") -> str:
    """The value as the database holds it, bypassing the model field."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {model._meta.db_table} WHERE {pk_column} = %s", [pk])
        return cursor.fetchone()[0]


@pytest.fixture
def health(sample_district, settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    student = Student.objects.order_by("pk").first()
    row = StudentHealth.objects.create(
        student=student, allergies="Peanuts", medications="Inhaler", conditions="Asthma"
    )
    row.allergies = "Peanuts, sesame"
    row.save()
    return row


def read_back(row: StudentHealth) -> tuple[str, ...]:
    fresh = StudentHealth.objects.get(pk=row.pk)
    history = [(h.allergies, h.conditions) for h in fresh.history.order_by("history_id")]
    return (fresh.allergies, fresh.medications, fresh.conditions, *sum(history, ()))


def test_the_database_holds_ciphertext_never_the_notes(health):
    for column, clear in [("allergies", "Peanuts, sesame"), ("medications", "Inhaler")]:
        raw = stored(StudentHealth, column, health.pk)
        assert clear not in raw and "Peanut" not in raw
        assert raw.startswith("gAAAAA")  # a Fernet token
    history_model = StudentHealth.history.model
    for record in StudentHealth.history.filter(id=health.pk):
        raw = stored(history_model, "allergies", record.history_id, pk_column="history_id")
        assert "Peanut" not in raw and raw.startswith("gAAAAA")
    # A queryset update is encrypted like a save.
    StudentHealth.objects.filter(pk=health.pk).update(medications="Inhaler")
    assert stored(StudentHealth, "medications", health.pk).startswith("gAAAAA")
    assert read_back(health) == (
        "Peanuts, sesame",
        "Inhaler",
        "Asthma",
        "Peanuts",
        "Asthma",
        "Peanuts, sesame",
        "Asthma",
    )


def test_equal_notes_are_stored_differently(health):
    student = Student.objects.exclude(pk=health.student_id).first()
    other = StudentHealth.objects.create(student=student, conditions="Asthma")
    assert stored(StudentHealth, "conditions", other.pk) != stored(
        StudentHealth, "conditions", health.pk
    )
    # An empty note is encrypted too: the table does not tell who has none.
    assert stored(StudentHealth, "allergies", other.pk).startswith("gAAAAA")
    assert StudentHealth.objects.get(pk=other.pk).allergies == ""


def test_the_database_cannot_be_asked_to_search_the_notes(health):
    with pytest.raises(FieldError):
        list(StudentHealth.objects.filter(allergies="Peanuts, sesame"))
    with pytest.raises(FieldError):
        list(StudentHealth.objects.filter(conditions__icontains="asth"))
    assert StudentHealth.objects.filter(allergies__isnull=False).count() == 1


def test_rows_written_with_the_old_key_read_after_a_new_key_is_put_first(health, settings):
    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]
    assert read_back(health)[:3] == ("Peanuts, sesame", "Inhaler", "Asthma")
    health.refresh_from_db()
    health.medications = "Inhaler, twice a day"
    health.save()
    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    # The row written after the rotation is under the new key; the old row is not.
    assert StudentHealth.objects.get(pk=health.pk).medications == "Inhaler, twice a day"
    with pytest.raises(UndecryptableValue):
        list(health.history.all())


def test_reencrypt_makes_old_rows_readable_with_the_new_key_alone(health, settings):
    staff = User.objects.create_user(username="nurse", email="nurse@example.org")
    secret = totp_enrol(user=staff)
    before = read_back(health)

    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(UndecryptableValue):
        StudentHealth.objects.get(pk=health.pk)

    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]
    out = StringIO()
    call_command("reencrypt_fields", "--batch-size", "2", stdout=out)
    report = out.getvalue()
    # 3 notes of the row, 2 history rows of 3 notes each, the TOTP secret.
    assert "registration.StudentHealth: 1 rows, 3 values re-encrypted" in report
    assert "registration.HistoricalStudentHealth: 2 rows, 6 values re-encrypted" in report
    assert "mfa.Authenticator: 1 rows, 1 values re-encrypted" in report
    assert "Re-encrypted 10 values" in report

    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    assert read_back(health) == before
    assert totp_secret(staff) == secret

    again = StringIO()
    call_command("reencrypt_fields", stdout=again)
    assert "Re-encrypted 0 values; 10 were already under the first key." in again.getvalue()


def test_reencrypt_reports_values_no_key_decrypts(health, settings):
    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(CommandError, match="3 rows hold values no key"):
        call_command("reencrypt_fields", stdout=StringIO())
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    assert read_back(health)[0] == "Peanuts, sesame"  # left as they were
