"""The family's choice of next year's school, in a district of three schools and in
one of thousands.

A small district lists every school. A larger one (more than ``SCHOOL_SELECT_MAX``,
lowered here so that the sample district's three are "many") lists the child's own
school, the one already chosen and the schools near the household that teach next
year's grade; any other school is typed by name in "Another school".

José's household (hh-001) is in ZIP 95202. Sofía (stu-001) is in grade 3 at Las Lomas
Elementary (KG-5), so grade 4 next year; Mateo (stu-002) is in grade 7 at Sequoia
Middle School (6-8).
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config import school_field
from registration.models import School, Student
from tests.conftest import sign_in
from tests.workflow.test_wizard import _jose_answers, _walk_to
from tests.workflow.wizard_walk import Page, WizardWalk
from workflow.models import EnrollmentDecision, Registration, RegistrationStep
from workflow.selectors import NEAR_SCHOOLS_OFFERED


def _school(name: str, low: str, high: str, postal_code: str) -> School:
    return School.objects.create(
        sourced_id=f"sch-{name.lower().replace(' ', '-')}-{postal_code}",
        name=name,
        low_grade=low,
        high_grade=high,
        postal_code=postal_code,
    )


@pytest.fixture
def jose(client, guardian_user, campaign) -> WizardWalk:
    sign_in(client, guardian_user)
    return WizardWalk(client, Registration.objects.get(household__sourced_id="hh-001"))


@pytest.fixture
def many_schools(monkeypatch) -> dict[str, School]:
    """The district has "many" schools: a few more, near José's household and not."""
    monkeypatch.setattr(school_field, "SCHOOL_SELECT_MAX", 2)
    return {
        "near": _school("Alameda Elementary", "KG", "05", "95202-4410"),  # a ZIP+4
        "near_middle": _school("Alameda Middle School", "06", "08", "95202"),
        "far": _school("Bayside Elementary", "KG", "05", "95209"),
        "lincoln_a": _school("Lincoln Elementary", "KG", "05", "95207"),
        "lincoln_b": _school("Lincoln Elementary", "KG", "05", "95206"),
    }


def _elementary_schools(prefix: str, count: int, postal_codes: tuple[str, ...]) -> None:
    """``count`` more schools teaching KG to grade 5, in turn in each of ``postal_codes``."""
    School.objects.bulk_create(
        School(
            sourced_id=f"sch-{prefix.lower()}-{n:03}",
            name=f"{prefix} Elementary {n:03}",
            low_grade="KG",
            high_grade="05",
            postal_code=postal_codes[n % len(postal_codes)],
        )
        for n in range(count)
    )


def _sofia_step(jose: WizardWalk) -> Page:
    step = f"child-{Student.objects.get(sourced_id='stu-001').pk}"
    page = _walk_to(jose, step, _jose_answers())
    assert page.step == step, page.url
    return page


def _names(page: Page) -> list[str]:
    ids = [int(pk) for pk in page.choices("next_school") if pk]
    names = dict(School.objects.filter(pk__in=ids).values_list("pk", "name"))
    return [names[pk] for pk in ids]


def _saved_school(jose: WizardWalk) -> int | None:
    step = f"child-{Student.objects.get(sourced_id='stu-001').pk}"
    draft = RegistrationStep.objects.get(registration_id=jose.pk, step=step)
    return draft.answers["next_school"]


def test_a_small_district_lists_every_school_and_asks_for_no_name(jose):
    page = _sofia_step(jose)
    assert _names(page) == [
        "Las Lomas Elementary",
        "Mission Ridge High School",
        "Sequoia Middle School",
    ]
    assert page.name("other_school") not in page.fields
    assert "Another school" not in page.html


def test_a_large_district_lists_the_childs_school_and_those_near_that_teach_the_grade(
    jose, many_schools
):
    page = _sofia_step(jose)
    # Sequoia Middle and Alameda Middle do not teach grade 4; Bayside and the Lincolns
    # are in other ZIP codes; the high school neither.
    assert _names(page) == ["Alameda Elementary", "Las Lomas Elementary"]
    assert page.value("next_school") == str(School.objects.get(sourced_id="sch-elem").pk)
    assert page.name("other_school") in page.fields
    assert page.value("other_school") == ""
    assert "If the school is not in the list, type its name here." in page.html


def test_a_school_typed_by_name_is_the_school_chosen(jose, many_schools):
    far = many_schools["far"]
    sofia = _sofia_step(jose)
    page = jose.submit(sofia, {"other_school": "  bayside   ELEMENTARY "})
    assert not page.errors, page.errors
    page = sofia
    assert _saved_school(jose) == far.pk
    # The box shows the school's name when the step is opened again; the review names
    # the school (and not a row of its own for the box).
    again = jose.open(page.step)
    assert again.step == page.step
    assert again.value("other_school") == "Bayside Elementary"
    review = _walk_to(jose, "review", _jose_answers()).html
    assert "Bayside Elementary" in review
    assert "Another school" not in review


def test_a_school_chosen_before_is_listed_though_it_is_far(jose, many_schools):
    far = many_schools["far"]
    sofia = Student.objects.get(sourced_id="stu-001")
    EnrollmentDecision.objects.filter(student=sofia).update(
        state=EnrollmentDecision.State.RETURNING, next_school=far, next_grade="04"
    )
    page = _sofia_step(jose)
    assert "Bayside Elementary" in _names(page)
    assert page.value("next_school") == str(far.pk)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("Nowhere Academy", "No school of the district is named “Nowhere Academy”."),
        ("lincoln", "2 schools match “lincoln”: Lincoln Elementary ("),
        (
            "Sequoia Middle School",
            "Sequoia Middle School does not teach Grade 4. Please choose another school.",
        ),
    ],
)
def test_a_typed_name_that_names_no_one_school_for_the_grade_is_refused_at_the_box(
    jose, many_schools, typed, message
):
    page = _sofia_step(jose)
    refused = jose.submit(page, {"other_school": typed, "allergies": "Peanuts"})
    assert refused.step == page.step
    assert message in refused.error("other_school")
    assert refused.is_invalid("other_school")
    assert not refused.error("next_school")
    # Nothing typed is lost, and nothing is saved.
    assert refused.value("other_school") == typed
    assert refused.value("allergies") == "Peanuts"
    assert not RegistrationStep.objects.filter(registration_id=jose.pk, step=page.step).exists()


def test_the_list_is_short_however_many_schools_are_near(jose, many_schools):
    _elementary_schools("Near", NEAR_SCHOOLS_OFFERED + 10, ("95202",))
    names = _names(_sofia_step(jose))
    assert len(names) == NEAR_SCHOOLS_OFFERED + 1  # and Sofía's own school
    assert "Las Lomas Elementary" in names


def test_the_child_step_reads_the_same_queries_for_three_schools_and_hundreds(jose, monkeypatch):
    sofia_step = _sofia_step(jose).step  # sessions and the like, read once

    def counted() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as queries:
            response = jose.client.get(jose.url(sofia_step))
        assert response.status_code == 200
        return len(queries), len(response.content)

    few_queries, few_bytes = counted()
    monkeypatch.setattr(school_field, "SCHOOL_SELECT_MAX", 60)
    _elementary_schools("Many", 300, ("95202", "95203", "95204"))
    many_queries, many_bytes = counted()
    assert many_queries == few_queries
    # 21 schools listed instead of 3, and no option for the other 280.
    assert many_bytes < few_bytes + 3_000


def test_a_name_typed_for_a_child_who_leaves_is_not_checked(jose, many_schools):
    page = _sofia_step(jose)
    moved = jose.submit(
        page,
        {
            "decision": "leaving",
            "leaving_reason": "moving",
            "leaving_destination": "Lakeside District",
            "other_school": "Nowhere Academy",
        },
    )
    assert not moved.errors, moved.errors
    assert _saved_school(jose) is None
