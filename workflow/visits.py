"""Visits to a school office to verify a new address: which school a household
visits, that school's office hours as bookable slots, and which slots are free.

A slot is the start of a visit, an aware datetime; a form offers it as a value in
the district's time zone (``slot_value``) and reads it back with ``slot_parse``.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count
from django.utils import formats, timezone

from registration.grades import grade_rank
from registration.models import School
from workflow.models import AddressVisit, OfficeHours, VisitSchedule

# How far ahead a family may book, counting today.
BOOKING_DAYS = 14
WALK_IN = "walk_in"
SLOT_FORMAT = "%Y-%m-%dT%H:%M"
# When a school has office hours but no schedule row: the model's defaults.
DEFAULT_SLOT_MINUTES = VisitSchedule._meta.get_field("slot_minutes").get_default()
DEFAULT_CAPACITY = VisitSchedule._meta.get_field("capacity").get_default()


@dataclass(frozen=True)
class VisitChoice:
    """The visit a family chose: a slot at ``school``, or a walk-in (no ``starts_at``)."""

    school: School
    starts_at: datetime.datetime | None = None

    @property
    def walk_in(self) -> bool:
        return self.starts_at is None


@dataclass
class VisitOptions:
    """A school's office hours for visits, and how long and how full a slot is."""

    school: School | None
    hours: list[OfficeHours] = field(default_factory=list)
    slot_minutes: int = DEFAULT_SLOT_MINUTES
    capacity: int = DEFAULT_CAPACITY

    @property
    def has_slots(self) -> bool:
        return self.school is not None and bool(self.hours)

    def slots(self, *, now: datetime.datetime | None = None) -> list[datetime.datetime]:
        """Every slot of the next ``BOOKING_DAYS`` days that starts after ``now``."""
        now = now or timezone.now()
        if not self.has_slots or self.slot_minutes < 1:
            return []
        zone = timezone.get_current_timezone()
        today = timezone.localdate(now)
        length = datetime.timedelta(minutes=self.slot_minutes)
        starts = []
        for offset in range(BOOKING_DAYS):
            day = today + datetime.timedelta(days=offset)
            for hours in self.hours:
                if hours.weekday != day.weekday():
                    continue
                start = datetime.datetime.combine(day, hours.opens_at, tzinfo=zone)
                closes = datetime.datetime.combine(day, hours.closes_at, tzinfo=zone)
                while start + length <= closes:
                    if start > now:
                        starts.append(start)
                    start += length
        return sorted(set(starts))

    def offers(self, starts_at: datetime.datetime, *, now: datetime.datetime | None = None) -> bool:
        return starts_at in set(self.slots(now=now))


def visit_school_of(members: Iterable[Any]) -> School | None:
    """The school whose office a household visits: the first school of the children
    the household is primary for (the school of the youngest grades first, then by
    name); without such a child, the first school of any of its children.
    ``members`` are ``HouseholdStudent`` rows with ``student__school`` loaded."""
    rows = list(members)
    primary = [m.student.school for m in rows if m.is_primary] or [m.student.school for m in rows]
    if not primary:
        return None
    return min(primary, key=lambda s: (grade_rank(s.low_grade), s.name, s.pk))


def visit_options_load(school: School | None) -> VisitOptions:
    """The school's office hours with its slot length and capacity, in one query."""
    if school is None:
        return VisitOptions(school=None)
    hours = list(
        OfficeHours.objects.filter(school=school)
        .select_related("school__visit_schedule")
        .order_by("weekday", "opens_at")
    )
    options = VisitOptions(school=school, hours=hours)
    if hours:
        try:
            schedule = hours[0].school.visit_schedule
        except ObjectDoesNotExist:
            schedule = None
        if schedule is not None:
            options.slot_minutes = schedule.slot_minutes
            options.capacity = schedule.capacity
    return options


def visit_slots_free(
    options: VisitOptions,
    *,
    now: datetime.datetime | None = None,
    exclude_request_id: int | None = None,
) -> list[datetime.datetime]:
    """The slots that still have room: fewer bookings that are not cancelled than the
    school's capacity. The bookings of ``exclude_request_id`` (the family's own) do
    not count. One query, none without office hours."""
    slots = options.slots(now=now)
    if not slots:
        return []
    booked = AddressVisit.objects.filter(
        school=options.school,
        cancelled_at__isnull=True,
        starts_at__gte=slots[0],
        starts_at__lte=slots[-1],
    )
    if exclude_request_id is not None:
        booked = booked.exclude(request_id=exclude_request_id)
    taken = dict(booked.values_list("starts_at").annotate(n=Count("pk")).order_by())
    return [slot for slot in slots if taken.get(slot, 0) < options.capacity]


def slot_value(starts_at: datetime.datetime) -> str:
    """A slot as a form sends it: its local date and time."""
    return timezone.localtime(starts_at).strftime(SLOT_FORMAT)


def slot_parse(value: str) -> datetime.datetime | None:
    """The slot a form sent, or None when it is not one."""
    try:
        naive = datetime.datetime.strptime(value, SLOT_FORMAT)
    except (TypeError, ValueError):
        return None
    return timezone.make_aware(naive)


def slot_day_label(starts_at: datetime.datetime) -> str:
    """The slot's day with its weekday, as the active language writes it: "Monday,
    May 4, 2026", "lunes, 4 de mayo de 2026", "2026年5月4日 星期一" (``config/formats``)."""
    return formats.date_format(timezone.localtime(starts_at), "WEEKDAY_DATE_FORMAT")


def slot_time_label(starts_at: datetime.datetime) -> str:
    return formats.time_format(timezone.localtime(starts_at), "TIME_FORMAT")


def slot_label(starts_at: datetime.datetime) -> str:
    """The slot's day, weekday and time: "Monday, May 4, 2026, 9:30 AM"."""
    return formats.date_format(timezone.localtime(starts_at), "WEEKDAY_DATETIME_FORMAT")


def slot_choices(slots: list[datetime.datetime]) -> list[tuple[str, list[tuple[str, str]]]]:
    """The slots grouped by day, as the choices of a select."""
    groups: dict[datetime.date, tuple[str, list[tuple[str, str]]]] = {}
    for slot in slots:
        day = timezone.localtime(slot).date()
        if day not in groups:
            groups[day] = (slot_day_label(slot), [])
        groups[day][1].append((slot_value(slot), slot_time_label(slot)))
    return list(groups.values())
