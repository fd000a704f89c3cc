"""Writing the district's records back out as a roster bundle.

The files are the ones the importer reads (docs/roster-format.md), in a fixed
order with fixed formatting, so that importing an export into an empty database
and exporting again gives the same bytes.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import connection, transaction

from registration import models as m
from registration.roster import format as fmt

SYSTEM_NAME = "reregistration"


@dataclass
class ExportReport:
    folder: Path
    rows: dict[str, int] = field(default_factory=dict)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _date(value: object) -> str:
    return value.isoformat() if value else ""  # type: ignore[attr-defined]


def _phone(value: object) -> str:
    return str(value) if value else ""


class _Writer:
    def __init__(self, folder: Path, report: ExportReport) -> None:
        self.folder = folder
        self.report = report

    def write(self, file_format: fmt.FileFormat, rows: Iterable[dict[str, Any]]) -> None:
        self.write_rows(file_format.name, file_format.columns, rows)

    def write_rows(
        self, name: str, columns: tuple[str, ...], rows: Iterable[dict[str, Any]]
    ) -> None:
        count = 0
        with (self.folder / name).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\r\n")
            writer.writerow(columns)
            for row in rows:
                writer.writerow([row.get(column, "") for column in columns])
                count += 1
        self.report.rows[name] = count


def roster_export(*, folder: Path) -> ExportReport:
    """Write every record that came from the roster as a bundle into ``folder``.

    Every file is read from one snapshot of the database, so that an import
    committing meanwhile cannot make the files disagree with each other.
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return _export(folder)


def _export(folder: Path) -> ExportReport:
    folder.mkdir(parents=True, exist_ok=True)
    report = ExportReport(folder=folder)
    writer = _Writer(folder, report)

    writer.write_rows(fmt.MANIFEST, fmt.MANIFEST_COLUMNS, _manifest())

    districts = dict(m.District.objects.values_list("pk", "sourced_id"))
    schools = dict(m.School.objects.values_list("pk", "sourced_id"))
    sessions = dict(m.AcademicSession.objects.values_list("pk", "sourced_id"))

    writer.write(fmt.ORGS, _orgs(districts))
    writer.write(fmt.SCHOOLS, _schools())
    writer.write(fmt.ACADEMIC_SESSIONS, _sessions(sessions))
    writer.write(fmt.HOUSEHOLDS, _households())
    writer.write(fmt.USERS, _users(schools))
    writer.write(fmt.DEMOGRAPHICS, _demographics())
    writer.write(fmt.COURSES, _courses(districts, schools, sessions))
    writer.write(fmt.CLASSES, _classes(schools, sessions))
    writer.write(fmt.ENROLLMENTS, _enrollments())
    writer.write(fmt.HOUSEHOLD_MEMBERS, _household_members())
    writer.write(fmt.EMERGENCY_CONTACTS, _emergency_contacts())
    return report


def _manifest() -> Iterator[dict[str, str]]:
    yield {"propertyName": "manifest.version", "value": "1.0"}
    yield {"propertyName": "oneroster.version", "value": "1.1"}
    used = {f.manifest_key for f in fmt.FILES if f.oneroster}
    unused = {f"file.{name}" for name in fmt.UNUSED_ONEROSTER_FILES}
    for key in sorted(used | unused):
        yield {"propertyName": key, "value": "bulk" if key in used else "absent"}
    yield {"propertyName": "source.systemName", "value": SYSTEM_NAME}
    yield {"propertyName": "source.systemCode", "value": ""}


def _orgs(districts: dict[int, str]) -> Iterator[dict[str, str]]:
    rows = [
        {"sourcedId": d.sourced_id, "name": d.name, "type": "district", "identifier": d.identifier}
        for d in m.District.objects.all()
    ]
    rows += [
        {
            "sourcedId": s.sourced_id,
            "name": s.name,
            "type": "school",
            "identifier": s.identifier,
            "parentSourcedId": districts.get(s.district_id, "") if s.district_id else "",
        }
        for s in m.School.objects.all()
    ]
    return iter(sorted(rows, key=lambda row: row["sourcedId"]))


def _schools() -> Iterator[dict[str, str]]:
    for s in m.School.objects.exclude(low_grade="").order_by("sourced_id"):
        yield {
            "schoolSourcedId": s.sourced_id,
            "lowGrade": s.low_grade,
            "highGrade": s.high_grade,
            "street1": s.street1,
            "street2": s.street2,
            "city": s.city,
            "state": s.state,
            "postalCode": s.postal_code,
            "phone": _phone(s.phone),
        }


def _sessions(sessions: dict[int, str]) -> Iterator[dict[str, str]]:
    for s in m.AcademicSession.objects.order_by("sourced_id"):
        yield {
            "sourcedId": s.sourced_id,
            "title": s.title,
            "type": s.session_type,
            "startDate": _date(s.start_date),
            "endDate": _date(s.end_date),
            "parentSourcedId": sessions[s.parent_id] if s.parent_id else "",
            "schoolYear": str(s.school_year),
        }


def _households() -> Iterator[dict[str, str]]:
    for h in m.Household.objects.order_by("sourced_id").iterator(chunk_size=5000):
        yield {
            "householdSourcedId": h.sourced_id,
            "street1": h.street1,
            "street2": h.street2,
            "city": h.city,
            "state": h.state,
            "postalCode": h.postal_code,
            "phone": _phone(h.phone),
            "language": h.language,
        }


def _users(schools: dict[int, str]) -> Iterator[dict[str, str]]:
    students = dict(m.Student.objects.values_list("pk", "sourced_id"))
    guardians = dict(m.Guardian.objects.values_list("pk", "sourced_id"))
    agents_of_student: dict[int, list[str]] = defaultdict(list)
    agents_of_guardian: dict[int, list[str]] = defaultdict(list)
    for student_id, guardian_id in m.StudentGuardian.objects.values_list(
        "student_id", "guardian_id"
    ).iterator(chunk_size=10_000):
        agents_of_student[student_id].append(guardians[guardian_id])
        agents_of_guardian[guardian_id].append(students[student_id])
    contacts: dict[int, dict[str, str]] = defaultdict(dict)
    for guardian_id, roster_field, phone, email in (
        m.ContactPoint.objects.exclude(roster_field="")
        .values_list("guardian_id", "roster_field", "phone", "email")
        .iterator(chunk_size=10_000)
    ):
        contacts[guardian_id][roster_field] = email or str(phone)
    staff_schools: dict[int, list[str]] = defaultdict(list)
    for staff_id, school_id in m.StaffProfile.schools.through.objects.values_list(
        "staffprofile_id", "school_id"
    ):
        staff_schools[staff_id].append(schools[school_id])

    rows: list[dict[str, str]] = []
    for s in m.Student.objects.all().iterator(chunk_size=5000):
        rows.append(
            {
                "sourcedId": s.sourced_id,
                "enabledUser": _bool(s.enabled),
                "orgSourcedIds": schools[s.school_id],
                "role": "student",
                "givenName": s.given_name,
                "familyName": s.family_name,
                "middleName": s.middle_name,
                "identifier": s.state_id,
                "agentSourcedIds": ",".join(sorted(agents_of_student[s.pk])),
                "grades": s.grade,
            }
        )
    for g in m.Guardian.objects.all().iterator(chunk_size=5000):
        contact = contacts.get(g.pk, {})
        rows.append(
            {
                "sourcedId": g.sourced_id,
                "enabledUser": _bool(g.enabled),
                "role": g.roster_role,
                "givenName": g.given_name,
                "familyName": g.family_name,
                "middleName": g.middle_name,
                "identifier": g.identifier,
                "email": contact.get("email", ""),
                "sms": contact.get("sms", ""),
                "phone": contact.get("phone", ""),
                "agentSourcedIds": ",".join(sorted(agents_of_guardian[g.pk])),
            }
        )
    for p in m.StaffProfile.objects.exclude(sourced_id=None):
        rows.append(
            {
                "sourcedId": p.sourced_id or "",
                "enabledUser": _bool(p.enabled),
                "orgSourcedIds": ",".join(sorted(staff_schools[p.pk])),
                "role": "teacher" if p.role == m.StaffProfile.Role.TEACHER else "administrator",
                "givenName": p.given_name,
                "familyName": p.family_name,
                "identifier": p.identifier,
                "email": p.email,
            }
        )
    rows.sort(key=lambda row: row["sourcedId"])
    return iter(rows)


def _demographics() -> Iterator[dict[str, str]]:
    for sourced_id, birth_date in (
        m.Student.objects.exclude(birth_date=None)
        .order_by("sourced_id")
        .values_list("sourced_id", "birth_date")
        .iterator(chunk_size=10_000)
    ):
        yield {"sourcedId": sourced_id, "birthDate": _date(birth_date)}


def _courses(
    districts: dict[int, str], schools: dict[int, str], sessions: dict[int, str]
) -> Iterator[dict[str, str]]:
    for c in m.Course.objects.order_by("sourced_id"):
        yield {
            "sourcedId": c.sourced_id,
            "schoolYearSourcedId": sessions[c.school_year_id] if c.school_year_id else "",
            "title": c.title,
            "courseCode": c.course_code,
            "grades": c.grades,
            "orgSourcedId": schools[c.school_id] if c.school_id else districts[c.district_id or 0],
            "subjects": c.subjects,
        }


def _classes(schools: dict[int, str], sessions: dict[int, str]) -> Iterator[dict[str, str]]:
    courses = dict(m.Course.objects.values_list("pk", "sourced_id"))
    terms: dict[int, list[str]] = defaultdict(list)
    for class_id, session_id in m.ClassSection.terms.through.objects.values_list(
        "classsection_id", "academicsession_id"
    ):
        terms[class_id].append(sessions[session_id])
    for c in m.ClassSection.objects.order_by("sourced_id").iterator(chunk_size=5000):
        yield {
            "sourcedId": c.sourced_id,
            "title": c.title,
            "grades": c.grades,
            "courseSourcedId": courses[c.course_id],
            "classCode": c.class_code,
            "classType": c.class_type,
            "location": c.location,
            "schoolSourcedId": schools[c.school_id],
            "termSourcedIds": ",".join(sorted(terms[c.pk])),
            "subjects": c.subjects,
            "periods": c.periods,
        }


def _enrollments() -> Iterator[dict[str, Any]]:
    teaching = m.TeachingAssignment.objects.values_list(
        "sourced_id",
        "section__sourced_id",
        "section__school__sourced_id",
        "teacher__sourced_id",
        "is_primary",
        "begin_date",
        "end_date",
    )
    enrollments = m.ClassEnrollment.objects.values_list(
        "sourced_id",
        "section__sourced_id",
        "section__school__sourced_id",
        "student__sourced_id",
        "begin_date",
        "end_date",
    )
    rows: list[dict[str, Any]] = [
        {
            "sourcedId": sid,
            "classSourcedId": section,
            "schoolSourcedId": school,
            "userSourcedId": teacher,
            "role": "teacher",
            "primary": _bool(primary),
            "beginDate": _date(begin),
            "endDate": _date(end),
        }
        for sid, section, school, teacher, primary, begin, end in teaching.iterator(
            chunk_size=10_000
        )
    ]
    rows += [
        {
            "sourcedId": sid,
            "classSourcedId": section,
            "schoolSourcedId": school,
            "userSourcedId": student,
            "role": "student",
            "primary": "false",
            "beginDate": _date(begin),
            "endDate": _date(end),
        }
        for sid, section, school, student, begin, end in enrollments.iterator(chunk_size=10_000)
    ]
    rows.sort(key=lambda row: row["sourcedId"])
    return iter(rows)


def _household_members() -> Iterator[dict[str, str]]:
    households = dict(m.Household.objects.values_list("pk", "sourced_id"))
    students = dict(m.Student.objects.values_list("pk", "sourced_id"))
    guardians = dict(m.Guardian.objects.values_list("pk", "sourced_id"))
    student_rows = list(
        m.HouseholdStudent.objects.values_list("household_id", "student_id", "is_primary")
    )
    guardian_rows = list(m.HouseholdGuardian.objects.values_list("household_id", "guardian_id"))
    links = {
        (s, g): (relationship, rights)
        for s, g, relationship, rights in m.StudentGuardian.objects.values_list(
            "student_id", "guardian_id", "relationship", "has_education_rights"
        ).iterator(chunk_size=10_000)
    }
    # The importer gives each link the values of the guardian's row in the first
    # household the two share (the child's primary household first); a household's
    # guardian row is written from the links that were read from it.
    households_of_student: dict[int, list[tuple[bool, str, int]]] = defaultdict(list)
    for household_id, student_id, is_primary in student_rows:
        households_of_student[student_id].append(
            (not is_primary, households[household_id], household_id)
        )
    guardians_of_household: dict[int, set[int]] = defaultdict(set)
    for household_id, guardian_id in guardian_rows:
        guardians_of_household[household_id].add(guardian_id)
    row_values: dict[tuple[int, int], tuple[str, str, bool]] = {}
    for (student_id, guardian_id), (relationship, rights) in links.items():
        for _not_primary, _sid, household_id in sorted(households_of_student[student_id]):
            if guardian_id in guardians_of_household[household_id]:
                key = (household_id, guardian_id)
                candidate = (students[student_id], relationship, rights)
                if key not in row_values or candidate < row_values[key]:
                    row_values[key] = candidate
                break

    rows = []
    for household_id, guardian_id in guardian_rows:
        _student, relationship, rights = row_values.get(
            (household_id, guardian_id), ("", "other", False)
        )
        rows.append(
            {
                "householdSourcedId": households[household_id],
                "userSourcedId": guardians[guardian_id],
                "role": "guardian",
                "relationship": relationship,
                "educationRights": _bool(rights),
            }
        )
    for household_id, student_id, is_primary in student_rows:
        rows.append(
            {
                "householdSourcedId": households[household_id],
                "userSourcedId": students[student_id],
                "role": "student",
                "primaryHousehold": _bool(is_primary),
            }
        )
    rows.sort(key=lambda row: (row["householdSourcedId"], row["role"], row["userSourcedId"]))
    return iter(rows)


def _emergency_contacts() -> Iterator[dict[str, str]]:
    for household, name, relationship, phone, priority in m.EmergencyContact.objects.order_by(
        "household__sourced_id", "priority"
    ).values_list("household__sourced_id", "name", "relationship", "phone", "priority"):
        yield {
            "householdSourcedId": household,
            "name": name,
            "relationship": relationship,
            "phone": _phone(phone),
            "priority": str(priority),
        }
