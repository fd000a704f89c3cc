"""Importing the sample bundle in tests/data/roster, with every messy case in it:
a byte-order mark and Windows line endings (users.csv, householdMembers.csv),
accents and apostrophes, guardians without email, a guardian in two households, a
child in two households, phone numbers in every common US format, a ZIP code whose
leading zero a spreadsheet dropped, language names instead of codes, bad values
that are warned about and left out."""

from __future__ import annotations

import datetime
import shutil

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from registration import models as m
from registration.services import roster_import
from tests.conftest import ROSTER
from workflow.models import AuditEvent


def _phones(guardian: m.Guardian) -> dict[str, str]:
    return {
        p.roster_field: (str(p.phone) if p.kind == "phone" else p.email)
        for p in guardian.contact_points.all()
    }


def test_the_report_counts_every_row_and_warns_about_bad_values(sample_district):
    report = sample_district
    assert report.written
    assert {name: vars(c) for name, c in report.files.items()} == {
        "orgs.csv": dict(read=4, created=4, updated=0, unchanged=0, skipped=0, removed=0),
        "schools.csv": dict(read=3, created=3, updated=0, unchanged=0, skipped=0, removed=0),
        "academicSessions.csv": dict(
            read=4, created=4, updated=0, unchanged=0, skipped=0, removed=0
        ),
        "households.csv": dict(read=8, created=8, updated=0, unchanged=0, skipped=0, removed=0),
        "users.csv": dict(read=24, created=24, updated=0, unchanged=0, skipped=0, removed=0),
        "demographics.csv": dict(read=8, created=8, updated=0, unchanged=0, skipped=0, removed=0),
        "courses.csv": dict(read=6, created=6, updated=0, unchanged=0, skipped=0, removed=0),
        "classes.csv": dict(read=7, created=7, updated=0, unchanged=0, skipped=0, removed=0),
        "enrollments.csv": dict(read=17, created=17, updated=0, unchanged=0, skipped=0, removed=0),
        "householdMembers.csv": dict(
            read=23, created=23, updated=0, unchanged=0, skipped=0, removed=0
        ),
        "emergencyContacts.csv": dict(
            read=6, created=5, updated=0, unchanged=0, skipped=1, removed=0
        ),
    }
    assert sorted(str(w) for w in report.problems.warnings) == [
        "emergencyContacts.csv:6: column phone: 'not a number' is not a phone number; the "
        "emergency contact is left out",
        "households.csv:8: column phone: '555-0100' is not a valid phone number (area code and "
        "7 digits?); the number is left out",
        "users.csv:10: student 'stu-009' has no birth date in demographics.csv; their guardians "
        "cannot confirm it when they activate an account",
        "users.csv:18: column email: 'marco.dangelo at example' is not an email address; the "
        "address is left out",
    ]
    assert (
        AuditEvent.objects.filter(action="import", object_type="registration.roster").count() == 1
    )


def test_district_schools_and_school_years(sample_district):
    district = m.District.objects.get()
    assert (district.sourced_id, district.name, district.identifier) == (
        "district-1",
        "Riverside Unified School District",
        "RUSD",
    )
    schools = {
        s.sourced_id: (
            s.name,
            s.identifier,
            s.low_grade,
            s.high_grade,
            s.street1,
            s.street2,
            s.city,
            s.state,
            s.postal_code,
            str(s.phone) if s.phone else "",
            s.district_id == district.pk,
        )
        for s in m.School.objects.all()
    }
    assert schools == {
        "sch-elem": (
            "Las Lomas Elementary",
            "ELEM001",
            "KG",
            "05",
            "100 Loma Verde Ave",
            "",
            "Riverside",
            "CA",
            "95201",
            "+16505550110",
            True,
        ),
        "sch-mid": (
            "Sequoia Middle School",
            "MID001",
            "06",
            "08",
            "2200 Sierra Way",
            "",
            "Riverside",
            "CA",
            "95203",
            "+16505550120",
            True,
        ),
        "sch-high": (
            "Mission Ridge High School",
            "HIGH001",
            "09",
            "12",
            "50 Mission Ridge Rd",
            "Building A",
            "Riverside",
            "CA",
            "95205-1234",
            "",
            True,
        ),
    }
    sessions = {
        s.sourced_id: (
            s.title,
            s.session_type,
            s.start_date,
            s.end_date,
            s.school_year,
            s.parent.sourced_id if s.parent else None,
        )
        for s in m.AcademicSession.objects.select_related("parent")
    }
    assert sessions == {
        "sy-2027": (
            "2026–27 School Year",
            "schoolYear",
            datetime.date(2026, 8, 17),
            datetime.date(2027, 6, 11),
            2027,
            None,
        ),
        "sy-2027-fall": (
            "Fall 2026",
            "semester",
            datetime.date(2026, 8, 17),
            datetime.date(2026, 12, 18),
            2027,
            "sy-2027",
        ),
        "sy-2027-spring": (
            "Spring 2027",
            "semester",
            datetime.date(2027, 1, 5),
            datetime.date(2027, 6, 11),
            2027,
            "sy-2027",
        ),
        "sy-2028": (
            "2027–28 School Year",
            "schoolYear",
            datetime.date(2027, 8, 16),
            datetime.date(2028, 6, 9),
            2028,
            None,
        ),
    }
    assert m.AcademicSession.objects.get(sourced_id="sy-2028").label == "2027–28"


def test_households_with_normalised_addresses_phones_and_languages(sample_district):
    households = {
        h.sourced_id: (
            h.street1,
            h.street2,
            h.city,
            h.state,
            h.postal_code,
            str(h.phone) if h.phone else "",
            h.language,
        )
        for h in m.Household.objects.all()
    }
    assert households == {
        "hh-001": (
            "1450 Alameda de las Pulgas",
            "Apt 4, Building B",
            "Riverside",
            "CA",
            "95202",
            "+16505550130",
            "es",
        ),
        "hh-002": ("22 Waverley St", "", "Riverside", "CA", "95201", "", "en"),
        "hh-003": ("9 Cowper Ct", "", "Riverside", "CA", "95204", "+16505550140", "en"),
        "hh-004": ("780 El Dorado Ave", "", "Riverside", "CA", "95203", "+16505550150", "en"),
        "hh-005": ("781 El Dorado Ave", "", "Riverside", "CA", "95203", "", "en"),
        "hh-006": ("3 Greer Rd", "Unit 12", "Riverside", "CA", "95206", "+16505550160", "en"),
        # ZIP 2134 lost its leading zero in a spreadsheet; 555-0100 has no area code.
        "hh-007": ("45 Beacon St", "", "Boston", "MA", "02134", "", "vi"),
        "hh-008": ("1200 Middlefield Rd", "", "Riverside", "CA", "95207", "", "es"),
    }


def test_students_with_accents_grades_schools_and_birth_dates(sample_district):
    students = {
        s.sourced_id: (
            s.given_name,
            s.middle_name,
            s.family_name,
            s.grade,
            s.school.sourced_id,
            s.birth_date,
            s.state_id,
            s.enabled,
        )
        for s in m.Student.objects.select_related("school")
    }
    date = datetime.date
    assert students == {
        "stu-001": (
            "Sofía",
            "",
            "García Núñez",
            "03",
            "sch-elem",
            date(2018, 3, 14),
            "1000000001",
            True,
        ),
        "stu-002": (
            "Mateo",
            "José",
            "García Núñez",
            "07",
            "sch-mid",
            date(2014, 11, 2),
            "1000000002",
            True,
        ),
        "stu-003": ("Liam", "", "O'Brien", "KG", "sch-elem", date(2021, 6, 30), "1000000003", True),
        "stu-004": (
            "Zoë",
            "Aoife",
            "O'Brien",
            "10",
            "sch-high",
            date(2011, 1, 22),
            "1000000004",
            True,
        ),
        "stu-005": ("Chidi", "", "Okafor", "05", "sch-elem", date(2016, 5, 9), "1000000005", True),
        "stu-006": ("Amara", "", "Okafor", "01", "sch-elem", date(2020, 2, 29), "1000000006", True),
        "stu-007": (
            "Gianna",
            "",
            "D'Angelo",
            "09",
            "sch-high",
            date(2012, 7, 4),
            "1000000007",
            True,
        ),
        "stu-008": (
            "Minh",
            "Văn",
            "Nguyễn",
            "12",
            "sch-high",
            date(2009, 10, 10),
            "1000000008",
            True,
        ),
        "stu-009": ("Astrid", "", "Bjørnstad", "06", "sch-mid", None, "1000000009", True),
    }


def test_guardians_and_their_typed_contact_points(sample_district):
    guardians = {
        g.sourced_id: (g.given_name, g.family_name, g.roster_role, g.enabled, _phones(g))
        for g in m.Guardian.objects.prefetch_related("contact_points")
    }
    assert guardians == {
        "par-001": ("María José", "Núñez-Peña", "parent", True, {}),
        "par-002": (
            "José Ángel",
            "García",
            "parent",
            True,
            {"email": "jose.garcia@example.com", "sms": "+16505550135", "phone": "+16505550134"},
        ),
        "par-003": (
            "Siobhan",
            "O'Brien",
            "parent",
            True,
            {"email": "Siobhan.OBrien@example.com", "sms": "+14155550171"},
        ),
        "par-004": ("Declan", "O'Brien", "parent", True, {"phone": "+16505550199"}),
        "par-005": (
            "Ngozi",
            "Okafor",
            "relative",
            True,
            {"email": "ngozi.okafor@example.com", "sms": "+14085550102"},
        ),
        "par-006": ("Adaeze", "Okafor", "parent", True, {"email": "adaeze@example.com"}),
        "par-007": ("Emeka", "Okafor", "parent", True, {"phone": "+14085550103"}),
        # The invalid email is left out; the extension of the phone number is dropped.
        "par-008": ("Marco", "D'Angelo", "parent", True, {"phone": "+16505550123"}),
        "par-009": ("Thị Hoa", "Nguyễn", "guardian", True, {"phone": "+16175550188"}),
        "par-010": (
            "Ingrid",
            "Bjørnstad",
            "parent",
            True,
            {"email": "ingrid.b@example.com", "sms": "+16505550142"},
        ),
        "par-011": ("Tom", "Hale", "parent", True, {"email": "tom.hale@example.com"}),
    }
    sms = m.ContactPoint.objects.get(guardian__sourced_id="par-002", roster_field="sms")
    assert (sms.kind, sms.label, sms.position) == ("phone", "mobile", 1)
    home = m.ContactPoint.objects.get(guardian__sourced_id="par-002", roster_field="phone")
    assert (home.kind, home.label, home.position) == ("phone", "home", 0)


def test_households_members_and_each_childs_guardians(sample_district):
    members = {
        (row.household.sourced_id, row.guardian.sourced_id)
        for row in m.HouseholdGuardian.objects.select_related("household", "guardian")
    }
    assert members == {
        ("hh-001", "par-001"),
        ("hh-001", "par-002"),
        ("hh-002", "par-003"),
        ("hh-003", "par-004"),
        ("hh-004", "par-005"),
        ("hh-005", "par-006"),
        ("hh-005", "par-007"),
        ("hh-005", "par-005"),
        ("hh-006", "par-008"),
        ("hh-007", "par-009"),
        ("hh-008", "par-010"),
        ("hh-008", "par-011"),
    }
    children = {
        (row.household.sourced_id, row.student.sourced_id): row.is_primary
        for row in m.HouseholdStudent.objects.select_related("household", "student")
    }
    assert children == {
        ("hh-001", "stu-001"): True,
        ("hh-001", "stu-002"): True,
        ("hh-002", "stu-003"): True,
        ("hh-002", "stu-004"): True,
        ("hh-003", "stu-003"): False,
        ("hh-003", "stu-004"): False,
        ("hh-004", "stu-005"): True,
        ("hh-005", "stu-006"): True,
        ("hh-006", "stu-007"): True,
        ("hh-007", "stu-008"): True,
        ("hh-008", "stu-009"): True,
    }
    links = {
        (link.student.sourced_id, link.guardian.sourced_id): (
            link.relationship,
            link.has_education_rights,
        )
        for link in m.StudentGuardian.objects.select_related("student", "guardian")
    }
    assert links == {
        ("stu-001", "par-001"): ("mother", True),
        ("stu-001", "par-002"): ("father", True),
        ("stu-002", "par-001"): ("mother", True),
        ("stu-002", "par-002"): ("father", True),
        # Siobhan is named only on her children's rows; Declan lives in the second household.
        ("stu-003", "par-003"): ("mother", True),
        ("stu-003", "par-004"): ("father", True),
        ("stu-004", "par-003"): ("mother", True),
        ("stu-004", "par-004"): ("father", True),
        # Ngozi raises Chidi, and is a grandparent without education rights for Amara.
        ("stu-005", "par-005"): ("grandparent", True),
        ("stu-006", "par-005"): ("grandparent", False),
        ("stu-006", "par-006"): ("mother", True),
        ("stu-006", "par-007"): ("father", True),
        ("stu-007", "par-008"): ("father", True),
        ("stu-008", "par-009"): ("guardian", True),
        ("stu-009", "par-010"): ("mother", True),
        ("stu-009", "par-011"): ("other", False),
    }


def test_emergency_contacts_in_order(sample_district):
    contacts = [
        (c.household.sourced_id, c.priority, c.name, c.relationship, str(c.phone))
        for c in m.EmergencyContact.objects.select_related("household").order_by(
            "household__sourced_id", "priority"
        )
    ]
    assert contacts == [
        ("hh-001", 1, "Carmen Núñez", "Tía", "+16505550177"),
        ("hh-001", 2, "Rubén Peña", "Neighbor", "+16505550178"),
        ("hh-002", 1, "Maeve O'Sullivan", "Aunt", "+14155550179"),
        ("hh-004", 1, "Chinwe Eze", "Family friend", "+14085550180"),
        ("hh-008", 1, "Kari Bjørnstad", "Sister", "+16505550181"),
    ]


def test_staff_courses_classes_and_enrollments(sample_district):
    staff = {
        p.sourced_id: (
            p.role,
            p.given_name,
            p.family_name,
            p.email,
            sorted(p.schools.values_list("sourced_id", flat=True)),
            p.user_id,
        )
        for p in m.StaffProfile.objects.all()
    }
    assert staff == {
        "tch-001": (
            "teacher",
            "Rebecca",
            "Lindqvist",
            "rebecca.lindqvist@riverside.example.org",
            ["sch-elem"],
            None,
        ),
        "tch-002": (
            "teacher",
            "Daniel",
            "Ramírez",
            "daniel.ramirez@riverside.example.org",
            ["sch-mid"],
            None,
        ),
        "tch-003": (
            "teacher",
            "Aisha",
            "Haddad",
            "aisha.haddad@riverside.example.org",
            ["sch-high", "sch-mid"],
            None,
        ),
        "adm-001": (
            "office",
            "Carmen",
            "Ortiz",
            "carmen.ortiz@riverside.example.org",
            ["sch-elem"],
            None,
        ),
    }
    courses = {
        c.sourced_id: (
            c.title,
            c.course_code,
            c.grades,
            c.school.sourced_id,
            c.school_year.sourced_id,
        )
        for c in m.Course.objects.select_related("school", "school_year")
    }
    assert courses["crs-math-mid"] == (
        "Mathematics 6–8",
        "MATH-MS",
        "06,07,08",
        "sch-mid",
        "sy-2027",
    )
    assert courses["crs-hr-1"] == ("Grade 1 Homeroom", "HR-01", "01", "sch-elem", "sy-2027")
    assert len(courses) == 6
    section = m.ClassSection.objects.get(sourced_id="cls-math-7")
    assert (
        section.title,
        section.class_type,
        section.location,
        section.periods,
        section.course.sourced_id,
        section.school.sourced_id,
    ) == ("Math 7 (Period 2)", "scheduled", "B14", "2", "crs-math-mid", "sch-mid")
    assert sorted(section.terms.values_list("sourced_id", flat=True)) == [
        "sy-2027-fall",
        "sy-2027-spring",
    ]
    assert m.ClassSection.objects.get(sourced_id="cls-hr-5").class_type == "homeroom"
    teaching = {
        (t.section.sourced_id, t.teacher.sourced_id): t.is_primary
        for t in m.TeachingAssignment.objects.select_related("section", "teacher")
    }
    assert teaching[("cls-math-6", "tch-002")] is True
    assert teaching[("cls-math-6", "tch-003")] is False
    assert len(teaching) == 8
    enrollments = {
        e.student.sourced_id: e.section.sourced_id
        for e in m.ClassEnrollment.objects.select_related("student", "section")
    }
    assert enrollments == {
        "stu-001": "cls-hr-3",
        "stu-002": "cls-math-7",
        "stu-003": "cls-hr-k",
        "stu-004": "cls-eng-h",
        "stu-005": "cls-hr-5",
        "stu-006": "cls-hr-1",
        "stu-007": "cls-eng-h",
        "stu-008": "cls-eng-h",
        "stu-009": "cls-math-6",
    }


def test_a_second_import_of_the_same_bundle_changes_nothing(sample_district):
    history_before = m.Student.history.count()
    report = roster_import(path=ROSTER)
    assert report.ok
    total = report.total()
    assert (total.created, total.updated, total.removed) == (0, 0, 0)
    assert total.unchanged == total.read - total.skipped
    assert m.Student.history.count() == history_before


def test_changes_are_counted_per_file_and_kept_in_history(sample_district, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(ROSTER, bundle)
    users = (bundle / "users.csv").read_text(encoding="utf-8-sig")
    users = users.replace("Chidi,Okafor", "Chidiebere,Okafor")
    # Declan gets an email; Tom Hale is no longer Astrid's guardian.
    users = users.replace(
        ",Declan,O'Brien,,,,,+1 650 555 0199",
        ",Declan,O'Brien,,,declan@example.com,,+1 650 555 0199",
    )
    users = users.replace('"par-010,par-011"', "par-010")
    (bundle / "users.csv").write_text(users, encoding="utf-8")
    members = (bundle / "householdMembers.csv").read_text()
    # Liam now lives mainly with his father.
    members = members.replace("hh-002,stu-003,student,true", "hh-002,stu-003,student,false")
    members = members.replace("hh-003,stu-003,student,false", "hh-003,stu-003,student,true")
    # Tom Hale leaves the Bjørnstad household.
    members = members.replace("hh-008,par-011,guardian,,other,false\n", "")
    (bundle / "householdMembers.csv").write_text(members)

    report = roster_import(path=bundle)
    assert report.ok, [str(p) for p in report.problems.errors]
    users_counts = report.files["users.csv"]
    assert (users_counts.created, users_counts.updated, users_counts.removed) == (0, 3, 1)
    members_counts = report.files["householdMembers.csv"]
    assert (members_counts.created, members_counts.updated, members_counts.removed) == (0, 2, 1)
    assert report.files["households.csv"].updated == 0

    chidi = m.Student.objects.get(sourced_id="stu-005")
    assert chidi.given_name == "Chidiebere"
    assert [h.given_name for h in chidi.history.order_by("history_id")] == ["Chidi", "Chidiebere"]
    assert chidi.history.latest("history_id").history_change_reason == "roster import"
    assert _phones(m.Guardian.objects.get(sourced_id="par-004"))["email"] == "declan@example.com"
    primary = m.HouseholdStudent.objects.get(student__sourced_id="stu-003", is_primary=True)
    assert primary.household.sourced_id == "hh-003"
    assert not m.HouseholdGuardian.objects.filter(guardian__sourced_id="par-011").exists()
    # The guardian record stays; only the membership goes.
    assert m.Guardian.objects.filter(sourced_id="par-011").exists()


def test_removed_values_and_links_are_removed(sample_district, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(ROSTER, bundle)
    users = (bundle / "users.csv").read_text(encoding="utf-8-sig")
    # José no longer has a home phone; Amara's grandmother is no longer her guardian.
    users = users.replace("650.555.0135,(650) 555-0134,", "650.555.0135,,")
    users = users.replace('"par-006,par-007,par-005"', '"par-006,par-007"')
    (bundle / "users.csv").write_text(users, encoding="utf-8")
    contacts = (bundle / "emergencyContacts.csv").read_text()
    (bundle / "emergencyContacts.csv").write_text(
        contacts.replace("hh-001,Rubén Peña,Neighbor,650-555-0178,2\n", "")
    )

    report = roster_import(path=bundle)
    assert report.ok
    assert report.files["users.csv"].updated == 2
    assert report.files["users.csv"].removed == 2
    assert report.files["emergencyContacts.csv"].removed == 1
    assert "phone" not in _phones(m.Guardian.objects.get(sourced_id="par-002"))
    assert not m.StudentGuardian.objects.filter(
        student__sourced_id="stu-006", guardian__sourced_id="par-005"
    ).exists()
    assert list(
        m.EmergencyContact.objects.filter(household__sourced_id="hh-001").values_list(
            "name", flat=True
        )
    ) == ["Carmen Núñez"]


def test_records_missing_from_a_later_bundle_are_kept_and_reported(sample_district, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(ROSTER, bundle)
    for name in ("users.csv", "householdMembers.csv", "enrollments.csv", "demographics.csv"):
        path = bundle / name
        kept = [
            line
            for line in path.read_text(encoding="utf-8-sig").splitlines(True)
            if "stu-008" not in line
        ]
        path.write_text("".join(kept), encoding="utf-8")

    report = roster_import(path=bundle)
    assert report.ok, [str(p) for p in report.problems.errors]
    assert m.Student.objects.filter(sourced_id="stu-008").exists()
    assert "students in the database but not in this bundle, left unchanged: 1" in report.notes
    assert report.files["enrollments.csv"].removed == 1


def test_dry_run_reports_and_writes_nothing(db, roster_path):
    report = roster_import(path=roster_path, dry_run=True)
    assert report.ok
    assert report.files["users.csv"].created == 24
    assert not report.written
    assert m.Student.objects.count() == 0
    assert m.Student.history.count() == 0
    assert AuditEvent.objects.count() == 0


def test_a_zip_with_the_bundle_in_a_folder_imports(db, roster_path, tmp_path):
    archive = shutil.make_archive(
        str(tmp_path / "roster"), "zip", roster_path.parent, roster_path.name
    )
    report = roster_import(path=tmp_path / "roster.zip")
    assert report.ok, [str(p) for p in report.problems.errors]
    assert archive.endswith(".zip")
    assert m.Student.objects.count() == 9


def test_the_command_prints_the_report(db, roster_path, capsys):
    call_command("import_roster", str(roster_path))
    out, err = capsys.readouterr()
    assert "users.csv" in out and "Imported in" in out
    assert "4 warnings:" in err
    assert "users.csv:18: column email:" in err


def test_the_command_dry_run_says_so(db, roster_path, capsys):
    call_command("import_roster", str(roster_path), "--dry-run")
    out, _err = capsys.readouterr()
    assert "Dry run: nothing was written." in out
    assert m.Household.objects.count() == 0


def test_a_path_that_is_not_a_bundle_is_refused(db, tmp_path, capsys):
    bogus = tmp_path / "roster.zip"
    bogus.write_bytes(b"this is not a zip file")
    with pytest.raises(CommandError):
        call_command("import_roster", str(bogus))
    _out, err = capsys.readouterr()
    assert "roster.zip: roster.zip is neither a folder nor a zip file" in err


def test_a_child_whose_old_household_left_the_bundle_moves_cleanly(sample_district, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(ROSTER, bundle)
    # Gianna's household hh-006 is gone; she now lives with her father in a new one.
    households = (bundle / "households.csv").read_text()
    households = households.replace("hh-006,3 Greer Rd,Unit 12", "hh-009,5 Greer Rd,Unit 1")
    (bundle / "households.csv").write_text(households)
    members = (bundle / "householdMembers.csv").read_text()
    (bundle / "householdMembers.csv").write_text(members.replace("hh-006,", "hh-009,"))
    contacts = (bundle / "emergencyContacts.csv").read_text()
    (bundle / "emergencyContacts.csv").write_text(contacts.replace("hh-006,", "hh-009,"))
    report = roster_import(path=bundle)
    assert report.ok, [str(p) for p in report.problems.errors]
    rows = m.HouseholdStudent.objects.filter(student__sourced_id="stu-007")
    assert [(r.household.sourced_id, r.is_primary) for r in rows] == [("hh-009", True)]


def test_two_students_can_swap_state_ids(sample_district, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(ROSTER, bundle)
    users = (bundle / "users.csv").read_text(encoding="utf-8-sig")
    users = users.replace("1000000001", "SWAP").replace("1000000002", "1000000001")
    (bundle / "users.csv").write_text(users.replace("SWAP", "1000000002"), encoding="utf-8")
    report = roster_import(path=bundle)
    assert report.ok, [str(p) for p in report.problems.errors]
    assert m.Student.objects.get(sourced_id="stu-001").state_id == "1000000002"
    assert m.Student.objects.get(sourced_id="stu-002").state_id == "1000000001"


def test_a_state_id_held_by_a_student_missing_from_the_bundle_is_an_error(
    sample_district, tmp_path
):
    bundle = tmp_path / "bundle"
    shutil.copytree(ROSTER, bundle)
    for name in ("users.csv", "householdMembers.csv", "enrollments.csv", "demographics.csv"):
        path = bundle / name
        kept = [
            line
            for line in path.read_text(encoding="utf-8-sig").splitlines(True)
            if "stu-008" not in line
        ]
        path.write_text("".join(kept), encoding="utf-8")
    users = (bundle / "users.csv").read_text(encoding="utf-8")
    (bundle / "users.csv").write_text(users.replace("1000000007", "1000000008"), encoding="utf-8")
    report = roster_import(path=bundle)
    assert [str(p) for p in report.problems.errors] == [
        "users.csv:8: column identifier: state id '1000000008' belongs to student 'stu-008', "
        "who is in the database but not in this bundle"
    ]


def test_a_roster_administrator_made_registrar_stays_registrar(sample_district):
    profile = m.StaffProfile.objects.get(sourced_id="adm-001")
    profile.role = m.StaffProfile.Role.REGISTRAR
    profile.save()
    assert roster_import(path=ROSTER).ok
    profile.refresh_from_db()
    assert profile.role == m.StaffProfile.Role.REGISTRAR
