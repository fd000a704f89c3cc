"""Exporting writes the bundle the importer reads, byte for byte repeatable."""

from __future__ import annotations

import csv

from django.core.management import call_command

from registration import models as m
from registration.services import roster_export, roster_import
from tests.conftest import ROSTER
from workflow.models import AuditEvent


def _read(folder, name):
    with (folder / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _files(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_import_export_import_export_gives_identical_files(transactional_db, tmp_path):
    # Outside a test transaction, so that flush can empty the database for real.
    assert roster_import(path=ROSTER).ok
    first = tmp_path / "first"
    call_command("export_roster", str(first))
    call_command("flush", interactive=False, verbosity=0)
    assert m.Student.objects.count() == 0

    report = roster_import(path=first)
    assert report.ok, [str(p) for p in report.problems.errors]
    # What the export holds is already clean: no warnings the second time.
    assert report.problems.warnings == [
        w for w in report.problems.warnings if "no birth date" in w.message
    ]
    second = tmp_path / "second"
    roster_export(folder=second)
    assert _files(first) == _files(second)


def test_the_export_holds_the_records_in_clean_form(sample_district, tmp_path):
    roster_export(folder=tmp_path)
    users = {row["sourcedId"]: row for row in _read(tmp_path, "users.csv")}
    assert users["par-002"]["phone"] == "+16505550134"
    assert users["par-002"]["sms"] == "+16505550135"
    assert users["par-002"]["agentSourcedIds"] == "stu-001,stu-002"
    assert users["stu-006"]["agentSourcedIds"] == "par-005,par-006,par-007"
    assert users["stu-003"]["grades"] == "KG"
    assert users["stu-003"]["familyName"] == "O'Brien"
    assert users["tch-003"]["orgSourcedIds"] == "sch-high,sch-mid"
    assert users["adm-001"]["role"] == "administrator"
    members = {
        (r["householdSourcedId"], r["userSourcedId"]): r
        for r in _read(tmp_path, "householdMembers.csv")
    }
    assert members[("hh-005", "par-005")]["relationship"] == "grandparent"
    assert members[("hh-005", "par-005")]["educationRights"] == "false"
    assert members[("hh-004", "par-005")]["educationRights"] == "true"
    assert members[("hh-003", "stu-003")]["primaryHousehold"] == "false"
    households = {r["householdSourcedId"]: r for r in _read(tmp_path, "households.csv")}
    assert households["hh-007"]["postalCode"] == "02134"
    assert households["hh-001"]["language"] == "es"
    assert (tmp_path / "users.csv").read_bytes()[:3] != b"\xef\xbb\xbf"
    assert AuditEvent.objects.filter(action="export").count() == 1
