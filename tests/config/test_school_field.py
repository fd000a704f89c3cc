"""The staff pages' school filter: a drop-down for a few schools, a search box that
resolves a typed name or number for many, and never a school the user may not see.

The sample district has three schools (Las Lomas Elementary, Sequoia Middle School,
Mission Ridge High School); ``SCHOOL_SELECT_MAX`` is lowered to make them "many".
Carmen Ortiz (office staff) sees Las Lomas Elementary only.
"""

from __future__ import annotations

from typing import Any

import pytest
from django import forms
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from config import school_field
from config.school_field import SchoolField, name_key
from config.widgets import LongSelect
from registration.models import School
from registration.selectors import schools_visible_to
from tests.conftest import sign_in


@pytest.fixture
def many(monkeypatch):
    """The district's three schools are more than a drop-down holds."""
    monkeypatch.setattr(school_field, "SCHOOL_SELECT_MAX", 2)


def _school(sourced_id: str) -> School:
    return School.objects.get(sourced_id=sourced_id)


def _form(data: dict[str, Any] | None = None, *, queryset: Any = None, **kwargs: Any):
    class Form(forms.Form):
        def __init__(self, *args: Any, **form_kwargs: Any) -> None:
            super().__init__(*args, **form_kwargs)
            self.fields["school"] = SchoolField(
                queryset=School.objects.all() if queryset is None else queryset,
                empty_label="All my schools",
                **kwargs,
            )

    return Form(data)


def _error(form: forms.Form) -> str:
    assert not form.is_valid()
    return " ".join(form.errors["school"])


# -- a few schools: the drop-down as before ---------------------------------------------------


@pytest.mark.parametrize("data", [None, {"school": "sch-mid"}])
def test_a_few_schools_render_the_same_drop_down_as_before(sample_district, data):
    middle = _school("sch-mid")
    chosen = None if data is None else {"school": str(middle.pk)}

    class Before(forms.Form):
        school = forms.ModelChoiceField(
            label="School",
            queryset=School.objects.only("pk", "name").order_by("name"),
            required=False,
            empty_label="All my schools",
            widget=LongSelect,
        )

    before = Before(chosen)
    now = _form(chosen)
    assert now.is_valid() == before.is_valid() == (data is not None)
    assert str(now["school"]) == str(before["school"])
    html = str(now["school"])
    assert html.count("<option") == 4
    assert ">All my schools</option>" in html
    assert (f'<option value="{middle.pk}" selected>' in html) == (data is not None)
    assert now["school"].help_text == ""


def test_a_drop_down_reads_the_schools_in_one_query(sample_district, django_assert_num_queries):
    form = _form()
    with django_assert_num_queries(1):
        str(form["school"])
        str(form["school"])


# -- many schools: a search box --------------------------------------------------------------


def test_many_schools_render_a_search_box_without_an_option_per_school(
    sample_district, many, django_assert_num_queries
):
    form = _form()
    with django_assert_num_queries(1):
        html = str(form["school"])
    assert html == (
        '<input type="search" name="school" autocomplete="off" maxlength="200" '
        'spellcheck="false" aria-describedby="id_school_helptext" id="id_school">'
    )
    assert "<option" not in html
    assert form["school"].help_text == "Type the school's name or number."


def test_the_search_box_keeps_the_fields_own_help_and_attributes(sample_district, many):
    form = _form(help_text="Only the students of this school are asked to pay it.")
    field = form["school"]
    assert field.help_text == (
        "Only the students of this school are asked to pay it. Type the school's name or number."
    )
    html = field.as_widget(attrs={"aria-describedby": "id_school_helptext"})
    assert 'aria-describedby="id_school_helptext"' in html


def test_an_id_as_in_a_link_chooses_the_school_and_shows_its_name(sample_district, many):
    high = _school("sch-high")
    form = _form({"school": str(high.pk)})
    assert form.is_valid()
    assert form.cleaned_data["school"] == high
    assert 'value="Mission Ridge High School"' in str(form["school"])
    assert f'value="{high.pk}"' not in str(form["school"])


@pytest.mark.parametrize(
    ("typed", "sourced_id"),
    [
        ("Sequoia Middle School", "sch-mid"),
        ("  sequoia   MIDDLE school ", "sch-mid"),  # case and spacing aside
        ("Lás Lómas Elementary", "sch-elem"),  # accents aside
        ("ridge", "sch-high"),  # part of one school's name
        ("elem", "sch-elem"),
    ],
)
def test_a_typed_name_chooses_the_one_school_it_names(sample_district, many, typed, sourced_id):
    form = _form({"school": typed})
    assert form.is_valid(), form.errors
    school = _school(sourced_id)
    assert form.cleaned_data["school"] == school
    assert f'value="{school.name}"' in str(form["school"])


def test_a_name_typed_in_full_wins_over_names_that_hold_it(sample_district, many):
    sequoia = School.objects.create(sourced_id="sch-seq", name="Séquoia")
    form = _form({"school": "sequoia"})
    assert form.is_valid()
    assert form.cleaned_data["school"] == sequoia


def test_several_matches_are_named_and_what_was_typed_is_kept(sample_district, many):
    form = _form({"school": "school"})
    assert _error(form) == (
        "2 schools match “school”: Mission Ridge High School, Sequoia Middle School. "
        "Type more of the name."
    )
    assert 'value="school"' in str(form["school"])


def test_many_matches_name_the_first_five(sample_district, many):
    for n in range(6):
        School.objects.create(sourced_id=f"sch-oak-{n}", name=f"Oak Grove School {n}")
    message = _error(_form({"school": "oak grove"}))
    assert message == (
        "6 schools match “oak grove”: Oak Grove School 0, Oak Grove School 1, "
        "Oak Grove School 2, Oak Grove School 3, Oak Grove School 4, …. Type more of the name."
    )


def test_schools_of_the_same_name_are_told_apart_by_number(sample_district, many):
    first = School.objects.create(sourced_id="sch-twin-1", name="Riverside Academy")
    second = School.objects.create(sourced_id="sch-twin-2", name="Riverside Academy")
    message = _error(_form({"school": "riverside academy"}))
    assert f"Riverside Academy ({first.pk}), Riverside Academy ({second.pk})" in message
    for typed in (str(second.pk), f"riverside ACADEMY ({second.pk})", f"({second.pk})"):
        form = _form({"school": typed})
        assert form.is_valid() and form.cleaned_data["school"] == second, typed
    assert _error(_form({"school": f"Las Lomas ({second.pk})"})).startswith("No school")
    # The school a form starts with is kept when its name is sent back unchanged.
    form = _form({"school": "Riverside Academy"}, initial=second)
    assert form.is_valid() and form.cleaned_data["school"] == second
    assert not form.has_changed()
    assert 'value="Riverside Academy"' in str(form["school"])


def test_no_match_is_said_and_what_was_typed_is_kept(sample_district, many):
    form = _form({"school": "Lincoln"})
    assert _error(form) == "No school of yours is named “Lincoln”."
    assert 'value="Lincoln"' in str(form["school"])


def test_a_number_that_is_no_schools_id_is_looked_for_in_the_names(sample_district, many):
    numbered = School.objects.create(sourced_id="sch-ps", name="PS 987654")
    form = _form({"school": "987654"})
    assert form.is_valid()
    assert form.cleaned_data["school"] == numbered
    assert _error(_form({"school": "99999999999999999999999"})).startswith("No school")


def test_hostile_text_is_refused_shortened_and_without_control_characters(sample_district, many):
    form = _form({"school": "<b>Ana\x00\x1b\u202e" + "A" * 500})
    message = _error(form)
    assert "\x00" not in message and "\x1b" not in message and "\u202e" not in message
    assert len(message) < 200 and "…" in message
    html = str(form["school"])
    assert "<b>" not in html and "&lt;b&gt;Ana" in html
    assert "\x00" not in html


def test_an_empty_box_means_every_school(sample_district, many):
    form = _form({"school": "   "})
    assert form.is_valid()
    assert form.cleaned_data["school"] is None
    assert 'value="' not in str(form["school"])


def test_a_school_as_initial_value_shows_its_name_without_a_query(
    sample_district, many, django_assert_num_queries
):
    middle = _school("sch-mid")
    form = _form(initial=middle)
    with django_assert_num_queries(1):  # whether the schools are many, nothing more
        assert 'value="Sequoia Middle School"' in str(form["school"])
    assert not form["school"].field.has_changed(middle, "Sequoia Middle School")
    assert form["school"].field.has_changed(middle, "Mission Ridge")
    assert form["school"].field.has_changed(None, str(middle.pk))


def test_the_search_box_reads_few_schools_whatever_the_districts_size(
    sample_district, many, django_assert_num_queries
):
    School.objects.bulk_create(
        School(sourced_id=f"sch-gen-{n:04d}", name=f"Generated School {n:04d}") for n in range(500)
    )
    with CaptureQueriesContext(connection) as queries:
        html = str(_form()["school"])
    assert "<option" not in html
    (query,) = queries.captured_queries
    assert "LIMIT 3" in query["sql"]


# -- only the schools the user may see ---------------------------------------------------------


@pytest.mark.parametrize("selects", [False, True])
def test_office_staff_reach_no_other_school_by_name_or_number(office_user, monkeypatch, selects):
    if not selects:
        monkeypatch.setattr(school_field, "SCHOOL_SELECT_MAX", 0)
    own = schools_visible_to(office_user)
    high = _school("sch-high")
    for typed in (str(high.pk), "Mission Ridge High School", "ridge", "school"):
        assert _error(_form({"school": typed}, queryset=own)) == (
            f"No school of yours is named “{typed}”."
        )
    form = _form({"school": "las lomas"}, queryset=own)
    assert form.is_valid() and form.cleaned_data["school"] == _school("sch-elem")
    assert "Mission Ridge" not in str(form["school"])


def test_office_staff_cannot_filter_the_address_queue_by_another_school(client, office_user, many):
    sign_in(client, office_user)
    high = _school("sch-high")
    for typed in (str(high.pk), "Mission Ridge"):
        page = client.get(reverse("staff_addresses"), {"school": typed}).content.decode()
        assert f"No school of yours is named “{typed}”." in page
        assert "Mission Ridge High School" not in page


def test_the_key_of_a_name():
    assert name_key("  Saint-José   HIGH ") == name_key("saint-jose high") == "saint-jose high"


# -- the staff pages ---------------------------------------------------------------------------

PAGES = [
    ("staff_addresses", "registrar"),
    ("staff_address_visits", "registrar"),
    ("staff_registrations", "registrar"),
    ("staff_fees", "finance"),
]


def _queries(client: Any, url: str, query: dict[str, Any]) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, query)
    assert response.status_code == 200
    return len(queries), response.content.decode()


@pytest.mark.parametrize(("name", "role"), PAGES)
def test_each_page_costs_the_same_queries_for_three_schools_or_two_thousand(
    client, campaign, registrar_user, finance_user, name, role
):
    sign_in(client, {"registrar": registrar_user, "finance": finance_user}[role])
    url = reverse(name)
    middle = _school("sch-mid")
    client.get(url)  # the session's first page
    few = {
        "all": _queries(client, url, {}),
        "by id": _queries(client, url, {"school": middle.pk}),
    }
    assert all(page.count("<option value=") >= 3 for _count, page in few.values())
    School.objects.bulk_create(
        School(sourced_id=f"sch-gen-{n:04d}", name=f"Generated School {n:04d}") for n in range(2000)
    )
    for label, query in (("all", {}), ("by id", {"school": middle.pk})):
        count, page = _queries(client, url, query)
        assert count == few[label][0], label
        assert "Generated School" not in page
        assert page.count("<option") < 20
        assert '<input type="search" name="school"' in page
    assert 'value="Sequoia Middle School"' in _queries(client, url, {"school": middle.pk})[1]


@pytest.mark.parametrize(("name", "role"), PAGES)
def test_each_page_tells_a_name_that_matches_several_schools_next_to_the_field(
    client, campaign, registrar_user, finance_user, many, name, role
):
    sign_in(client, {"registrar": registrar_user, "finance": finance_user}[role])
    page = client.get(reverse(name), {"school": "School"}).content.decode()
    assert (
        '<p class="error" id="id_school_error">2 schools match “School”: Mission Ridge High '
        "School, Sequoia Middle School. Type more of the name.</p>"
    ) in page
    assert 'value="School"' in page
    assert 'aria-invalid="true"' in page
