"""Malformed bundles: each one gives a clear error naming file and line, exits
non-zero, and leaves the database exactly as it was."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection

from registration import models as m
from registration.roster import importer
from registration.services import roster_import
from tests.conftest import ROSTER

Edit = Callable[[Path], None]


def snapshot() -> dict[str, list[dict]]:
    """Every row of every table of the project's apps, history and audit included."""
    rows = {}
    for app in ("registration", "workflow"):
        for model in apps.get_app_config(app).get_models():
            rows[model._meta.label] = list(model._default_manager.order_by("pk").values())
    return rows


def rewrite(name: str, change: Callable[[str], str]) -> Edit:
    def edit(bundle: Path) -> None:
        path = bundle / name
        text = path.read_bytes().decode("utf-8-sig")
        path.write_bytes(change(text).encode("utf-8"))

    return edit


def remove(name: str) -> Edit:
    return lambda bundle: (bundle / name).unlink()


def empty(name: str) -> Edit:
    return lambda bundle: (bundle / name).write_bytes(b"")


def together(*edits: Edit) -> Edit:
    def edit(bundle: Path) -> None:
        for each in edits:
            each(bundle)

    return edit


def latin1(name: str) -> Edit:
    def edit(bundle: Path) -> None:
        path = bundle / name
        path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1"))

    return edit


CASES: dict[str, tuple[Edit, str]] = {
    "missing required file": (
        remove("users.csv"),
        "users.csv: required file is missing from the bundle",
    ),
    "missing extension file": (
        remove("householdMembers.csv"),
        "householdMembers.csv: required file is missing from the bundle",
    ),
    "missing manifest": (
        remove("manifest.csv"),
        "manifest.csv: required file is missing from the bundle",
    ),
    "wrong header": (
        rewrite("users.csv", lambda t: t.replace("givenName", "firstName", 1)),
        "users.csv:1: wrong header: missing column givenName; unexpected column 'firstName'",
    ),
    "duplicate sourcedId": (
        rewrite("households.csv", lambda t: t + "hh-003,1 Other St,,Riverside,CA,95201,,en\n"),
        "households.csv:10: column householdSourcedId: 'hh-003' is already used on line 4",
    ),
    "student pointing at an unknown guardian": (
        rewrite("users.csv", lambda t: t.replace(",par-008,9,", ",par-999,9,")),
        "users.csv:8: column agentSourcedIds: unknown guardian 'par-999': no user in users.csv "
        "has that sourcedId",
    ),
    "student pointing at a teacher as guardian": (
        rewrite("users.csv", lambda t: t.replace(",par-008,9,", ",tch-001,9,")),
        "users.csv:8: column agentSourcedIds: 'tch-001' is a member of staff, not a guardian",
    ),
    "bad date": (
        rewrite("demographics.csv", lambda t: t.replace("2021-06-30", "06/30/2021")),
        "demographics.csv:4: column birthDate: '06/30/2021' is not a date in the form YYYY-MM-DD",
    ),
    "impossible date": (
        rewrite(
            "academicSessions.csv", lambda t: t.replace("2027-06-11,,2027", "2027-02-30,,2027")
        ),
        "academicSessions.csv:2: column endDate: '2027-02-30' is not a date in the form YYYY-MM-DD",
    ),
    "non-UTF-8 bytes": (
        latin1("emergencyContacts.csv"),
        "emergencyContacts.csv:2: byte 0xFA at character 16 is not UTF-8; save the file as "
        "UTF-8 (CSV UTF-8 in Excel) and import it again",
    ),
    "empty file": (
        empty("courses.csv"),
        "courses.csv:1: the file is empty; it needs the header line sourcedId,status,"
        "dateLastModified,schoolYearSourcedId,title,courseCode,grades,orgSourcedId,subjects,"
        "subjectCodes",
    ),
    "a row with a missing field": (
        rewrite(
            "orgs.csv",
            lambda t: t.replace(
                "Sequoia Middle School,school,MID001,district-1",
                "Sequoia Middle School,school,MID001",
            ),
        ),
        "orgs.csv:4: expected 7 fields, found 6",
    ),
    "unknown school": (
        rewrite(
            "users.csv", lambda t: t.replace("stu-001,,,true,sch-elem", "stu-001,,,true,sch-x")
        ),
        "users.csv:2: column orgSourcedIds: 'sch-x' is not an org in orgs.csv",
    ),
    "bad grade": (
        rewrite(
            "users.csv", lambda t: t.replace(',"par-001,par-002",3,', ',"par-001,par-002",3rd,')
        ),
        "users.csv:2: column grades: '3rd' is not a grade",
    ),
    "two primary households": (
        rewrite(
            "householdMembers.csv",
            lambda t: t.replace("hh-003,stu-003,student,false", "hh-003,stu-003,student,true"),
        ),
        "householdMembers.csv:10: column primaryHousehold: student 'stu-003' is already primary "
        "in household 'hh-002' (line 7); a student has one primary household",
    ),
    "no primary household": (
        rewrite(
            "householdMembers.csv",
            lambda t: t.replace("hh-006,stu-007,student,true", "hh-006,stu-007,student,false"),
        ),
        "householdMembers.csv:19: column primaryHousehold: student 'stu-007' has no primary "
        "household",
    ),
    "education rights left blank": (
        rewrite(
            "householdMembers.csv",
            lambda t: t.replace(
                "hh-006,par-008,guardian,,father,true", "hh-006,par-008,guardian,,father,"
            ),
        ),
        "householdMembers.csv:18: column educationRights: is required and is empty",
    ),
    "guardian sharing no household with the child": (
        rewrite(
            "householdMembers.csv",
            lambda t: t.replace("hh-006,par-008,guardian", "hh-001,par-008,guardian"),
        ),
        "users.csv:8: column agentSourcedIds: guardian 'par-008' of student 'stu-007' shares no "
        "household with them",
    ),
    "member of an unknown household": (
        rewrite("householdMembers.csv", lambda t: t.replace("hh-007,par-009", "hh-070,par-009")),
        "householdMembers.csv:20: column householdSourcedId: 'hh-070' is not in households.csv",
    ),
    "delta bundle": (
        rewrite("manifest.csv", lambda t: t.replace("file.users,bulk", "file.users,delta")),
        "manifest.csv:16: file.users is delta; export a bulk bundle instead",
    ),
    "another OneRoster version": (
        rewrite(
            "manifest.csv", lambda t: t.replace("oneroster.version,1.1", "oneroster.version,1.2")
        ),
        "manifest.csv:3: oneroster.version is 1.2; this importer reads 1.1",
    ),
    "class in an unknown term": (
        rewrite(
            "classes.csv",
            lambda t: t.replace(
                "sch-elem,sy-2027,Homeroom,,\n", "sch-elem,sy-2099,Homeroom,,\n", 1
            ),
        ),
        "classes.csv:2: column termSourcedIds: 'sy-2099' is not a session in academicSessions.csv",
    ),
    "enrollment of a guardian": (
        rewrite(
            "enrollments.csv",
            lambda t: t.replace("cls-hr-3,sch-elem,stu-001", "cls-hr-3,sch-elem,par-001"),
        ),
        "enrollments.csv:10: column userSourcedId: 'par-001' is a guardian, not a student",
    ),
    "duplicate emergency contact priority": (
        rewrite(
            "emergencyContacts.csv",
            lambda t: t.replace("Neighbor,650-555-0178,2", "Neighbor,650-555-0178,1"),
        ),
        "emergencyContacts.csv:3: column priority: household 'hh-001' already has priority 1 on "
        "line 2",
    ),
    "a state id used twice": (
        rewrite("users.csv", lambda t: t.replace("1000000009", "1000000001")),
        "users.csv:10: column identifier: state id '1000000001' is also the id of student "
        "'stu-001'",
    ),
}


@pytest.fixture
def bad_bundle(tmp_path):
    def make(edit: Edit) -> Path:
        bundle = tmp_path / "bundle"
        shutil.copytree(ROSTER, bundle)
        edit(bundle)
        return bundle

    return make


@pytest.mark.parametrize("case", list(CASES))
def test_a_malformed_bundle_is_refused_with_its_file_and_line(
    case, sample_district, bad_bundle, capsys
):
    edit, expected = CASES[case]
    bundle = bad_bundle(edit)
    before = snapshot()
    with pytest.raises(CommandError) as refused:
        call_command("import_roster", str(bundle))
    assert refused.value.returncode == 1
    _out, err = capsys.readouterr()
    assert expected in err, err
    assert "Nothing was imported" in err
    assert snapshot() == before


def test_the_command_exits_non_zero(db, bad_bundle, tmp_path):
    bundle = bad_bundle(remove("users.csv"))
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    manage = Path(__file__).resolve().parents[2] / "manage.py"
    subprocess.run([sys.executable, str(manage), "migrate", "-v0"], env=env, check=True)
    result = subprocess.run(
        [sys.executable, str(manage), "import_roster", str(bundle)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "users.csv: required file is missing from the bundle" in result.stderr


def test_every_error_is_reported_not_only_the_first(db, bad_bundle):
    def two_errors(bundle: Path) -> None:
        rewrite("users.csv", lambda t: t.replace(",par-008,9,", ",par-999,9,"))(bundle)
        rewrite("demographics.csv", lambda t: t.replace("2021-06-30", "2021-6-31"))(bundle)

    report = roster_import(path=bad_bundle(two_errors))
    assert {p.file for p in report.problems.errors} == {"users.csv", "demographics.csv"}


def _refuse_writing(monkeypatch, model) -> None:
    """The database refuses the import when it comes to ``model``'s table."""
    real_sync = importer.sync_table

    def failing_sync(spec, *args, **kwargs):
        if spec.model is model:
            raise IntegrityError("simulated failure half-way through")
        return real_sync(spec, *args, **kwargs)

    monkeypatch.setattr(importer, "sync_table", failing_sync)


def test_a_failure_while_writing_rolls_everything_back(sample_district, bad_bundle, monkeypatch):
    changed = bad_bundle(
        rewrite("users.csv", lambda t: t.replace("Chidi,Okafor", "Chidiebere,Okafor"))
    )
    _refuse_writing(monkeypatch, m.StudentGuardian)
    before = snapshot()
    report = roster_import(path=changed)
    assert not report.ok
    assert "the database refused the import, nothing was written" in str(report.problems.errors[0])
    assert snapshot() == before
    assert m.Student.objects.get(sourced_id="stu-005").given_name == "Chidi"


def test_an_empty_database_stays_empty_after_a_refused_bundle(db, bad_bundle):
    report = roster_import(
        path=bad_bundle(rewrite("users.csv", lambda t: t.replace(",par-008,9,", ",par-999,9,")))
    )
    assert not report.ok
    assert all(not rows for rows in snapshot().values())


# On PostgreSQL each stage of the write starts while the later files are still being
# checked: an error in the last file must still leave nothing written.
_LAST_FILE_ERROR = rewrite(
    "emergencyContacts.csv", lambda t: t.replace("hh-002,Maeve", "hh-999,Maeve")
)


def test_an_error_in_the_last_file_checked_leaves_the_district_as_it_was(
    sample_district, bad_bundle
):
    changed = bad_bundle(
        together(
            rewrite("users.csv", lambda t: t.replace("Chidi,Okafor", "Chidiebere,Okafor")),
            # A teacher's enrollment the bundle no longer lists would be removed.
            rewrite(
                "enrollments.csv",
                lambda t: "".join(
                    line for line in t.splitlines(True) if not line.startswith("enr-t2,")
                ),
            ),
            _LAST_FILE_ERROR,
        )
    )
    before = snapshot()
    report = roster_import(path=changed)
    assert [(p.file, p.column) for p in report.problems.errors] == [
        ("emergencyContacts.csv", "householdSourcedId")
    ]
    assert not report.written
    assert report.total().removed == 0  # nothing was removed: it was rolled back
    assert snapshot() == before
    assert m.Student.objects.get(sourced_id="stu-005").given_name == "Chidi"


@pytest.mark.django_db(transaction=True)
def test_a_first_import_refused_by_its_last_file_writes_nothing(bad_bundle):
    """The first import, outside any other transaction: the stages written before the
    last file was checked are rolled back, and no row is left."""
    report = roster_import(path=bad_bundle(_LAST_FILE_ERROR))
    assert not report.ok
    assert "'hh-999' is not in households.csv" in str(report.problems.errors[0])
    assert all(not rows for rows in snapshot().values())


def test_a_refusal_while_writing_still_reports_the_later_files(
    sample_district, bad_bundle, monkeypatch
):
    """The database refuses a stage written early; the files checked after it are
    still checked, so the report names their problems too."""
    _refuse_writing(monkeypatch, m.Guardian)
    before = snapshot()
    report = roster_import(path=bad_bundle(_LAST_FILE_ERROR))
    messages = [str(p) for p in report.problems.errors]
    assert any("'hh-999' is not in households.csv" in message for message in messages)
    if connection.vendor == "postgresql":  # the write had started before the last check
        assert "the database refused the import, nothing was written" in messages[0]
    assert snapshot() == before


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_the_write_starts_before_the_last_file_is_checked(monkeypatch):
    """What makes a large import faster: the server stores the first stages while the
    later files are checked."""
    seen: dict[str, int] = {}
    real_check = importer._check_emergency_contacts

    def counting_check(rows, parsed, problems):
        seen["households"] = m.Household.objects.count()
        seen["enrollments"] = m.ClassEnrollment.objects.count()
        return real_check(rows, parsed, problems)

    monkeypatch.setattr(importer, "_check_emergency_contacts", counting_check)
    report = roster_import(path=ROSTER)
    assert report.ok
    assert seen["households"] == m.Household.objects.count() > 0
    assert seen["enrollments"] == m.ClassEnrollment.objects.count() > 0
