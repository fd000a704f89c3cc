"""The export of approved changes to the SIS, by command and by download: the files
and their columns, the registrations moved to exported, and a second export that
finds nothing and changes nothing."""

from __future__ import annotations

import csv
import datetime
import io
import zipfile
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from registration.models import Guardian
from registration.roster import format as fmt
from tests.conftest import sign_in
from tests.workflow.test_review import _registration, _submit
from workflow.models import AuditEvent, ChangeRecord, Registration, SisExport, TransitionLog
from workflow.services import registration_approve
from workflow.sis_export import CHANGES_COLUMNS

FILES = ["manifest.csv", "users.csv", "demographics.csv", "changes.csv"]


def _approved(campaign: Any, household: str, actor: Any, **kwargs: Any) -> Registration:
    registration = _submit(campaign, household, **kwargs)
    registration_approve(registration=registration, actor=actor)
    return _registration(household)


def _jose_with_a_new_mobile() -> dict[str, Any]:
    jose = Guardian.objects.get(sourced_id="par-002")
    return {
        "contacts": {
            "guardians": {
                str(jose.pk): {
                    "email": "jose.garcia@example.com",
                    "mobile": "+16505550199",
                    "home_phone": "+16505550134",
                    "work_phone": "",
                }
            }
        }
    }


def _read(text: str) -> tuple[list[str], list[dict[str, str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    return header, [dict(zip(header, row, strict=True)) for row in rows[1:]]


def _folder(folder: Path) -> dict[str, str]:
    return {name: (folder / name).read_bytes().decode("utf-8") for name in FILES}


def _zip(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == sorted(FILES)
        return {name: archive.read(name).decode("utf-8") for name in FILES}


def _check_bundle(files: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """Every file has its fixed header and Windows line endings; the manifest says
    users and demographics are a delta. Returns the rows of each file."""
    rows = {}
    for name, text in files.items():
        assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", ""), name
        header, rows[name] = _read(text)
        expected = {
            "manifest.csv": list(fmt.MANIFEST_COLUMNS),
            "users.csv": list(fmt.USERS.columns),
            "demographics.csv": list(fmt.DEMOGRAPHICS.columns),
            "changes.csv": list(CHANGES_COLUMNS),
        }[name]
        assert header == expected, name
    manifest = {row["propertyName"]: row["value"] for row in rows["manifest.csv"]}
    assert manifest["oneroster.version"] == "1.1"
    assert manifest["file.users"] == manifest["file.demographics"] == "delta"
    assert manifest["file.enrollments"] == manifest["file.orgs"] == "absent"
    return rows


def test_the_command_exports_the_approved_changes_once(campaign, registrar_user, tmp_path):
    approved = _approved(campaign, "hh-001", registrar_user, answers=_jose_with_a_new_mobile())
    waiting = _submit(campaign, "hh-002")
    # A verified address, recorded without a registration: exported too.
    ChangeRecord.objects.create(
        record_type="household",
        record_id="hh-004",
        field="street1",
        old_value="780 El Dorado Ave",
        new_value="5 New Rd",
        approved_by=registrar_user,
        approved_at=timezone.now(),
    )
    out = io.StringIO()
    call_command("export_changes", str(tmp_path / "first"), stdout=out)
    assert "Export " in out.getvalue()

    rows = _check_bundle(_folder(tmp_path / "first"))
    users = {row["sourcedId"]: row for row in rows["users.csv"]}
    assert set(users) == {"par-002", "stu-001", "stu-002"}
    assert users["par-002"]["sms"] == "+16505550199"
    assert users["par-002"]["role"] == "parent" and users["stu-001"]["grades"] == "03"
    assert {row["status"] for row in users.values()} == {"active"}
    assert all(row["dateLastModified"].endswith("Z") for row in users.values())
    assert {row["sourcedId"] for row in rows["demographics.csv"]} == {"stu-001", "stu-002"}
    changes = rows["changes.csv"]
    mobile = next(row for row in changes if row["field"] == "mobile")
    assert mobile == {
        **mobile,
        "record_type": "guardian",
        "record_id": "par-002",
        "old_value": "+16505550135",
        "new_value": "+16505550199",
        "registration": str(approved.pk),
        "approved_by": registrar_user.email,
    }
    assert {"guardian", "student", "enrollment", "household"} == {r["record_type"] for r in changes}
    assert not [row for row in changes if "allerg" in row["field"] or "Peanuts" in row["new_value"]]

    export = SisExport.objects.get()
    assert (export.changes, export.registrations) == (len(changes), 1)
    assert export.actor_label.startswith("export_changes run by")
    assert not ChangeRecord.objects.filter(export__isnull=True).exists()
    assert _registration("hh-001").state == Registration.State.EXPORTED
    assert _registration("hh-002").state == waiting.state == Registration.State.SUBMITTED
    log = TransitionLog.objects.get(object_id=str(approved.pk), transition="export")
    assert (log.source, log.target) == ("approved", "exported")
    assert log.actor_label.startswith("export_changes run by")
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.EXPORT, object_type="workflow.sisexport", object_id=str(export.pk)
    ).exists()

    # Again, with nothing new: headers only, and nothing changes.
    call_command("export_changes", str(tmp_path / "second"), stdout=io.StringIO())
    rows = _check_bundle(_folder(tmp_path / "second"))
    assert rows["users.csv"] == rows["demographics.csv"] == rows["changes.csv"] == []
    assert SisExport.objects.count() == 1
    assert ChangeRecord.objects.filter(export=export).count() == export.changes
    assert TransitionLog.objects.filter(transition="export").count() == 1
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.EXPORT, object_type="workflow.sisexport", object_id=""
    ).exists()


def test_since_leaves_older_approvals_for_a_later_export(campaign, registrar_user, tmp_path):
    older = _approved(campaign, "hh-001", registrar_user)
    newer = _approved(campaign, "hh-004", registrar_user)
    last_week = timezone.now() - datetime.timedelta(days=7)
    ChangeRecord.objects.filter(registration=older).update(approved_at=last_week)
    Registration.objects.filter(pk=older.pk).update(updated_at=last_week)

    today = timezone.localdate().isoformat()
    call_command("export_changes", str(tmp_path / "a"), "--since", today, stdout=io.StringIO())
    changes = _check_bundle(_folder(tmp_path / "a"))["changes.csv"]
    assert {row["registration"] for row in changes} == {str(newer.pk)}
    assert _registration("hh-004").state == Registration.State.EXPORTED
    assert _registration("hh-001").state == Registration.State.APPROVED
    assert ChangeRecord.objects.filter(registration=older, export__isnull=True).exists()

    call_command("export_changes", str(tmp_path / "b"), stdout=io.StringIO())
    changes = _check_bundle(_folder(tmp_path / "b"))["changes.csv"]
    assert {row["registration"] for row in changes} == {str(older.pk)}
    assert _registration("hh-001").state == Registration.State.EXPORTED


def test_the_registrar_downloads_the_export(campaign, registrar_user, office_user):
    approved = _approved(campaign, "hh-001", registrar_user, answers=_jose_with_a_new_mobile())
    registrar = Client()
    sign_in(registrar, registrar_user)
    url = reverse("staff_registration_export")

    page = registrar.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    pending = ChangeRecord.objects.filter(export__isnull=True).count()
    assert f">{pending}<" in html
    assert "1 approved registration will be marked exported." in html

    response = registrar.post(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "attachment" in response["Content-Disposition"]
    rows = _check_bundle(_zip(response.content))
    assert len(rows["changes.csv"]) == pending
    assert {row["sourcedId"] for row in rows["users.csv"]} == {"par-002", "stu-001", "stu-002"}
    assert _registration("hh-001").state == Registration.State.EXPORTED
    export = SisExport.objects.get()
    assert export.created_by == registrar_user
    assert TransitionLog.objects.get(object_id=str(approved.pk), transition="export").actor == (
        registrar_user
    )
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.EXPORT, object_id=str(export.pk), actor=registrar_user
    ).exists()

    # A second export finds nothing: headers only.
    again = registrar.post(url)
    rows = _check_bundle(_zip(again.content))
    assert rows["users.csv"] == rows["demographics.csv"] == rows["changes.csv"] == []
    assert SisExport.objects.count() == 1

    # The earlier export can be downloaded again, with the same changes.
    page = registrar.get(url).content.decode()
    download = reverse("staff_registration_export_download", args=[export.pk])
    assert f'href="{download}"' in page
    rows = _check_bundle(_zip(registrar.get(download).content))
    assert len(rows["changes.csv"]) == pending

    office = Client()
    sign_in(office, office_user)
    assert office.get(url).status_code == 403
    assert office.post(url).status_code == 403
    assert office.get(download).status_code == 403
