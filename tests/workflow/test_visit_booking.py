"""Booking the visit to the school office in the wizard's address step, through
HTTP: the free slots of the school's office hours are offered, a full slot is not,
walking in is always possible, a new choice cancels the old booking, and the family
and the school office are emailed.

José's household (hh-001) visits Las Lomas Elementary, Sofía's school: the school
of its primary children that teaches the youngest grades.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.utils import timezone, translation

from registration.models import Guardian, Household, School
from registration.services import guardian_language
from tests.conftest import sign_in
from tests.workflow.test_wizard import NEW_ADDRESS, _jose_answers, _proof, _registration, _walk_to
from tests.workflow.wizard_walk import WizardWalk
from workflow.models import AddressChangeRequest, AddressVisit, RegistrationStep
from workflow.services import visit_schedule_save
from workflow.visits import (
    WALK_IN,
    slot_label,
    slot_value,
    visit_options_load,
    visit_slots_free,
)

EVERY_DAY = range(7)


def _at(days: int, hour: int, minute: int = 0) -> datetime.datetime:
    """A time ``days`` from today in the district's time zone."""
    day = timezone.localdate() + datetime.timedelta(days=days)
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour, minute)))


def _elementary() -> School:
    return School.objects.get(sourced_id="sch-elem")


@pytest.fixture
def office_hours(sample_district, registrar_user) -> School:
    """Las Lomas takes visits every day from 9 to 10, one family per slot of 30
    minutes: two slots a day."""
    school = _elementary()
    visit_schedule_save(
        school=school,
        hours=[(day, datetime.time(9), datetime.time(10)) for day in EVERY_DAY],
        slot_minutes=30,
        capacity=1,
        actor=registrar_user,
    )
    return school


@pytest.fixture
def jose(client, guardian_user, campaign) -> WizardWalk:
    sign_in(client, guardian_user)
    return WizardWalk(client, _registration("hh-001"))


def _another_family_books(starts_at: datetime.datetime) -> AddressVisit:
    """Siobhan's household (hh-002) has taken ``starts_at`` at Las Lomas."""
    household = Household.objects.get(sourced_id="hh-002")
    request = AddressChangeRequest.objects.create(
        household=household,
        requested_by=Guardian.objects.get(sourced_id="par-003"),
        street1="9 Elm St",
        city="Riverside",
        state_code="CA",
        postal_code="95201",
    )
    return AddressVisit.objects.create(request=request, school=_elementary(), starts_at=starts_at)


def _jose_visits() -> list[AddressVisit]:
    return list(AddressVisit.objects.filter(request__household__sourced_id="hh-001").order_by("pk"))


def _moved(visit: str | None = None) -> dict[str, Any]:
    changes: dict[str, Any] = {**NEW_ADDRESS, "proofs": _proof()}
    if visit is not None:
        changes["visit"] = visit
    return changes


def test_free_slots_are_offered_and_a_full_one_is_not(
    jose,
    office_hours,
    mailoutbox,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
):
    taken, free = _at(1, 9), _at(1, 9, 30)
    _another_family_books(taken)
    page = _walk_to(jose, "address", _jose_answers())

    offered = page.choices("visit")
    assert offered[0] == WALK_IN
    assert slot_value(free) in offered
    assert slot_value(taken) not in offered
    assert slot_value(_at(13, 9, 30)) in offered  # 14 days, today included
    assert slot_value(_at(14, 9)) not in offered
    assert slot_value(_at(1, 10)) not in offered  # the office closes at 10
    assert "Lease or rental agreement" in page.html  # the proofs it accepts

    data = jose.data(page, _moved(slot_value(free)))
    with django_capture_on_commit_callbacks(execute=True), django_assert_max_num_queries(25):
        response = jose.client.post(jose.url("address"), data)
    assert response.status_code == 302
    assert response.url == jose.url("emergency")

    (visit,) = _jose_visits()
    assert (visit.starts_at, visit.walk_in, visit.school) == (free, False, office_hours)
    assert visit.cancelled_at is None
    assert visit.booked_by == Guardian.objects.get(sourced_id="par-002")

    # José (María José has no email address) and the office of Las Lomas.
    assert sorted(m.to[0] for m in mailoutbox) == [
        "carmen.ortiz@riverside.example.org",
        "jose.garcia@example.com",
    ]
    family = next(m for m in mailoutbox if m.to == ["jose.garcia@example.com"])
    with translation.override(guardian_language(Guardian.objects.get(sourced_id="par-002"))):
        when = slot_label(free)
    assert when in family.subject and when in family.body
    assert "Las Lomas Elementary" in family.body
    # In the household's language: hh-001 reads Spanish.
    assert "al menos dos" in family.body
    assert "Factura de servicios (gas, electricidad, agua)" in family.body
    office = next(m for m in mailoutbox if m.to == ["carmen.ortiz@riverside.example.org"])
    assert "hh-001" in office.subject
    assert "88 Orchard Lane" in office.body
    assert f"/staff/addresses/{visit.request_id}/" in office.body


def test_a_slot_taken_meanwhile_is_refused_at_the_field(jose, office_hours, mailoutbox):
    page = _walk_to(jose, "address", _jose_answers())
    slot = _at(2, 9)
    assert slot_value(slot) in page.choices("visit")
    _another_family_books(slot)  # while José was typing

    refused = jose.submit(page, _moved(slot_value(slot)))

    assert refused.status_code == 200 and refused.step == "address"
    assert "This time was just taken" in refused.error("visit")
    assert slot_value(slot) not in refused.choices("visit")
    assert _jose_visits() == []
    assert not AddressChangeRequest.objects.filter(household__sourced_id="hh-001").exists()
    assert not RegistrationStep.objects.filter(step="address").exists()
    assert mailoutbox == []


def test_a_time_outside_the_office_hours_is_not_a_choice(jose, office_hours):
    page = _walk_to(jose, "address", _jose_answers())

    for forged in (slot_value(_at(1, 13)), slot_value(_at(20, 9)), "tomorrow"):
        refused = jose.submit(page, _moved(forged))
        assert refused.step == "address"
        assert "Select a valid choice" in refused.error("visit")
    assert _jose_visits() == []

    # No choice at all (a draft saved before visits were booked) is a walk-in.
    page = jose.submit(page, {**_moved(), "visit": None})
    assert page.step == "emergency"
    assert [v.walk_in for v in _jose_visits()] == [True]


def test_without_office_hours_families_walk_in(
    jose, mailoutbox, django_capture_on_commit_callbacks
):
    page = _walk_to(jose, "address", _jose_answers())
    assert page.choices("visit") == [WALK_IN]
    assert "has not set times for visits yet" in page.html

    with django_capture_on_commit_callbacks(execute=True):
        page = jose.submit(page, _moved())
    assert page.step == "emergency"

    (visit,) = _jose_visits()
    assert (visit.walk_in, visit.starts_at, visit.school) == (True, None, _elementary())
    family = next(m for m in mailoutbox if m.to == ["jose.garcia@example.com"])
    assert "sin cita" in family.subject  # hh-001 reads Spanish
    assert "Venga a la oficina de Las Lomas Elementary" in family.body
    assert "Estado de cuenta bancario" in family.body
    assert any(m.to == ["carmen.ortiz@riverside.example.org"] for m in mailoutbox)


def test_a_new_choice_cancels_the_old_booking(
    jose, office_hours, mailoutbox, django_capture_on_commit_callbacks
):
    first, second = _at(1, 9), _at(3, 9, 30)
    page = _walk_to(jose, "address", _jose_answers())
    page = jose.submit(page, _moved(slot_value(first)))
    assert page.step == "emergency"

    page = jose.open("address")
    assert page.value("visit") == slot_value(first)  # the booking is shown
    assert slot_value(first) in page.choices("visit")  # not full for José himself
    # Saving the step again with the same time keeps the booking and sends nothing.
    with django_capture_on_commit_callbacks(execute=True):
        page = jose.submit(page, {"visit": slot_value(first)})
    assert page.step == "emergency"
    assert len(_jose_visits()) == 1 and mailoutbox == []

    page = jose.open("address")
    with django_capture_on_commit_callbacks(execute=True):
        page = jose.submit(page, {"visit": slot_value(second)})
    assert page.step == "emergency"
    old, new = _jose_visits()
    assert old.starts_at == first and old.cancelled_at is not None
    assert new.starts_at == second and new.cancelled_at is None
    assert {m.to[0] for m in mailoutbox} == {
        "jose.garcia@example.com",
        "carmen.ortiz@riverside.example.org",
    }
    # The first time is free again for another family.
    assert first in visit_slots_free(visit_options_load(office_hours))

    # Walking in instead cancels the slot too.
    page = jose.submit(jose.open("address"), {"visit": WALK_IN})
    assert [v.walk_in for v in _jose_visits() if v.cancelled_at is None] == [True]

    # Staying at the old address cancels the request and its booking.
    page = jose.submit(jose.open("address"), {"moved": "no"})
    assert page.step == "emergency"
    assert all(v.cancelled_at is not None for v in _jose_visits())
    request = AddressChangeRequest.objects.get(household__sourced_id="hh-001")
    assert request.state == AddressChangeRequest.State.CANCELLED


def test_the_review_shows_the_visit(jose, office_hours):
    slot = _at(1, 9, 30)
    page = _walk_to(
        jose,
        "review",
        {**_jose_answers(), "address": _moved(slot_value(slot))},
    )
    assert "Visit to the school office" in page.html
    with translation.override("en"):
        assert f"{slot_label(slot)} · Las Lomas Elementary" in page.html
