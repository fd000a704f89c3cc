"""Free and reduced-price meal eligibility from the nutrition office's CSV file.

The file has a header row and two columns: the student (the roster's sourcedId or
the state student id) and the status (``free``, ``reduced`` or ``none``). Every row
is checked before anything is written: a file with any bad row changes nothing, and
each problem names its line. A good file sets ``Student.meal_eligibility`` (with a
history row per child changed) and waives, for the eligible children, the fees that
allow it (``payments.services.waivers_apply``), in one transaction.
"""

from __future__ import annotations

import csv
import io
import logging
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext
from simple_history.utils import bulk_update_with_history

from payments.services import WaiversApplied, waivers_apply
from registration.models import Student
from workflow.services import audit_record

log = logging.getLogger("payments")

# Larger than any district's list (a million rows of two short columns is ~20 MB).
MAX_FILE_BYTES = 50 * 1024 * 1024
LOOKUP_BATCH = 500
UPDATE_BATCH = 1000
# Header names accepted for each column, compared lower-case without spaces,
# hyphens or underscores.
STUDENT_HEADERS = {"student", "studentid", "sourcedid", "studentsourcedid", "stateid", "id"}
STATUS_HEADERS = {"status", "eligibility", "mealstatus", "mealeligibility"}
STATUSES = {"free": "free", "reduced": "reduced", "none": ""}
CHANGE_REASON = "meal eligibility import"


class EligibilityFileMalformed(Exception):
    """The upload is not a CSV file of the expected shape; ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class EligibilityRow:
    line: int
    student: Student
    status: str  # "free", "reduced" or "" (none)


@dataclass
class EligibilityFile:
    """The rows of a file that was read, and the problems of each bad row."""

    rows: list[EligibilityRow] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, message)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class EligibilityImported:
    rows: int
    changed: int
    free: int
    reduced: int
    waived: WaiversApplied


def _header_key(name: str) -> str:
    return "".join(ch for ch in name.strip().lower() if ch.isalnum())


def _text(data: bytes) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise EligibilityFileMalformed(
            gettext("This file is larger than %(megabytes)s MB.")
            % {"megabytes": MAX_FILE_BYTES // (1024 * 1024)}
        )
    if b"\x00" in data[:4096]:
        raise EligibilityFileMalformed(
            gettext("This is not a CSV file. Save the list as CSV (UTF-8) and try again.")
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise EligibilityFileMalformed(
            gettext(
                "Line %(line)s is not UTF-8 text. Save the list as CSV UTF-8 (in Excel: "
                "“CSV UTF-8”) and try again."
            )
            % {"line": line}
        ) from None


def eligibility_file_read(data: bytes) -> EligibilityFile:
    """Check every row of the file; ``EligibilityFileMalformed`` when it cannot be
    read as the expected CSV at all. Students are looked up in batches."""
    text = _text(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise EligibilityFileMalformed(gettext("This file is empty."))
        keys = [_header_key(cell) for cell in header]
        student_at = next((i for i, key in enumerate(keys) if key in STUDENT_HEADERS), None)
        status_at = next((i for i, key in enumerate(keys) if key in STATUS_HEADERS), None)
        if student_at is None or status_at is None:
            raise EligibilityFileMalformed(
                gettext(
                    "The first line must name the columns “student” and “status”; "
                    "it has: %(found)s."
                )
                % {"found": ", ".join(f"“{cell.strip()}”" for cell in header if cell.strip())}
            )
        raw: list[tuple[int, str, str]] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # blank lines are skipped
            raw.append(
                (
                    reader.line_num,
                    _cell(cells, student_at),
                    _cell(cells, status_at).lower(),
                )
            )
    except csv.Error as error:
        raise EligibilityFileMalformed(
            gettext("Line %(line)s cannot be read as CSV (%(problem)s).")
            % {"line": reader.line_num, "problem": str(error)}
        ) from None
    if not raw:
        raise EligibilityFileMalformed(gettext("This file has a header but no students."))
    return _rows_checked(raw)


def _cell(cells: list[str], index: int) -> str:
    value = cells[index].strip() if index < len(cells) else ""
    return value if value.isascii() else unicodedata.normalize("NFC", value)


def _students_by_id(ids: set[str]) -> tuple[dict[str, Student], set[str]]:
    """Students by roster id and by state id, and the ids that name two students
    (one's roster id is another's state id)."""
    found: dict[str, Student] = {}
    ambiguous: set[str] = set()
    wanted = sorted(ids)
    for start in range(0, len(wanted), LOOKUP_BATCH):
        batch = wanted[start : start + LOOKUP_BATCH]
        for student in Student.objects.filter(Q(sourced_id__in=batch) | Q(state_id__in=batch)):
            for key in {student.sourced_id, student.state_id} & set(batch):
                if key in found and found[key].pk != student.pk:
                    ambiguous.add(key)
                found[key] = student
    return found, ambiguous


def _rows_checked(raw: list[tuple[int, str, str]]) -> EligibilityFile:
    result = EligibilityFile()
    students, ambiguous = _students_by_id(
        {identifier for _line, identifier, _s in raw if identifier}
    )
    first_line: dict[int, int] = {}
    for line, identifier, status in raw:
        problems = []
        student = students.get(identifier)
        if not identifier:
            problems.append(gettext("the student id is missing"))
        elif identifier in ambiguous:
            problems.append(
                gettext("“%(id)s” is the id of two students; use the roster id")
                % {"id": identifier}
            )
        elif student is None:
            problems.append(
                gettext("no student has the roster id or state id “%(id)s”") % {"id": identifier}
            )
        elif student.pk in first_line:
            problems.append(
                gettext("this student is also on line %(line)s") % {"line": first_line[student.pk]}
            )
        if status not in STATUSES:
            problems.append(
                gettext("the status “%(status)s” is not free, reduced or none") % {"status": status}
                if status
                else gettext("the status is missing (free, reduced or none)")
            )
        if problems:
            result.errors.append((line, "; ".join(problems)))
            continue
        assert student is not None
        first_line[student.pk] = line
        result.rows.append(EligibilityRow(line=line, student=student, status=STATUSES[status]))
    return result


def meal_eligibility_import(
    *,
    rows: list[EligibilityRow],
    actor: Any = None,
    actor_label: str = "",
    request: HttpRequest | None = None,
    source: str = "",
) -> EligibilityImported:
    """Set the children's eligibility from rows that were checked, and waive what
    the eligible ones owe, in one transaction with its audit row. A second import of
    the same file changes nothing and waives nothing."""
    now = timezone.now()
    with transaction.atomic():
        locked = {
            student.pk: student
            for student in Student.objects.select_for_update()
            .filter(pk__in=[row.student.pk for row in rows])
            .order_by("pk")
        }
        changed = []
        for row in rows:
            student = locked[row.student.pk]
            if student.meal_eligibility != row.status:
                student.meal_eligibility = row.status
                student.updated_at = now
                changed.append(student)
        if changed:
            bulk_update_with_history(
                changed,
                Student,
                ["meal_eligibility", "updated_at"],
                batch_size=UPDATE_BATCH,
                default_user=actor,
                default_change_reason=CHANGE_REASON,
                default_date=now,
            )
        eligible = [student for student in locked.values() if student.meal_eligibility]
        waived = waivers_apply(students=eligible, actor=actor)
        result = EligibilityImported(
            rows=len(rows),
            changed=len(changed),
            free=sum(1 for s in locked.values() if s.meal_eligibility == "free"),
            reduced=sum(1 for s in locked.values() if s.meal_eligibility == "reduced"),
            waived=waived,
        )
        audit_record(
            action="import",
            object_type="registration.student",
            actor=actor,
            actor_label=actor_label,
            request=request,
            detail={
                "meal_eligibility": True,
                "source": source[:200],
                "rows": result.rows,
                "changed": result.changed,
                "waivers": waived.waivers,
                "waived_cents": waived.waived_cents,
            },
        )
    log.info(
        "meal eligibility imported: %s rows, %s changed, %s waivers",
        result.rows,
        result.changed,
        waived.waivers,
    )
    return result
