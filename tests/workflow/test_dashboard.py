"""The staff dashboard at /staff/: the latest campaign's registrations by state, open
address changes and activation, per school and grade of the schools a user may see,
counted in the database in a fixed number of queries."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registration.models import (
    Guardian,
    Household,
    HouseholdGuardian,
    HouseholdStudent,
    School,
    Student,
    StudentGuardian,
)
from tests.conftest import sign_in
from workflow.models import AddressChangeRequest, Registration
from workflow.services import campaign_open

NOT_AVAILABLE = "0"  # children with required fees unpaid: the campaign has none here


@pytest.fixture(autouse=True)
def _count_on_every_view(settings):
    """These tests change the data between views: count on each (the background
    recount is tested at the end)."""
    settings.DASHBOARD_MAX_AGE_SECONDS = 0


class _Tables(HTMLParser):
    """The page's tables as {caption: [[cell text, ...], ...]}, header row included."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self._rows: list[list[str]] | None = None
        self._caption = ""
        self._in_caption = False
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._rows = []
        elif tag == "caption":
            self._caption, self._in_caption = "", True
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th") and self._rows is not None:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        elif self._in_caption:
            self._caption += data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._rows is not None:
            self._rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "caption":
            self._in_caption = False
        elif tag == "table" and self._rows is not None:
            self.tables[" ".join(self._caption.split())] = self._rows
            self._rows, self._caption = None, ""


def _tables(client) -> dict[str, list[list[str]]]:
    response = client.get(reverse("staff_home"))
    assert response.status_code == 200
    return _Tables(response.content.decode()).tables


def _rows(table: list[list[str]]) -> dict[str, list[str]]:
    """Body and footer rows by their first cell."""
    return {row[0]: row[1:] for row in table[1:]}


def _state(household: str, state: str) -> None:
    # The states are set directly: this is about counting; transitions are tested in
    # test_state_machines.py.
    Registration.objects.filter(household__sourced_id=household).update(state=state)


@pytest.fixture
def spread(campaign, guardian_user, other_guardian_user):
    """The sample district's households in every state. José García (hh-001) and
    Siobhan O'Brien (hh-002) have accounts.

    Las Lomas: Liam KG (hh-002; also lives in hh-003), Amara 1 (hh-005), Sofía 3
    (hh-001), Chidi 5 (hh-004). Sequoia: Astrid 6 (hh-008), Mateo 7 (hh-001).
    Mission Ridge: Gianna 9 (hh-006), Zoë 10 (hh-002), Minh 12 (hh-007).
    """
    _state("hh-001", "submitted")
    _state("hh-002", "in_progress")
    _state("hh-003", "in_progress")  # Liam's second household: he lives mainly in hh-002
    _state("hh-004", "returned")
    _state("hh-005", "approved")
    _state("hh-006", "exported")
    _state("hh-007", "withdrawn")
    household = Household.objects.get(sourced_id="hh-001")
    AddressChangeRequest.objects.create(
        household=household,
        registration=Registration.objects.get(household=household),
        requested_by=Guardian.objects.get(sourced_id="par-002"),
        street1="5 New Rd",
        city="Riverside",
        state_code="CA",
        postal_code="95210",
    )
    return campaign


HEADER = [
    "Households",
    "Not started",
    "In progress",
    "Submitted",
    "Returned for changes",
    "Approved",
    "Open address changes",
    "Guardians with an account",
    "Children with required fees unpaid",
]


def test_the_registrar_sees_every_school_by_grade_and_state(spread, registrar_user, client):
    sign_in(client, registrar_user)
    tables = _tables(client)

    district = tables["Households by registration status, per school"]
    assert district[0] == ["School", *HEADER]
    # hh-001 and hh-002 have children in two schools: once in each school, once in all.
    assert _rows(district) == {
        "Las Lomas Elementary": ["4", "0", "1", "1", "1", "1", "1", "29%", NOT_AVAILABLE],
        "Sequoia Middle School": ["2", "1", "0", "1", "0", "0", "1", "25%", NOT_AVAILABLE],
        "Mission Ridge High School": ["2", "0", "1", "0", "0", "1", "0", "25%", NOT_AVAILABLE],
        "District total": ["6", "1", "1", "1", "1", "2", "1", "18%", NOT_AVAILABLE],
    }
    las_lomas = tables["Households by registration status and grade at Las Lomas Elementary"]
    assert las_lomas[0] == ["Grade", *HEADER]
    assert _rows(las_lomas) == {
        "Kindergarten": ["1", "0", "1", "0", "0", "0", "0", "50%", NOT_AVAILABLE],
        "Grade 1": ["1", "0", "0", "0", "0", "1", "0", "0%", NOT_AVAILABLE],
        "Grade 3": ["1", "0", "0", "1", "0", "0", "1", "50%", NOT_AVAILABLE],
        "Grade 5": ["1", "0", "0", "0", "1", "0", "0", "0%", NOT_AVAILABLE],
        "School total": ["4", "0", "1", "1", "1", "1", "1", "29%", NOT_AVAILABLE],
    }
    high = tables["Households by registration status and grade at Mission Ridge High School"]
    # Exported counts as approved; Minh's withdrawn registration is left out.
    assert _rows(high) == {
        "Grade 9": ["1", "0", "0", "0", "0", "1", "0", "0%", NOT_AVAILABLE],
        "Grade 10": ["1", "0", "1", "0", "0", "0", "0", "50%", NOT_AVAILABLE],
        "Grade 12": ["0", "0", "0", "0", "0", "0", "0", "0%", NOT_AVAILABLE],
        "School total": ["2", "0", "1", "0", "0", "1", "0", "25%", NOT_AVAILABLE],
    }


def test_a_household_with_children_in_two_grades_counts_in_each(spread, registrar_user, client):
    # Mateo moves to Las Lomas's grade 5: hh-001 now has two children there.
    Student.objects.filter(sourced_id="stu-002").update(
        school=School.objects.get(sourced_id="sch-elem"), grade="05"
    )
    sign_in(client, registrar_user)
    tables = _tables(client)
    las_lomas = _rows(tables["Households by registration status and grade at Las Lomas Elementary"])
    assert las_lomas["Grade 3"][:4] == ["1", "0", "0", "1"]
    assert las_lomas["Grade 5"][:5] == ["2", "0", "0", "1", "1"]
    assert las_lomas["School total"][:5] == ["4", "0", "1", "1", "1"]
    district = _rows(tables["Households by registration status, per school"])
    assert district["Sequoia Middle School"][0] == "1"
    assert district["District total"][0] == "6"


def test_office_staff_see_only_their_school(spread, office_user, client):
    sign_in(client, office_user)
    response = client.get(reverse("staff_home"))
    html = response.content.decode()
    assert "Las Lomas Elementary" in html
    assert "Sequoia" not in html and "Mission Ridge" not in html
    tables = _Tables(html).tables
    totals = _rows(tables["Households by registration status, per school"])
    # One school: no total of the schools under it.
    assert totals == {
        "Las Lomas Elementary": ["4", "0", "1", "1", "1", "1", "1", "29%", NOT_AVAILABLE]
    }
    assert "Your schools" in html and "District total" not in html


def test_office_staff_of_another_school_see_theirs(spread, other_school_office_user, client):
    sign_in(client, other_school_office_user)
    html = client.get(reverse("staff_home")).content.decode()
    assert "Mission Ridge High School" in html
    assert "Las Lomas" not in html and "Sequoia" not in html


def test_finance_sees_the_registration_counts(spread, finance_user, client):
    sign_in(client, finance_user)
    tables = _tables(client)
    district = _rows(tables["Households by registration status, per school"])
    assert district["District total"][:6] == ["6", "1", "1", "1", "1", "2"]
    assert 'href="/admin/"' not in client.get(reverse("staff_home")).content.decode()


def test_teachers_see_their_classes_only(spread, teacher_user, client):
    sign_in(client, teacher_user)
    response = client.get(reverse("staff_home"))
    html = response.content.decode()
    classes = _rows(_Tables(html).tables["Your classes and their students"])
    assert classes == {
        "Math 6 (Period 4)": ["Sequoia Middle School", "1"],
        "Math 7 (Period 2)": ["Sequoia Middle School", "1"],
    }
    assert "Households by registration status" not in html
    assert "Las Lomas" not in html and "Mission Ridge" not in html


def test_guardians_cannot_open_the_dashboard(spread, guardian_user, client):
    sign_in(client, guardian_user)
    assert client.get(reverse("staff_home")).status_code == 403


def test_children_with_required_fees_unpaid_are_counted(spread, registrar_user, client):
    from payments.models import Fee, LedgerEntry

    las_lomas = School.objects.get(sourced_id="sch-elem")
    fee = Fee.objects.create(
        kind=Fee.Kind.REQUIRED,
        title="Registration fee",
        amount_cents=2500,
        campaign=spread,
        school=las_lomas,
    )
    Fee.objects.create(  # another campaign's fee counts for nothing here
        kind=Fee.Kind.REQUIRED, title="Old fee", amount_cents=900, school=las_lomas
    )

    def entry(child: str, kind: str, cents: int) -> None:
        student = Student.objects.get(given_name=child)
        LedgerEntry.objects.create(
            kind=kind,
            amount_cents=cents,
            household=HouseholdStudent.objects.get(student=student, is_primary=True).household,
            student=student,
            fee=fee,
        )

    # Sofía paid; Amara's fee was waived; Liam paid part; Chidi paid, then was refunded.
    entry("Sofía", LedgerEntry.Kind.PAYMENT, -2500)
    entry("Amara", LedgerEntry.Kind.WAIVER, -2500)
    entry("Liam", LedgerEntry.Kind.PAYMENT, -1000)
    entry("Chidi", LedgerEntry.Kind.PAYMENT, -2500)
    entry("Chidi", LedgerEntry.Kind.REFUND, 2500)

    sign_in(client, registrar_user)
    tables = _tables(client)
    district = _rows(tables["Households by registration status, per school"])
    assert district["Las Lomas Elementary"][-1] == "2"
    assert district["Sequoia Middle School"][-1] == "0"  # the fee is Las Lomas's only
    assert district["District total"][-1] == "2"
    grades = _rows(tables["Households by registration status and grade at Las Lomas Elementary"])
    assert {grade: row[-1] for grade, row in grades.items()} == {
        "Kindergarten": "1",
        "Grade 1": "0",
        "Grade 3": "0",
        "Grade 5": "1",
        "School total": "2",
    }


def _more_schools_and_families(campaign, schools: int, families: int) -> None:
    """``schools`` more schools with ``families`` more households each (a child in
    each of two grades, two guardians, one of them with an account), registered in
    the campaign."""
    from registration.services import guardian_account_create

    district = School.objects.first().district
    for s in range(schools):
        school = School.objects.create(
            sourced_id=f"sch-extra-{s}",
            district=district,
            name=f"Extra School {s}",
            low_grade="KG",
            high_grade="05",
        )
        for f in range(families):
            household = Household.objects.create(sourced_id=f"hh-extra-{s}-{f}")
            for g, grade in enumerate(("02", "04")):
                student = Student.objects.create(
                    sourced_id=f"stu-extra-{s}-{f}-{g}",
                    given_name="Kid",
                    family_name=f"Extra{f}",
                    grade=grade,
                    school=school,
                )
                HouseholdStudent.objects.create(household=household, student=student)
                for p in range(2):
                    guardian, _ = Guardian.objects.get_or_create(
                        sourced_id=f"par-extra-{s}-{f}-{p}",
                        defaults={"given_name": "Parent", "family_name": f"Extra{f}"},
                    )
                    HouseholdGuardian.objects.get_or_create(household=household, guardian=guardian)
                    StudentGuardian.objects.create(student=student, guardian=guardian)
            guardian_account_create(
                guardian=Guardian.objects.get(sourced_id=f"par-extra-{s}-{f}-0"),
                email=f"extra-{s}-{f}@example.com",
                password="a-long-test-password",
            )
    campaign_open(campaign=campaign)


def _queries(client) -> int:
    with CaptureQueriesContext(connection) as context:
        assert client.get(reverse("staff_home")).status_code == 200
    return len(context.captured_queries)


@pytest.mark.parametrize("actor", ["registrar_user", "office_user"])
def test_the_dashboard_costs_the_same_for_any_district(
    request, spread, client, actor, settings, django_assert_max_num_queries
):
    user = request.getfixturevalue(actor)
    sign_in(client, user)
    _queries(client)  # the first request of a session may read more
    # Counting on the view (a maximum age of 0: the page's worst case, a fixed eight
    # queries more) and reading what was counted (what staff wait for).
    with django_assert_max_num_queries(15 + 8):
        assert client.get(reverse("staff_home")).status_code == 200
    counting_before = _queries(client)
    settings.DASHBOARD_MAX_AGE_SECONDS = 3600
    with django_assert_max_num_queries(15):
        assert client.get(reverse("staff_home")).status_code == 200
    reading_before = _queries(client)

    settings.DASHBOARD_MAX_AGE_SECONDS = 0
    _more_schools_and_families(spread, schools=3, families=4)
    if actor == "office_user":
        user.staff_profile.schools.add(*School.objects.filter(sourced_id__startswith="sch-extra"))
    assert _queries(client) == counting_before
    settings.DASHBOARD_MAX_AGE_SECONDS = 3600
    assert _queries(client) == reading_before
    tables = _tables(client)
    extra = _rows(tables["Households by registration status and grade at Extra School 1"])
    assert extra == {
        "Grade 2": ["4", "4", "0", "0", "0", "0", "0", "50%", NOT_AVAILABLE],
        "Grade 4": ["4", "4", "0", "0", "0", "0", "0", "50%", NOT_AVAILABLE],
        "School total": ["4", "4", "0", "0", "0", "0", "0", "50%", NOT_AVAILABLE],
    }


def test_before_any_campaign_the_students_per_grade_are_shown(registrar_user, client):
    sign_in(client, registrar_user)
    html = client.get(reverse("staff_home")).content.decode()
    assert "4 students · 5 households" in html
    assert "Households by registration status" not in html


def test_a_district_of_many_schools_shows_one_school_s_grades_at_a_time(
    spread, registrar_user, client
):
    _more_schools_and_families(spread, schools=10, families=1)
    sign_in(client, registrar_user)
    las_lomas = School.objects.get(sourced_id="sch-elem")

    html = client.get(reverse("staff_home")).content.decode()
    tables = _Tables(html).tables
    assert len(_rows(tables["Households by registration status, per school"])) == 14
    assert not any(
        caption.startswith("Households by registration status and grade") for caption in tables
    )
    assert f'href="?school={las_lomas.pk}#school-{las_lomas.pk}"' in html

    chosen = _Tables(
        client.get(reverse("staff_home"), {"school": las_lomas.pk}).content.decode()
    ).tables
    grades = [c for c in chosen if c.startswith("Households by registration status and grade")]
    assert grades == ["Households by registration status and grade at Las Lomas Elementary"]
    assert _rows(chosen[grades[0]])["School total"][:2] == ["4", "0"]


def test_the_office_total_of_several_schools_adds_up_their_totals(spread, office_user, client):
    office_user.staff_profile.schools.add(School.objects.get(sourced_id="sch-mid"))
    sign_in(client, office_user)
    totals = _rows(_tables(client)["Households by registration status, per school"])
    # hh-001 has a child in each of the two schools: it counts in each.
    assert totals["Las Lomas Elementary"][0] == "4"
    assert totals["Sequoia Middle School"][0] == "2"
    assert totals["Total of your schools"][:3] == ["6", "1", "1"]


def test_older_counts_are_shown_while_a_worker_counts_again(
    spread, registrar_user, client, settings, django_capture_on_commit_callbacks
):
    from django.core.cache import cache
    from django.utils import timezone

    from workflow.models import DashboardCount

    settings.DASHBOARD_MAX_AGE_SECONDS = 60
    cache.clear()
    sign_in(client, registrar_user)
    # Never counted: counted at once.
    html = client.get(reverse("staff_home")).content.decode()
    assert _rows(_Tables(html).tables["Households by registration status, per school"])[
        "District total"
    ][:4] == ["6", "1", "1", "1"]
    assert "Counted at" in html

    _state("hh-005", "submitted")
    # Fresh enough: the counted rows, not the new state, and no count asked for.
    with django_capture_on_commit_callbacks(execute=True) as queued:
        district = _rows(_tables(client)["Households by registration status, per school"])
    assert district["District total"][3] == "1"
    assert queued == []

    # A minute later the page still answers from the rows, and asks a worker once.
    DashboardCount.objects.update(counted_at=timezone.now() - timezone.timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True) as queued:
        district = _rows(_tables(client)["Households by registration status, per school"])
        _tables(client)
    assert district["District total"][3] == "1"
    assert len(queued) == 1  # the second view did not ask again
    district = _rows(_tables(client)["Households by registration status, per school"])
    assert district["District total"][3] == "2"


def test_a_district_of_many_schools_lists_them_a_page_at_a_time(spread, registrar_user, client):
    """Over 50 schools: 50 a page with the district's total on every page, the same
    few queries on every page, and a chosen school's grades shown from any page."""
    from registration.models import School
    from registration.staff_views import DASHBOARD_SCHOOLS_PER_PAGE

    School.objects.bulk_create(
        School(sourced_id=f"sch-extra-{n:03}", name=f"Zz Extra School {n:03}", low_grade="KG")
        for n in range(DASHBOARD_SCHOOLS_PER_PAGE)
    )
    sign_in(client, registrar_user)
    with CaptureQueriesContext(connection) as on_first:
        first = _rows(_tables(client)["Households by registration status, per school"])
    assert len(first) == DASHBOARD_SCHOOLS_PER_PAGE + 1  # and the district's total
    assert first["District total"][:4] == ["6", "1", "1", "1"]
    with CaptureQueriesContext(connection) as on_second:
        html = client.get(reverse("staff_home") + "?page=2").content.decode()
    assert len(on_second) == len(on_first)
    second = _rows(_Tables(html).tables["Households by registration status, per school"])
    assert len(second) == 3 + 1  # the 53 schools' last three
    assert not set(first) & set(second) - {"District total"}
    assert second["District total"] == first["District total"]
    assert "Page 2 of 2" in html
    # A school of page 1 chosen while page 2 is shown: its grades below page 2's list,
    # which stays page 2's; the page links keep the choice.
    chosen = School.objects.get(sourced_id="sch-elem")
    html = client.get(reverse("staff_home") + f"?page=2&school={chosen.pk}").content.decode()
    listed = _rows(_Tables(html).tables["Households by registration status, per school"])
    assert chosen.name not in listed and len(listed) == len(second)
    assert f'id="school-{chosen.pk}"' in html
    assert f"?school={chosen.pk}&amp;page=1" in html
