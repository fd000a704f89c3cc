"""Importing a roster bundle (OneRoster 1.1 CSV plus this project's household files).

Three stages:

1. **read** every file (encoding, header, field counts);
2. **check** every row and every reference between files, collecting every
   problem with its file, line and column;
3. **write**, only when nothing is wrong, everything in one transaction: records
   are upserted by ``sourcedId`` and memberships brought in line with the bundle.

The bundle is authoritative for what it lists: a household's members, a child's
guardians, a guardian's roster phone and email, enrollments. Households, guardians
and students that a bundle no longer lists are left as they are (and counted in the
report), because guardians' own data hangs off them.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from registration import models as m
from registration.grades import grade_rank
from registration.roster import format as fmt
from registration.roster.copy import copy_available, write_behind, write_behind_abandon
from registration.roster.reader import (
    BundleSource,
    Problems,
    RosterSourceError,
    Row,
    decode,
    parse_csv,
    read_table,
)
from registration.roster.sync import TableSpec, sync_table
from registration.roster.values import (
    normalise_email,
    normalise_language,
    normalise_phone,
    normalise_postal_code,
    normalise_state,
    parse_bool,
    parse_date,
    parse_grade,
    parse_list,
    parse_relationship,
)
from workflow.services import audit_record

T = TypeVar("T")
logger = logging.getLogger(__name__)

GUARDIAN_ROLES = {"parent": "parent", "guardian": "guardian", "relative": "relative"}
STAFF_ROLES = {"teacher": m.StaffProfile.Role.TEACHER, "administrator": m.StaffProfile.Role.OFFICE}
SESSION_TYPES = {choice.value for choice in m.AcademicSession.SessionType}
CLASS_TYPES = {choice.value for choice in m.ClassSection.ClassType}


@dataclass
class FileCounts:
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    removed: int = 0


@dataclass
class ImportReport:
    source: str
    dry_run: bool = False
    files: dict[str, FileCounts] = field(default_factory=dict)
    problems: Problems = field(default_factory=Problems)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    written: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems.errors

    def total(self) -> FileCounts:
        total = FileCounts()
        for counts in self.files.values():
            for name in ("read", "created", "updated", "unchanged", "skipped", "removed"):
                setattr(total, name, getattr(total, name) + getattr(counts, name))
        return total

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "files": {name: vars(counts) for name, counts in self.files.items()},
            "errors": len(self.problems.errors),
            "warnings": len(self.problems.warnings),
            "seconds": round(self.seconds, 3),
        }


class Cells:
    """Typed reading of one row; a bad cell records a problem and reads as None."""

    def __init__(self, file: str, row: Row, problems: Problems) -> None:
        self.file = file
        self.row = row
        self.problems = problems
        self.ok = True

    def error(self, column: str | None, message: str) -> None:
        self.ok = False
        self.problems.error(self.file, self.row.line, message, column)

    def warning(self, column: str | None, message: str) -> None:
        self.problems.warning(self.file, self.row.line, message, column)

    def text(self, column: str, *, required: bool = False, max_length: int = 200) -> str:
        value = self.row[column]
        if required and not value:
            self.error(column, "is required and is empty")
        elif len(value) > max_length:
            self.error(column, f"is {len(value)} characters long; at most {max_length} fit")
            return ""
        return value

    def parsed(
        self,
        column: str,
        parse: Callable[[str], T],
        *,
        required: bool = False,
        default: T | None = None,
        warn: str | None = None,
    ) -> T | None:
        """The parsed cell; blank gives ``default``. With ``warn``, a bad value is a
        warning (``warn`` says what happens to it) instead of an error."""
        value = self.row[column]
        if not value:
            if required:
                self.error(column, "is required and is empty")
            return default
        try:
            return parse(value)
        except ValueError as exc:
            if warn is not None:
                self.warning(column, f"{exc}; {warn}")
            else:
                self.error(column, str(exc))
            return default


@dataclass
class Parsed:
    """Everything a bundle says, checked, keyed by sourcedId, with source lines."""

    districts: dict[str, dict[str, Any]] = field(default_factory=dict)
    schools: dict[str, dict[str, Any]] = field(default_factory=dict)
    school_details: dict[str, dict[str, Any]] | None = None
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    households: dict[str, dict[str, Any]] = field(default_factory=dict)
    students: dict[str, dict[str, Any]] = field(default_factory=dict)
    guardians: dict[str, dict[str, Any]] = field(default_factory=dict)
    staff: dict[str, dict[str, Any]] = field(default_factory=dict)
    birth_dates: dict[str, datetime.date | None] = field(default_factory=dict)
    courses: dict[str, dict[str, Any]] = field(default_factory=dict)
    classes: dict[str, dict[str, Any]] = field(default_factory=dict)
    student_enrollments: dict[str, dict[str, Any]] = field(default_factory=dict)
    teaching: dict[str, dict[str, Any]] = field(default_factory=dict)
    household_guardians: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    household_students: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    links: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    emergency_contacts: dict[tuple[str, int], dict[str, Any]] | None = None
    lines: dict[str, dict[Any, int]] = field(default_factory=lambda: defaultdict(dict))
    # Rows left out because of a warning: (file, line).
    skipped: set[tuple[str, int]] = field(default_factory=set)


def roster_import(*, path: Path, dry_run: bool = False, actor_label: str = "") -> ImportReport:
    """Read, check and (when nothing is wrong) write a roster bundle.

    The report lists every problem; with any error, or with ``dry_run``, the
    database is left exactly as it was.
    """
    started = time.perf_counter()
    report = ImportReport(source=path.name, dry_run=dry_run)
    try:
        source = BundleSource(path)
    except RosterSourceError as exc:
        report.problems.error(path.name, None, str(exc))
        return report
    try:
        tables = _read_bundle(source, report)
    except RosterSourceError as exc:
        report.problems.error(path.name, None, str(exc))
        return report
    finally:
        source.close()
    if report.ok:
        # The write needs only each file's line numbers; the rows themselves (most of
        # the memory of a large import) go as each file is checked.
        lines = {file: [row.line for row in rows] for file, rows in tables.items()}
        steps = _check_steps(tables)
        del tables
        if copy_available():
            _check_and_write(steps, lines, report, dry_run=dry_run, actor_label=actor_label)
        else:
            parsed = Parsed()
            for step in steps:
                step(parsed, report.problems)
            if report.ok:
                _write_checked(parsed, lines, report, dry_run=dry_run, actor_label=actor_label)
    report.seconds = time.perf_counter() - started
    total = report.total()
    logger.info(
        "roster import of %s%s: %s; read %d, created %d, updated %d, removed %d; "
        "%d errors, %d warnings",
        report.source,
        " (dry run)" if dry_run else "",
        "written" if report.written else "nothing written",
        total.read,
        total.created,
        total.updated,
        total.removed,
        len(report.problems.errors),
        len(report.problems.warnings),
    )
    return report


def _write_checked(
    parsed: Parsed,
    lines: dict[str, list[int]],
    report: ImportReport,
    *,
    dry_run: bool,
    actor_label: str,
) -> None:
    status = RowStatus(report, lines)
    try:
        with transaction.atomic(), write_behind():
            for _stage in _write(parsed, status):
                pass
            _finish_write(parsed, status, report, dry_run=dry_run, actor_label=actor_label)
    except DatabaseError as exc:
        _refused(report, exc)
        return
    report.written = not dry_run


def _check_and_write(
    steps: list[CheckStep],
    lines: dict[str, list[int]],
    report: ImportReport,
    *,
    dry_run: bool,
    actor_label: str,
) -> None:
    """Check and write at once (PostgreSQL): each stage of the write starts as soon as
    the checks it needs have passed, and its COPYs are stored by the server while the
    next files are checked. The first error stops the writing; the checks go on, so
    that the report still names every problem, and the transaction is rolled back:
    with any error nothing is written, as when checking comes first. (Should the
    database refuse a stage while a file is being checked, that file's report may
    stop there; the files after it are still checked.)"""
    parsed = Parsed()
    status = RowStatus(report, lines)
    remaining = list(steps)
    try:
        with transaction.atomic(), write_behind():
            stages = _write(parsed, status)
            while remaining:
                remaining.pop(0)(parsed, report.problems)
                if report.ok:
                    next(stages, None)
            if report.ok:
                _finish_write(parsed, status, report, dry_run=dry_run, actor_label=actor_label)
            else:
                write_behind_abandon()
                transaction.set_rollback(True)
    except DatabaseError as exc:
        _refused(report, exc)
        for step in remaining:  # the rest of the report
            step(parsed, report.problems)
        return
    report.written = report.ok and not dry_run


def _finish_write(
    parsed: Parsed, status: RowStatus, report: ImportReport, *, dry_run: bool, actor_label: str
) -> None:
    """Count every row, and record the import (or, for a dry run, roll it back)."""
    for file, line in parsed.skipped:
        status.mark(file, line, "skipped")
    status.finish()
    _note_unlisted(parsed, report)
    if dry_run:
        transaction.set_rollback(True)
    else:
        audit_record(
            action="import",
            object_type="registration.roster",
            actor_label=actor_label,
            detail=report.as_dict(),
        )


def _refused(report: ImportReport, exc: DatabaseError) -> None:
    report.problems.error(
        report.source, None, f"the database refused the import, nothing was written ({exc})"
    )


def _note_unlisted(parsed: Parsed, report: ImportReport) -> None:
    """Say how many stored records the bundle did not list (they are kept)."""
    for model, listed, label in (
        (m.Household, parsed.households, "households"),
        (m.Student, parsed.students, "students"),
        (m.Guardian, parsed.guardians, "guardians"),
    ):
        # Every listed record is stored by now, so the rest are the unlisted ones.
        unlisted = model.objects.count() - len(listed)
        if unlisted:
            report.notes.append(
                f"{label} in the database but not in this bundle, left unchanged: {unlisted}"
            )


# -- read --------------------------------------------------------------------------


def _read_bundle(source: BundleSource, report: ImportReport) -> dict[str, list[Row]]:
    problems = report.problems
    _check_manifest(source, problems)
    tables: dict[str, list[Row]] = {}
    for file_format in fmt.FILES:
        rows = read_table(source, file_format, problems)
        if rows is not None:
            tables[file_format.name] = rows
            report.files[file_format.name] = FileCounts(read=len(rows))
    return tables


def _check_manifest(source: BundleSource, problems: Problems) -> None:
    name = fmt.MANIFEST
    if not source.has(name):
        problems.error(name, None, "required file is missing from the bundle")
        return
    text = decode(name, source.read_bytes(name), problems)
    rows = parse_csv(name, text, fmt.MANIFEST_COLUMNS, problems) if text is not None else None
    if rows is None:
        return
    properties = {row["propertyName"]: (row["value"], row.line) for row in rows}
    version, line = properties.get("oneroster.version", ("", None))
    if version != "1.1":
        problems.error(
            name, line, f"oneroster.version is {version or 'missing'}; this importer reads 1.1"
        )
    for file_format in fmt.FILES:
        if not file_format.oneroster:
            continue
        mode, line = properties.get(file_format.manifest_key, ("", None))
        if mode == "delta":
            problems.error(
                name, line, f"{file_format.manifest_key} is delta; export a bulk bundle instead"
            )
        elif mode != "bulk":
            problems.error(
                name, line, f"{file_format.manifest_key} must be bulk (it is {mode or 'missing'})"
            )


# -- check -------------------------------------------------------------------------


def _unique(
    rows: Iterable[Row], file: str, column: str, problems: Problems
) -> Iterable[tuple[Row, Cells, str]]:
    """Rows whose sourcedId is present and not seen before, with their Cells."""
    seen: dict[str, int] = {}
    for row in rows:
        cells = Cells(file, row, problems)
        sid = cells.text(column, required=True, max_length=m.SOURCED_ID_LENGTH)
        if not sid:
            continue
        if sid in seen:
            cells.error(column, f"{sid!r} is already used on line {seen[sid]}")
            continue
        seen[sid] = row.line
        yield row, cells, sid


# One step of the checks: runs them on the parsed bundle.
CheckStep = Callable[[Parsed, Problems], None]


def _check_steps(tables: dict[str, list[Row]]) -> list[CheckStep]:
    """The checks of every file, in order, in steps: after each, the next stage of
    ``_write`` has all it needs. A step lets go of its files' rows once checked."""

    def step(*checks: tuple[Callable[[list[Row], Parsed, Problems], None], str]) -> CheckStep:
        def run(parsed: Parsed, problems: Problems) -> None:
            for check, name in checks:
                rows = tables.pop(name, None)
                if rows is not None:  # schools.csv and emergencyContacts.csv may be absent
                    check(rows, parsed, problems)

        return run

    return [
        step(
            (_check_orgs, fmt.ORGS.name),
            (_check_school_details, fmt.SCHOOLS.name),
            (_check_sessions, fmt.ACADEMIC_SESSIONS.name),
            (_check_households, fmt.HOUSEHOLDS.name),
        ),
        step((_check_users, fmt.USERS.name), (_check_demographics, fmt.DEMOGRAPHICS.name)),
        step((_check_courses, fmt.COURSES.name), (_check_classes, fmt.CLASSES.name)),
        step((_check_enrollments, fmt.ENROLLMENTS.name)),
        step((_check_members, fmt.HOUSEHOLD_MEMBERS.name)),
        step((_check_emergency_contacts, fmt.EMERGENCY_CONTACTS.name)),
    ]


def _address(cells: Cells) -> dict[str, Any]:
    return {
        "street1": cells.text("street1"),
        "street2": cells.text("street2"),
        "city": cells.text("city", max_length=100),
        "state": cells.parsed("state", normalise_state, default=""),
        "postal_code": cells.parsed("postalCode", normalise_postal_code, default=""),
        "phone": cells.parsed("phone", normalise_phone, default="", warn="the number is left out"),
    }


def _check_orgs(rows: list[Row], parsed: Parsed, problems: Problems) -> None:
    file = fmt.ORGS.name
    parents: dict[str, tuple[Cells, str]] = {}
    for row, cells, sid in _unique(rows, file, "sourcedId", problems):
        name = cells.text("name", required=True)
        identifier = cells.text("identifier", max_length=100)
        org_type = row["type"].lower()
        if org_type == "district":
            target = parsed.districts
            values: dict[str, Any] = {"name": name, "identifier": identifier}
        elif org_type == "school":
            target = parsed.schools
            values = {"name": name, "identifier": identifier}
            if row["parentSourcedId"]:
                parents[sid] = (cells, row["parentSourcedId"])
        else:
            cells.error("type", f"{row['type']!r} is not supported; use district or school")
            continue
        if cells.ok:
            target[sid] = values
            parsed.lines[file][sid] = row.line
    for sid, (cells, parent) in parents.items():
        if parent not in parsed.districts:
            cells.error("parentSourcedId", f"{parent!r} is not a district in orgs.csv")
            parsed.schools.pop(sid, None)
        else:
            parsed.schools[sid]["district"] = parent


def _check_school_details(rows: list[Row], parsed: Parsed, problems: Problems) -> None:
    file = fmt.SCHOOLS.name
    parsed.school_details = {}
    for row, cells, sid in _unique(rows, file, "schoolSourcedId", problems):
        if sid not in parsed.schools:
            cells.error("schoolSourcedId", f"{sid!r} is not a school in orgs.csv")
            continue
        low = cells.parsed("lowGrade", parse_grade, required=True)
        high = cells.parsed("highGrade", parse_grade, required=True)
        if low and high and grade_rank(low) > grade_rank(high):
            cells.error("highGrade", f"{high} comes before the lowest grade {low}")
        values = {"low_grade": low or "", "high_grade": high or "", **_address(cells)}
        if cells.ok:
            parsed.school_details[sid] = values
            parsed.lines[file][sid] = row.line


def _check_sessions(rows: list[Row], parsed: Parsed, problems: Problems) -> None:
    file = fmt.ACADEMIC_SESSIONS.name
    parents: dict[str, tuple[Cells, str]] = {}
    for row, cells, sid in _unique(rows, file, "sourcedId", problems):
        session_type = row["type"]
        if session_type not in SESSION_TYPES:
            cells.error(
                "type",
                f"{session_type!r} is not a session type; use " + ", ".join(sorted(SESSION_TYPES)),
            )
        start = cells.parsed("startDate", parse_date, required=True)
        end = cells.parsed("endDate", parse_date, required=True)
        if start and end and end < start:
            cells.error("endDate", f"{end} is before the start date {start}")
        year = cells.parsed("schoolYear", _parse_year, required=True)
        if row["parentSourcedId"]:
            parents[sid] = (cells, row["parentSourcedId"])
        if cells.ok:
            parsed.sessions[sid] = {
                "title": cells.text("title", required=True),
                "session_type": session_type,
                "start_date": start,
                "end_date": end,
                "school_year": year,
                "parent": None,
            }
            parsed.lines[file][sid] = row.line
    for sid, (cells, parent) in parents.items():
        if parent not in parsed.sessions:
            cells.error("parentSourcedId", f"{parent!r} is not a session in academicSessions.csv")
            parsed.sessions.pop(sid, None)
        elif sid in parsed.sessions:
            parsed.sessions[sid]["parent"] = parent
    for sid, (cells, _parent) in parents.items():
        seen = {sid}
        current = parsed.sessions.get(sid, {}).get("parent")
        while current:
            if current in seen:
                cells.error("parentSourcedId", "sessions are each other's parents (a cycle)")
                break
            seen.add(current)
            current = parsed.sessions.get(current, {}).get("parent")


def _parse_year(text: str) -> int:
    if not (len(text) == 4 and text.isdigit()):
        raise ValueError(f"{text!r} is not a year such as 2027")
    return int(text)


def _check_households(rows: list[Row], parsed: Parsed, problems: Problems) -> None:
    file = fmt.HOUSEHOLDS.name
    for row, cells, sid in _unique(rows, file, "householdSourcedId", problems):
        values = _address(cells)
        values["language"] = cells.parsed("language", normalise_language, default="en")
        if cells.ok:
            parsed.households[sid] = values
            parsed.lines[file][sid] = row.line


def _check_users(rows: list[Row], parsed: Parsed, problems: Problems) -> None:
    file = fmt.USERS.name
    agents: dict[str, tuple[Cells, list[str]]] = {}
    for row, cells, sid in _unique(rows, file, "sourcedId", problems):
        role = row["role"].lower()
        values: dict[str, Any]
        names: dict[str, Any] = {
            "given_name": cells.text("givenName", required=True, max_length=100),
            "middle_name": cells.text("middleName", max_length=100),
            "family_name": cells.text("familyName", required=True, max_length=100),
            "enabled": cells.parsed("enabledUser", parse_bool, default=True),
        }
        orgs = parse_list(row["orgSourcedIds"])
        unknown = [o for o in orgs if o not in parsed.schools and o not in parsed.districts]
        if unknown:
            cells.error("orgSourcedIds", f"{unknown[0]!r} is not an org in orgs.csv")
        schools = [o for o in orgs if o in parsed.schools]
        if role == "student":
            grades = parse_list(row["grades"])
            grade = None
            if len(grades) != 1:
                cells.error("grades", "a student needs exactly one grade")
            else:
                grade = cells.parsed("grades", parse_grade)
            if not schools and not unknown:
                cells.error("orgSourcedIds", "a student needs a school")
            values = {
                **names,
                "grade": grade,
                "school": schools[0] if schools else None,
                "state_id": cells.text("identifier", max_length=50),
            }
            target = parsed.students
        elif role in GUARDIAN_ROLES:
            values = {
                **names,
                "roster_role": GUARDIAN_ROLES[role],
                "identifier": cells.text("identifier", max_length=100),
                "email": cells.parsed(
                    "email", normalise_email, default="", warn="the address is left out"
                ),
                "phone": cells.parsed(
                    "phone", normalise_phone, default="", warn="the number is left out"
                ),
                "sms": cells.parsed(
                    "sms", normalise_phone, default="", warn="the number is left out"
                ),
            }
            target = parsed.guardians
        elif role in STAFF_ROLES:
            values = {
                "given_name": names["given_name"],
                "family_name": names["family_name"],
                "enabled": names["enabled"],
                "role": STAFF_ROLES[role],
                "identifier": cells.text("identifier", max_length=100),
                "email": cells.parsed(
                    "email", normalise_email, default="", warn="the address is left out"
                ),
                "schools": schools,
            }
            target = parsed.staff
        else:
            cells.error(
                "role",
                f"{row['role']!r} is not a role this product imports; use student, "
                "parent, guardian, relative, teacher or administrator",
            )
            continue
        if row["agentSourcedIds"]:
            agents[sid] = (cells, parse_list(row["agentSourcedIds"]))
        if cells.ok:
            target[sid] = values
            parsed.lines[file][sid] = row.line

    state_ids: dict[str, str] = {}
    for sid, student in parsed.students.items():
        state_id = student["state_id"]
        if state_id:
            if state_id in state_ids:
                problems.error(
                    file,
                    parsed.lines[file][sid],
                    f"state id {state_id!r} is also the id of student {state_ids[state_id]!r}",
                    "identifier",
                )
            state_ids[state_id] = sid
    # A stored student the bundle does not list may hold the same state id.
    wanted = list(state_ids)
    for start in range(0, len(wanted), 5000):
        for state_id, holder in m.Student.objects.filter(
            state_id__in=wanted[start : start + 5000]
        ).values_list("state_id", "sourced_id"):
            if holder not in parsed.students:
                sid = state_ids[state_id]
                problems.error(
                    file,
                    parsed.lines[file][sid],
                    f"state id {state_id!r} belongs to student {holder!r}, who is in the "
                    "database but not in this bundle",
                    "identifier",
                )

    # Links between children and guardians, read from either side.
    for sid, (cells, agent_ids) in agents.items():
        is_student = sid in parsed.students
        for agent in agent_ids:
            if is_student:
                if agent in parsed.guardians:
                    parsed.links.setdefault((sid, agent), {"line": cells.row.line})
                else:
                    cells.error("agentSourcedIds", _unknown_user(agent, parsed, "guardian"))
            elif sid in parsed.guardians:
                if agent in parsed.students:
                    parsed.links.setdefault((agent, sid), {})
                else:
                    cells.error("agentSourcedIds", _unknown_user(agent, parsed, "student"))


def _unknown_user(sid: str, parsed: Parsed, wanted: str) -> str:
    for kind, known in (
        ("student", parsed.students),
        ("guardian", parsed.guardians),
        ("member of staff", parsed.staff),
    ):
        if sid in known:
            return f"{sid!r} is a {kind}, not a {wanted}"
    return f"unknown {wanted} {sid!r}: no user in users.csv has that sourcedId"


def _check_demographics(rows: list[Row], parsed: Parsed, problems: Problems) -> None:
    file = fmt.DEMOGRAPHICS.name
    today = datetime.date.today()
    for row, cells, sid in _unique(rows, file, "sourcedId", problems):
        birth_date = cells.parsed("birthDate", parse_date)
        if birth_date and birth_date > today:
            cells.error("birthDate", f"{birth_date} is in the future")
        if sid not in parsed.students:
            if sid not in parsed.guardians and sid not in parsed.staff:
                cells.error("sourcedId", f"{sid!r} is not a user in users.csv")
            continue
        if cells.ok:
            parsed.birth_dates[sid] = birth_date
            parsed.lines[file][sid] = row.line
    users_file = fmt.USERS.name
    for sid in parsed.students.keys() - parsed.birth_dates.keys():
        problems.warning(
            users_file,
            parsed.lines[users_file][sid],
            f"student {sid!r} has no birth date in demographics.csv; their guardians cannot "
            "confirm it when they activate an account",
        )


def _check_courses(rows: list[Row], parsed: Parsed, problems: Problems) -> None:
    file = fmt.COURSES.name
    for row, cells, sid in _unique(rows, file, "sourcedId", problems):
        org = cells.text("orgSourcedId", required=True, max_length=m.SOURCED_ID_LENGTH)
        if org and org not in parsed.schools and org not in parsed.districts:
            cells.error("orgSourcedId", f"{org!r} is not an org in orgs.csv")
        year = row["schoolYearSourcedId"]
        if year and year not in parsed.sessions:
            cells.error("schoolYearSourcedId", f"{year!r} is not a session in academicSessions.csv")
        values = {
            "title": cells.text("title", required=True),
            "course_code": cells.text("courseCode", max_length=100),
            "grades": _grades(cells),
            "subjects": cells.text("subjects"),
            "school_year": year or None,
            "school": org if org in parsed.schools else None,
            "district": org if org in parsed.districts else None,
        }
        if cells.ok:
            parsed.courses[sid] = values
            parsed.lines[file][sid] = row.line


def _grades(cells: Cells) -> str:
    codes = []
    for text in parse_list(cells.row["grades"]):
        try:
            codes.append(parse_grade(text))
        except ValueError as exc:
            cells.error("grades", str(exc))
    return ",".join(codes)


def _check_classes(rows: list[Row], parsed: Parsed, problems: Problems) -> None:
    file = fmt.CLASSES.name
    for row, cells, sid in _unique(rows, file, "sourcedId", problems):
        course = cells.text("courseSourcedId", required=True, max_length=m.SOURCED_ID_LENGTH)
        if course and course not in parsed.courses:
            cells.error("courseSourcedId", f"{course!r} is not a course in courses.csv")
        school = cells.text("schoolSourcedId", required=True, max_length=m.SOURCED_ID_LENGTH)
        if school and school not in parsed.schools:
            cells.error("schoolSourcedId", f"{school!r} is not a school in orgs.csv")
        class_type = row["classType"].lower()
        if class_type not in CLASS_TYPES:
            cells.error("classType", f"{row['classType']!r} is not homeroom or scheduled")
        terms = parse_list(row["termSourcedIds"])
        if not terms:
            cells.error("termSourcedIds", "is required and is empty")
        for term in terms:
            if term not in parsed.sessions:
                cells.error("termSourcedIds", f"{term!r} is not a session in academicSessions.csv")
        values = {
            "title": cells.text("title", required=True),
            "class_code": cells.text("classCode", max_length=100),
            "class_type": class_type,
            "location": cells.text("location", max_length=100),
            "grades": _grades(cells),
            "subjects": cells.text("subjects"),
            "periods": cells.text("periods", max_length=100),
            "course": course,
            "school": school,
            "terms": terms,
        }
        if cells.ok:
            parsed.classes[sid] = values
            parsed.lines[file][sid] = row.line


def _check_enrollments(rows: list[Row], parsed: Parsed, problems: Problems) -> None:
    file = fmt.ENROLLMENTS.name
    pairs: dict[tuple[str, str], int] = {}
    for row, cells, sid in _unique(rows, file, "sourcedId", problems):
        section = cells.text("classSourcedId", required=True, max_length=m.SOURCED_ID_LENGTH)
        if section and section not in parsed.classes:
            cells.error("classSourcedId", f"{section!r} is not a class in classes.csv")
        school = row["schoolSourcedId"]
        if school and school not in parsed.schools:
            cells.error("schoolSourcedId", f"{school!r} is not a school in orgs.csv")
        user = cells.text("userSourcedId", required=True, max_length=m.SOURCED_ID_LENGTH)
        role = row["role"].lower()
        begin = cells.parsed("beginDate", parse_date)
        end = cells.parsed("endDate", parse_date)
        if begin and end and end < begin:
            cells.error("endDate", f"{end} is before the begin date {begin}")
        values: dict[str, Any] = {"section": section, "begin_date": begin, "end_date": end}
        if role == "student":
            if user and user not in parsed.students:
                cells.error("userSourcedId", _unknown_user(user, parsed, "student"))
            values["student"] = user
            target = parsed.student_enrollments
        elif role == "teacher":
            if user and user not in parsed.staff:
                cells.error("userSourcedId", _unknown_user(user, parsed, "member of staff"))
            values["teacher"] = user
            values["is_primary"] = cells.parsed("primary", parse_bool, default=False)
            target = parsed.teaching
        else:
            cells.error(
                "role", f"{row['role']!r} is not an enrollment role; use student or teacher"
            )
            continue
        if (section, user) in pairs:
            cells.error("userSourcedId", f"the same enrollment is on line {pairs[(section, user)]}")
        pairs[(section, user)] = row.line
        if cells.ok:
            target[sid] = values
            parsed.lines[file][sid] = row.line


def _check_members(rows: list[Row], parsed: Parsed, problems: Problems) -> None:
    file = fmt.HOUSEHOLD_MEMBERS.name
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        cells = Cells(file, row, problems)
        household = cells.text("householdSourcedId", required=True, max_length=m.SOURCED_ID_LENGTH)
        user = cells.text("userSourcedId", required=True, max_length=m.SOURCED_ID_LENGTH)
        if not (household and user):
            continue
        if household not in parsed.households:
            cells.error("householdSourcedId", f"{household!r} is not in households.csv")
        key = (household, user)
        if key in seen:
            cells.error(
                "userSourcedId",
                f"{user!r} is already a member of {household!r} on line {seen[key]}",
            )
            continue
        seen[key] = row.line
        role = row["role"].lower()
        if role == "student":
            if user not in parsed.students:
                cells.error("userSourcedId", _unknown_user(user, parsed, "student"))
            primary = cells.parsed("primaryHousehold", parse_bool, required=True)
            if cells.ok:
                parsed.household_students[key] = {"is_primary": primary}
                parsed.lines[file][key] = row.line
        elif role == "guardian":
            if user not in parsed.guardians:
                cells.error("userSourcedId", _unknown_user(user, parsed, "guardian"))
            relationship = cells.parsed("relationship", parse_relationship, required=True)
            rights = cells.parsed("educationRights", parse_bool, required=True)
            if cells.ok:
                parsed.household_guardians[key] = {
                    "relationship": relationship,
                    "has_education_rights": rights,
                }
                parsed.lines[file][key] = row.line
        else:
            cells.error("role", f"{row['role']!r} is not guardian or student")

    _check_primary_households(parsed, problems)
    _apply_relationships(parsed, problems)


def _check_primary_households(parsed: Parsed, problems: Problems) -> None:
    file = fmt.HOUSEHOLD_MEMBERS.name
    memberships: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in parsed.household_students:
        memberships[key[1]].append(key)
    for student, keys in memberships.items():
        primaries = [k for k in keys if parsed.household_students[k]["is_primary"]]
        if not primaries:
            problems.error(
                file,
                parsed.lines[file][keys[0]],
                f"student {student!r} has no primary household; mark one of their "
                "households primaryHousehold=true",
                "primaryHousehold",
            )
        for extra in primaries[1:]:
            problems.error(
                file,
                parsed.lines[file][extra],
                f"student {student!r} is already primary in household {primaries[0][0]!r} "
                f"(line {parsed.lines[file][primaries[0]]}); a student has one primary household",
                "primaryHousehold",
            )
    users_file = fmt.USERS.name
    for student in parsed.students.keys() - memberships.keys():
        problems.warning(
            users_file,
            parsed.lines[users_file][student],
            f"student {student!r} is in no household in householdMembers.csv; "
            "nobody can re-register them",
        )
    in_households = {key[1] for key in parsed.household_guardians}
    for guardian in parsed.guardians.keys() - in_households:
        problems.warning(
            users_file,
            parsed.lines[users_file][guardian],
            f"guardian {guardian!r} is in no household in householdMembers.csv",
        )


def _apply_relationships(parsed: Parsed, problems: Problems) -> None:
    """Each child–guardian link takes its relationship and education rights from the
    guardian's row in a household the two share (the child's primary one first)."""
    households_of_student: dict[str, list[tuple[bool, str]]] = defaultdict(list)
    for (household, student), values in parsed.household_students.items():
        households_of_student[student].append((not values["is_primary"], household))
    for student_households in households_of_student.values():
        student_households.sort()
    users_file = fmt.USERS.name
    members_file = fmt.HOUSEHOLD_MEMBERS.name
    for (student, guardian), link in parsed.links.items():
        for _not_primary, household in households_of_student.get(student, []):
            row = parsed.household_guardians.get((household, guardian))
            if row is not None:
                link.update(row)
                link["members_line"] = parsed.lines[members_file][(household, guardian)]
                break
        else:
            if student in households_of_student:
                problems.error(
                    users_file,
                    link.get("line") or parsed.lines[users_file].get(guardian),
                    f"guardian {guardian!r} of student {student!r} shares no household with "
                    "them, so their relationship and education rights are unknown; add the "
                    "guardian to one of the student's households in householdMembers.csv",
                    "agentSourcedIds",
                )


def _check_emergency_contacts(rows: list[Row], parsed: Parsed, problems: Problems) -> None:
    file = fmt.EMERGENCY_CONTACTS.name
    parsed.emergency_contacts = {}
    for row in rows:
        cells = Cells(file, row, problems)
        household = cells.text("householdSourcedId", required=True, max_length=m.SOURCED_ID_LENGTH)
        if household and household not in parsed.households:
            cells.error("householdSourcedId", f"{household!r} is not in households.csv")
        priority = cells.parsed("priority", _parse_priority, required=True)
        name = cells.text("name", required=True)
        phone = cells.parsed(
            "phone", normalise_phone, required=True, warn="the emergency contact is left out"
        )
        key = (household, priority or 0)
        if priority and key in parsed.lines[file]:
            cells.error(
                "priority",
                f"household {household!r} already has priority {priority} "
                f"on line {parsed.lines[file][key]}",
            )
        if not cells.ok:
            continue
        parsed.lines[file][key] = row.line
        if not phone:
            parsed.skipped.add((file, row.line))
        else:
            parsed.emergency_contacts[key] = {
                "name": name,
                "relationship": cells.text("relationship", max_length=100),
                "phone": phone,
            }


def _parse_priority(text: str) -> int:
    if not text.isdigit() or int(text) < 1 or int(text) > 99:
        raise ValueError(f"{text!r} is not a priority from 1 to 99")
    return int(text)


# -- write -------------------------------------------------------------------------


class RowStatus:
    """Counts each data row once: created, updated, unchanged, or skipped (left out
    because of a warning)."""

    RANK = {"unchanged": 0, "skipped": 1, "updated": 2, "created": 3}

    def __init__(self, report: ImportReport, lines: dict[str, list[int]]) -> None:
        self.report = report
        self.status: dict[tuple[str, int], str] = {}
        self.lines = lines
        # Counted into the report only by ``finish``: a write rolled back removed nothing.
        self.removals: dict[str, int] = defaultdict(int)

    def mark(self, file: str, line: int | None, status: str) -> None:
        if line is None:
            return
        current = self.status.get((file, line), "unchanged")
        if self.RANK[status] > self.RANK[current]:
            self.status[(file, line)] = status

    def created(self, file: str, lines: Iterable[int | None]) -> None:
        """Mark rows of ``file`` created (the highest status: no comparison)."""
        self.status.update(((file, line), "created") for line in lines if line is not None)

    def removed(self, file: str, count: int = 1) -> None:
        self.removals[file] += count

    def finish(self) -> None:
        for file, lines in self.lines.items():
            counts = self.report.files[file]
            counts.created = counts.updated = counts.unchanged = counts.skipped = 0
            counts.removed = self.removals.get(file, 0)
            for line in lines:
                status = self.status.get((file, line), "unchanged")
                setattr(counts, status, getattr(counts, status) + 1)


def _write(parsed: Parsed, status: RowStatus) -> Iterator[None]:
    """Write the checked bundle in six stages, one for each step of ``_check_steps``:
    stage N needs only what steps 1 to N have checked, and each ``yield`` waits for
    the next step."""
    now = timezone.now()
    reason = "roster import"
    lines = parsed.lines
    # A roster administrator the district made registrar or finance keeps that role.
    # (Read first: a query waits for the tables written before it.)
    promoted = dict(
        m.StaffProfile.objects.filter(
            sourced_id__isnull=False,
            role__in=[m.StaffProfile.Role.REGISTRAR, m.StaffProfile.Role.FINANCE],
        ).values_list("sourced_id", "role")
    )

    def sync(
        spec: TableSpec,
        wanted: dict[Any, dict[str, Any]],
        origins: Callable[[Any], dict[str, int | None]],
        *,
        primary: bool = True,
        field_files: dict[str, str] | None = None,
        removed_to: Callable[[Any], tuple[str, int | None]] | None = None,
    ) -> dict[Any, int]:
        """Sync one table and count what happened against the rows it came from."""
        result = sync_table(spec, wanted, now=now, change_reason=reason)
        created = result.created
        one_file = getattr(origins, "file", None)
        if primary and one_file is not None:
            # Rows of one file, each its own record: millions of them (the class
            # enrollments), counted without a call per row.
            status.created(one_file, map(lines[one_file].get, created))
            created = []
        for key in created:
            # A new record counts as created on every row it comes from; a new detail
            # of an existing record (a phone, a membership) as an update of its row.
            created_origins = list(origins(key).items())
            for file, line in created_origins if primary else created_origins[:1]:
                status.mark(file, line, "created" if primary else "updated")
        for key, changed in result.updated.items():
            # A changed field counts against the file it comes from (the first origin
            # unless ``field_files`` names another).
            key_origins = origins(key)
            first_file = next(iter(key_origins))
            for name in changed:
                file = (field_files or {}).get(name, first_file)
                status.mark(file, key_origins.get(file), "updated")
        for key in result.removed:
            if removed_to is not None:
                file, line = removed_to(key)
                status.removed(file)
                status.mark(file, line, "updated")
        return result.pks

    def one(file: str) -> Callable[[Any], dict[str, int | None]]:
        def origins(key: Any) -> dict[str, int | None]:
            return {file: lines[file].get(key)}

        origins.file = file  # type: ignore[attr-defined]
        return origins

    district_pks = sync(
        TableSpec(m.District, ("sourced_id",), ("name", "identifier")),
        parsed.districts,
        one(fmt.ORGS.name),
    )

    school_fields = ["name", "identifier", "district_id"]
    details = parsed.school_details
    if details is not None:
        school_fields += [
            "low_grade",
            "high_grade",
            "street1",
            "street2",
            "city",
            "state",
            "postal_code",
            "phone",
        ]
    blank_details = {
        "low_grade": "",
        "high_grade": "",
        "street1": "",
        "street2": "",
        "city": "",
        "state": "",
        "postal_code": "",
        "phone": "",
    }
    school_pks = sync(
        TableSpec(m.School, ("sourced_id",), tuple(school_fields)),
        {
            sid: {
                "name": v["name"],
                "identifier": v["identifier"],
                "district_id": district_pks[v["district"]] if v.get("district") else None,
                **((details.get(sid) or blank_details) if details is not None else {}),
            }
            for sid, v in parsed.schools.items()
        },
        lambda key: {
            fmt.ORGS.name: lines[fmt.ORGS.name].get(key),
            fmt.SCHOOLS.name: lines[fmt.SCHOOLS.name].get(key),
        },
        field_files={f: fmt.SCHOOLS.name for f in blank_details},
    )

    session_pks: dict[str, int] = {}
    pending = dict(parsed.sessions)
    while pending:
        # Parents before children: each pass takes the sessions whose parent is known.
        ready = {
            sid: v
            for sid, v in pending.items()
            if v["parent"] is None or v["parent"] in session_pks
        }
        session_pks |= sync(
            TableSpec(
                m.AcademicSession,
                ("sourced_id",),
                ("title", "session_type", "start_date", "end_date", "school_year", "parent_id"),
            ),
            {
                sid: {
                    **{
                        k: v[k]
                        for k in ("title", "session_type", "start_date", "end_date", "school_year")
                    },
                    "parent_id": session_pks[v["parent"]] if v["parent"] else None,
                }
                for sid, v in ready.items()
            },
            one(fmt.ACADEMIC_SESSIONS.name),
        )
        for sid in ready:
            del pending[sid]

    household_pks = sync(
        TableSpec(
            m.Household,
            ("sourced_id",),
            ("street1", "street2", "city", "state", "postal_code", "phone", "language"),
        ),
        parsed.households,
        one(fmt.HOUSEHOLDS.name),
    )

    yield

    users_file = fmt.USERS.name
    student_pks = sync(
        TableSpec(
            m.Student,
            ("sourced_id",),
            (
                "given_name",
                "middle_name",
                "family_name",
                "enabled",
                "grade",
                "school_id",
                "state_id",
                "birth_date",
            ),
            # Two students may swap state ids: clear the changing ones first.
            blank_first=("state_id",),
        ),
        {
            sid: {
                **{
                    k: v[k]
                    for k in (
                        "given_name",
                        "middle_name",
                        "family_name",
                        "enabled",
                        "grade",
                        "state_id",
                    )
                },
                "school_id": school_pks[v["school"]],
                "birth_date": parsed.birth_dates.get(sid),
            }
            for sid, v in parsed.students.items()
        },
        lambda key: {
            users_file: lines[users_file].get(key),
            fmt.DEMOGRAPHICS.name: lines[fmt.DEMOGRAPHICS.name].get(key),
        },
        field_files={"birth_date": fmt.DEMOGRAPHICS.name},
    )
    guardian_fields = (
        "given_name",
        "middle_name",
        "family_name",
        "enabled",
        "roster_role",
        "identifier",
    )
    guardian_pks = sync(
        TableSpec(m.Guardian, ("sourced_id",), guardian_fields),
        {sid: {k: v[k] for k in guardian_fields} for sid, v in parsed.guardians.items()},
        one(users_file),
    )
    staff_fields = ("given_name", "family_name", "enabled", "role", "identifier", "email")
    staff_pks = sync(
        TableSpec(m.StaffProfile, ("sourced_id",), staff_fields, scope=Q(sourced_id__isnull=False)),
        {
            sid: {**{k: v[k] for k in staff_fields}, "role": promoted.get(sid, v["role"])}
            for sid, v in parsed.staff.items()
        },
        one(users_file),
    )
    staff_by_pk = {pk: sid for sid, pk in staff_pks.items()}
    sync(
        TableSpec(
            m.StaffProfile.schools.through,
            ("staffprofile_id", "school_id"),
            (),
            remove=lambda key: key[0] in staff_by_pk,
        ),
        {
            (staff_pks[sid], school_pks[school]): {}
            for sid, v in parsed.staff.items()
            for school in v["schools"]
        },
        lambda key: {users_file: lines[users_file].get(staff_by_pk[key[0]])},
        primary=False,
        removed_to=lambda key: (users_file, lines[users_file].get(staff_by_pk[key[0]])),
    )

    guardian_by_pk = {pk: sid for sid, pk in guardian_pks.items()}
    contact_points: dict[Any, dict[str, Any]] = {}
    for sid, v in parsed.guardians.items():
        pk = guardian_pks[sid]
        for roster_field, kind, label, position in (
            ("email", "email", "personal", 0),
            ("phone", "phone", "home", 0),
            ("sms", "phone", "mobile", 1),
        ):
            if v[roster_field]:
                contact_points[(pk, roster_field)] = {
                    "kind": kind,
                    "label": label,
                    "position": position,
                    "phone": v[roster_field] if kind == "phone" else "",
                    "email": v[roster_field] if kind == "email" else "",
                }
    sync(
        TableSpec(
            m.ContactPoint,
            ("guardian_id", "roster_field"),
            ("kind", "label", "position", "phone", "email"),
            scope=~Q(roster_field=""),
            remove=lambda key: key[0] in guardian_by_pk,
        ),
        contact_points,
        lambda key: {users_file: lines[users_file].get(guardian_by_pk[key[0]])},
        primary=False,
        removed_to=lambda key: (users_file, lines[users_file].get(guardian_by_pk.get(key[0]))),
    )

    yield

    course_file = fmt.COURSES.name
    course_pks = sync(
        TableSpec(
            m.Course,
            ("sourced_id",),
            (
                "title",
                "course_code",
                "grades",
                "subjects",
                "school_year_id",
                "school_id",
                "district_id",
            ),
        ),
        {
            sid: {
                "title": v["title"],
                "course_code": v["course_code"],
                "grades": v["grades"],
                "subjects": v["subjects"],
                "school_year_id": session_pks[v["school_year"]] if v["school_year"] else None,
                "school_id": school_pks[v["school"]] if v["school"] else None,
                "district_id": district_pks[v["district"]] if v["district"] else None,
            }
            for sid, v in parsed.courses.items()
        },
        one(course_file),
    )
    classes_file = fmt.CLASSES.name
    class_fields = (
        "title",
        "class_code",
        "class_type",
        "location",
        "grades",
        "subjects",
        "periods",
    )
    class_pks = sync(
        TableSpec(m.ClassSection, ("sourced_id",), (*class_fields, "course_id", "school_id")),
        {
            sid: {
                **{k: v[k] for k in class_fields},
                "course_id": course_pks[v["course"]],
                "school_id": school_pks[v["school"]],
            }
            for sid, v in parsed.classes.items()
        },
        one(classes_file),
    )
    class_by_pk = {pk: sid for sid, pk in class_pks.items()}
    sync(
        TableSpec(
            m.ClassSection.terms.through,
            ("classsection_id", "academicsession_id"),
            (),
            remove=lambda key: key[0] in class_by_pk,
        ),
        {
            (class_pks[sid], session_pks[term]): {}
            for sid, v in parsed.classes.items()
            for term in v["terms"]
        },
        lambda key: {classes_file: lines[classes_file].get(class_by_pk[key[0]])},
        primary=False,
        removed_to=lambda key: (classes_file, lines[classes_file].get(class_by_pk[key[0]])),
    )

    yield

    enrollments_file = fmt.ENROLLMENTS.name
    sync(
        TableSpec(
            m.TeachingAssignment,
            ("sourced_id",),
            ("section_id", "teacher_id", "is_primary", "begin_date", "end_date"),
            remove=lambda key: True,
        ),
        {
            sid: {
                "section_id": class_pks[v["section"]],
                "teacher_id": staff_pks[v["teacher"]],
                "is_primary": v["is_primary"],
                "begin_date": v["begin_date"],
                "end_date": v["end_date"],
            }
            for sid, v in parsed.teaching.items()
        },
        one(enrollments_file),
        removed_to=lambda key: (enrollments_file, None),
    )
    sync(
        TableSpec(
            m.ClassEnrollment,
            ("sourced_id",),
            ("section_id", "student_id", "begin_date", "end_date"),
            remove=lambda key: True,
        ),
        {
            sid: {
                "section_id": class_pks[v["section"]],
                "student_id": student_pks[v["student"]],
                "begin_date": v["begin_date"],
                "end_date": v["end_date"],
            }
            for sid, v in parsed.student_enrollments.items()
        },
        one(enrollments_file),
        removed_to=lambda key: (enrollments_file, None),
    )

    yield

    members_file = fmt.HOUSEHOLD_MEMBERS.name
    listed_households = set(household_pks.values())
    household_by_pk = {pk: sid for sid, pk in household_pks.items()}
    student_by_pk = {pk: sid for sid, pk in student_pks.items()}
    sync(
        TableSpec(
            m.HouseholdGuardian,
            ("household_id", "guardian_id"),
            (),
            # A listed household's members, and a listed guardian's households, are
            # what the bundle says.
            remove=lambda key: key[0] in listed_households or key[1] in guardian_by_pk,
        ),
        {(household_pks[h], guardian_pks[g]): {} for h, g in parsed.household_guardians},
        lambda key: {
            members_file: lines[members_file].get((household_by_pk[key[0]], guardian_by_pk[key[1]]))
        },
        removed_to=lambda key: (members_file, None),
    )
    sync(
        TableSpec(
            m.HouseholdStudent,
            ("household_id", "student_id"),
            ("is_primary",),
            # Also a listed student's rows in households the bundle no longer lists:
            # an old primary row left behind would clash with the new one.
            remove=lambda key: key[0] in listed_households or key[1] in student_by_pk,
            release_first="is_primary",
        ),
        {(household_pks[h], student_pks[s]): v for (h, s), v in parsed.household_students.items()},
        lambda key: {
            members_file: lines[members_file].get((household_by_pk[key[0]], student_by_pk[key[1]]))
        },
        removed_to=lambda key: (members_file, None),
    )
    links_by_key = {
        (student_pks[s], guardian_pks[g]): (s, g, link) for (s, g), link in parsed.links.items()
    }
    sync(
        TableSpec(
            m.StudentGuardian,
            ("student_id", "guardian_id"),
            ("relationship", "has_education_rights"),
            remove=lambda key: key[0] in student_by_pk,
        ),
        {
            key: {
                "relationship": link.get("relationship", "guardian"),
                "has_education_rights": link.get("has_education_rights", False),
            }
            for key, (_s, _g, link) in links_by_key.items()
        },
        lambda key: {
            users_file: lines[users_file].get(links_by_key[key][0]),
            members_file: links_by_key[key][2].get("members_line"),
        },
        primary=False,
        field_files={"relationship": members_file, "has_education_rights": members_file},
        removed_to=lambda key: (users_file, lines[users_file].get(student_by_pk.get(key[0]))),
    )

    yield

    if parsed.emergency_contacts is not None:
        contacts_file = fmt.EMERGENCY_CONTACTS.name
        sync(
            TableSpec(
                m.EmergencyContact,
                ("household_id", "priority"),
                ("name", "relationship", "phone"),
                remove=lambda key: key[0] in listed_households,
            ),
            {(household_pks[h], p): v for (h, p), v in parsed.emergency_contacts.items()},
            lambda key: {
                contacts_file: lines[contacts_file].get((household_by_pk[key[0]], key[1]))
            },
            removed_to=lambda key: (contacts_file, None),
        )
