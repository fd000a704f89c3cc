"""A family's answers are encrypted at rest: the wizard's drafts, the signed submission
and the session that caches them hold no health note in clear, while the wizard, the
review, the confirmation, staff review and approval read them as typed; old rows stay
readable while keys rotate, ``reencrypt_fields`` moves them to the new key, and the
migration encrypts existing rows and decrypts them when reversed.

Actors from tests/conftest.py: José of household hh-001 and the registrar.
"""

from __future__ import annotations

import importlib
import io
import json
import zlib
from io import StringIO
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core import signing
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from config.encryption import UndecryptableValue
from documents.models import Confirmation
from registration.models import Guardian, StudentHealth
from tests.conftest import sign_in
from tests.workflow.test_wizard import _jose_answers, _sign, _student, _walk_to
from tests.workflow.wizard_walk import WizardWalk
from workflow.models import Registration, RegistrationStep, Submission
from workflow.services import registration_approve, registration_step_save

OLD, NEW = "old-field-key-for-tests", "new-field-key-for-tests"
# What José types about Sofía (stu-001): none of it is on file.
HEALTH = {
    "allergies": "Anaphylaxis to cashews",
    "medications": "EpiPen Jr in the office",
    "conditions": "Type 1 diabetes",
}
SECRETS = ("cashew", "EpiPen", "diabetes")


def _raw(table: str, column: str, pk: int) -> str:
    """A value as the database holds it, bypassing the model field."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def _assert_sealed(raw: str) -> None:
    assert not any(secret in raw for secret in SECRETS), raw[:200]
    assert raw.startswith("gAAAAA"), raw[:200]  # a Fernet token, not JSON


def _jose_signs_with_health_notes(client: Client, capture: Any) -> Registration:
    wizard = WizardWalk(client, Registration.objects.get(household__sourced_id="hh-001"))
    answers = _jose_answers()
    answers[f"child-{_student('stu-001').pk}"] = HEALTH
    page = _walk_to(wizard, "review", answers)
    for text in HEALTH.values():
        assert text in page.html  # the review shows what was typed
    done = _sign(wizard, page, "José Ángel García", capture)
    assert "Submitted" in done.html
    return Registration.objects.get(household__sourced_id="hh-001")


def test_drafts_submission_and_session_hold_no_health_note_in_clear(
    client, guardian_user, campaign, registrar_user, django_capture_on_commit_callbacks
):
    sign_in(client, guardian_user)
    registration = _jose_signs_with_health_notes(client, django_capture_on_commit_callbacks)

    sofia = f"child-{_student('stu-001').pk}"
    drafts = {d.step: d for d in RegistrationStep.objects.filter(registration=registration)}
    assert drafts[sofia].answers["health"] == HEALTH
    assert drafts[sofia].data[f"{sofia}-allergies"] == [HEALTH["allergies"]]
    for draft in drafts.values():
        for column in ("data", "answers"):
            _assert_sealed(_raw("workflow_registrationstep", column, draft.pk))
    submission = Submission.objects.get(registration=registration)
    shown = {row["after"] for s in submission.content["sections"] for row in s["rows"]}
    assert set(HEALTH.values()) <= shown
    _assert_sealed(_raw("workflow_submission", "content", submission.pk))

    # The session caches the drafts and the reviewed content: encrypted as well.
    session = Session.objects.get(session_key=client.session.session_key)
    payload = session.session_data.split(":")[0]
    decoded = signing.b64_decode(payload.lstrip(".").encode())
    _assert_sealed((zlib.decompress(decoded) if payload.startswith(".") else decoded).decode())
    assert client.session["_auth_user_id"] == str(guardian_user.pk)

    # The confirmation, staff review and approval read the notes as typed.
    confirmation = Confirmation.objects.get(submission=submission)
    reader = PdfReader(io.BytesIO(confirmation.pdf.open("rb").read()))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert all(note in text for note in HEALTH.values()), text
    registrar = Client()
    sign_in(registrar, registrar_user)
    html = registrar.get(reverse("staff_registration", args=[registration.pk])).content.decode()
    assert all(note in html for note in HEALTH.values())
    registration_approve(registration=registration, actor=registrar_user)
    health = StudentHealth.objects.get(student__sourced_id="stu-001")
    assert (health.allergies, health.medications, health.conditions) == tuple(HEALTH.values())


def test_the_database_cannot_be_asked_to_look_inside_the_answers(campaign, guardian_user):
    registration = Registration.objects.get(household__sourced_id="hh-001")
    registration_step_save(
        registration=registration,
        step="emergency",
        data={},
        answers={"contacts": []},
        unchanged=False,
        user=guardian_user,
    )
    with pytest.raises(FieldError):
        list(RegistrationStep.objects.filter(answers__contacts=[]))
    with pytest.raises(FieldError):
        list(RegistrationStep.objects.filter(data__contains="x"))
    with pytest.raises(FieldError):
        list(Submission.objects.filter(content__sections__0__step="contacts"))
    assert RegistrationStep.objects.filter(answers__isnull=False).count() == 1


CONTENT = {"sections": [{"rows": [{"after": HEALTH["conditions"]}]}]}


def _signed(registration: Registration) -> Submission:
    return Submission.objects.create(
        registration=registration,
        version=1,
        guardian=Guardian.objects.get(sourced_id="par-002"),
        signed_name="José",
        signed_at=timezone.now(),
        language="en",
        content=CONTENT,
        content_sha256="-",
    )


def _steps_saved(registration: Registration, user: Any) -> RegistrationStep:
    return registration_step_save(
        registration=registration,
        step=f"child-{_student('stu-001').pk}",
        data={"allergies": [HEALTH["allergies"]]},
        answers={"health": HEALTH},
        unchanged=False,
        user=user,
    )


def test_old_rows_read_while_keys_rotate_and_reencrypt_moves_them(
    campaign, guardian_user, settings
):
    earlier = list(settings.FIELD_ENCRYPTION_KEYS)  # the registrar's second factor's
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    registration = Registration.objects.get(household__sourced_id="hh-001")
    draft = _steps_saved(registration, guardian_user)
    submission = _signed(registration)

    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]
    assert RegistrationStep.objects.get(pk=draft.pk).answers == {"health": HEALTH}
    assert Submission.objects.get(pk=submission.pk).content == CONTENT
    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(UndecryptableValue):
        RegistrationStep.objects.get(pk=draft.pk)

    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD, *earlier]
    out = StringIO()
    call_command("reencrypt_fields", stdout=out)
    assert "workflow.RegistrationStep: 1 rows, 2 values re-encrypted" in out.getvalue()
    assert "workflow.Submission: 1 rows, 1 values re-encrypted" in out.getvalue()

    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    assert RegistrationStep.objects.get(pk=draft.pk).data == {"allergies": [HEALTH["allergies"]]}
    assert Submission.objects.get(pk=submission.pk).content == CONTENT
    _assert_sealed(_raw("workflow_registrationstep", "answers", draft.pk))
    again = StringIO()
    call_command("reencrypt_fields", stdout=again)
    assert "workflow.RegistrationStep: 1 rows, 0 values re-encrypted, 2 already" in (
        again.getvalue()
    )


def _migrate(target: str) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([("workflow", target)])


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_existing_rows_and_decrypts_them_when_reversed(
    sample_district, campaign, guardian_user, monkeypatch
):
    migration = importlib.import_module("workflow.migrations.0008_answers_encrypted")
    monkeypatch.setattr(migration, "BATCH", 1)  # several batches
    registration = Registration.objects.get(household__sourced_id="hh-001")
    draft = _steps_saved(registration, guardian_user)
    other = registration_step_save(
        registration=registration,
        step="emergency",
        data={"emergency-c1_name": ["Ann Lee"]},
        answers={"contacts": []},
        unchanged=True,
        user=guardian_user,
    )
    submission = _signed(registration)
    try:
        _migrate("0007_acknowledgement_chinese")
        # JSON in clear again, as before the migration.
        assert json.loads(_raw("workflow_registrationstep", "data", draft.pk)) == {
            "allergies": [HEALTH["allergies"]]
        }
        assert json.loads(_raw("workflow_registrationstep", "answers", draft.pk)) == {
            "health": HEALTH
        }
        assert json.loads(_raw("workflow_registrationstep", "data", other.pk)) == {
            "emergency-c1_name": ["Ann Lee"]
        }
        assert json.loads(_raw("workflow_submission", "content", submission.pk)) == CONTENT
    finally:
        _migrate("0008_answers_encrypted")
    for pk in (draft.pk, other.pk):
        for column in ("data", "answers"):
            _assert_sealed(_raw("workflow_registrationstep", column, pk))
    _assert_sealed(_raw("workflow_submission", "content", submission.pk))
    assert RegistrationStep.objects.get(pk=draft.pk).answers == {"health": HEALTH}
    assert RegistrationStep.objects.get(pk=other.pk).data == {"emergency-c1_name": ["Ann Lee"]}
    assert Submission.objects.get(pk=submission.pk).content == CONTENT
