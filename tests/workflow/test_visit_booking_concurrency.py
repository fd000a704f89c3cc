"""Eight families book the same slot at the same moment: exactly as many as the slot
holds get it, the others are told it was just taken.

PostgreSQL only: booking locks the school's schedule row (``select_for_update``),
which SQLite ignores; SQLite also lets one writer at a time into the database.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, connections
from django.utils import timezone

from registration.models import Guardian, Household, HouseholdGuardian, School
from workflow.models import AddressChangeRequest, AddressVisit, OfficeHours, VisitSchedule
from workflow.services import VisitSlotTaken, address_visit_book
from workflow.visits import VisitChoice

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.django_db(transaction=True),
]

FAMILIES = 8


def _race(attempt: Callable[[int], Any]) -> list[Any]:
    """Run ``attempt(0..FAMILIES-1)`` in as many threads, released together; each
    returns its result or the exception it raised."""
    barrier = threading.Barrier(FAMILIES)
    outcomes: list[Any] = [None] * FAMILIES

    def run(index: int) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=60)
            outcomes[index] = attempt(index)
        except BaseException as error:  # the outcome to check, whatever it is
            outcomes[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(FAMILIES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a booking never finished"
    return outcomes


def _requests() -> list[AddressChangeRequest]:
    requests = []
    for index in range(FAMILIES):
        household = Household.objects.create(sourced_id=f"hh-race-{index}")
        guardian = Guardian.objects.create(
            sourced_id=f"par-race-{index}", given_name="Pat", family_name=f"Lee {index}"
        )
        HouseholdGuardian.objects.create(household=household, guardian=guardian)
        requests.append(
            AddressChangeRequest.objects.create(
                household=household,
                requested_by=guardian,
                street1=f"{index} New St",
                city="Riverside",
                state_code="CA",
                postal_code="95201",
            )
        )
    return requests


@pytest.mark.parametrize("capacity", [2, None])
def test_a_slot_is_never_booked_beyond_its_capacity(sample_district, capacity):
    """``None``: office hours without a schedule row, one family per slot."""
    school = School.objects.get(sourced_id="sch-elem")
    for weekday in range(7):
        OfficeHours.objects.create(
            school=school, weekday=weekday, opens_at=datetime.time(9), closes_at=datetime.time(12)
        )
    if capacity is not None:
        VisitSchedule.objects.create(school=school, slot_minutes=30, capacity=capacity)
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    slot = timezone.make_aware(datetime.datetime.combine(tomorrow, datetime.time(9)))
    requests = _requests()

    outcomes = _race(
        lambda index: address_visit_book(
            request=requests[index],
            choice=VisitChoice(school=school, starts_at=slot),
            guardian=None,
        )
    )

    booked = [o for o in outcomes if isinstance(o, AddressVisit)]
    refused = [o for o in outcomes if isinstance(o, VisitSlotTaken)]
    expected = capacity or 1
    assert len(booked) == expected and len(refused) == FAMILIES - expected, outcomes
    assert AddressVisit.objects.filter(starts_at=slot, cancelled_at__isnull=True).count() == (
        expected
    )
