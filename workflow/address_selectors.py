"""Reads of address changes for staff: the verification queue, one request with its
proofs and visits, the day's visits, and the schools' office hours.

What a member of staff may see is decided here, once: registrars (and superusers)
see every household; office staff the households with a child at one of their
schools; anyone else nothing.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from registration.models import (
    ContactPoint,
    HouseholdGuardian,
    HouseholdStudent,
    School,
    StaffProfile,
)
from registration.selectors import households_visible_to, staff_profile_for
from workflow.models import (
    AddressChangeRequest,
    AddressProof,
    AddressVisit,
    OfficeHours,
    TransitionLog,
)

QUEUE_STATES = AddressChangeRequest.OPEN_STATES


def _scope(user: Any) -> str:
    """ "all", "schools" (office staff) or "none"."""
    if user.is_superuser:
        return "all"
    profile = staff_profile_for(user)
    if profile is None or not profile.enabled:
        return "none"
    if profile.role == StaffProfile.Role.REGISTRAR:
        return "all"
    if profile.role == StaffProfile.Role.OFFICE:
        return "schools"
    return "none"


def address_requests_visible_to(user: Any) -> QuerySet[AddressChangeRequest]:
    """Address changes of the households the user may work on: every household for
    registrars; for office staff, households with a child at one of their schools."""
    scope = _scope(user)
    requests = AddressChangeRequest.objects.all()
    if scope == "all":
        return requests
    if scope == "schools":
        return requests.filter(household__in=households_visible_to(user))
    return requests.none()


def address_schools_visible_to(user: Any) -> QuerySet[School]:
    """The schools whose visits and office hours the user may see and set: every
    school for registrars, their own for office staff."""
    scope = _scope(user)
    if scope == "all":
        return School.objects.all()
    if scope == "schools":
        return School.objects.filter(staff=staff_profile_for(user))
    return School.objects.none()


@dataclass
class AddressQueue:
    """The open address changes that match the filters, oldest first, and how many
    there are in each open state (the state filter aside)."""

    requests: QuerySet[AddressChangeRequest]
    counts: dict[str, int]

    def counts_by_label(self) -> list[tuple[str, str, int]]:
        return [
            (state.value, str(state.label), self.counts.get(state.value, 0))
            for state in QUEUE_STATES
        ]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def address_queue(
    user: Any,
    *,
    school: School | None = None,
    state: str = "",
    older_than_days: int | None = None,
    now: datetime.datetime | None = None,
) -> AddressQueue:
    """The verification queue: requested and awaiting-visit changes the user may
    see, filtered by a school of the household's children, by state and by age.
    The counts are one aggregated query; each row carries its household, who asked,
    how many proofs were sent and the booking (``active_visits``)."""
    now = now or timezone.now()
    requests = address_requests_visible_to(user).filter(state__in=QUEUE_STATES)
    if school is not None:
        requests = requests.filter(
            household__in=HouseholdStudent.objects.filter(student__school=school).values(
                "household_id"
            )
        )
    if older_than_days:
        requests = requests.filter(created_at__lte=now - datetime.timedelta(days=older_than_days))
    counts = dict(requests.values_list("state").annotate(n=Count("pk")).order_by())
    if state:
        requests = requests.filter(state=state)
    rows = (
        requests.select_related("household", "requested_by")
        # A subquery, not a join: the paginator's count then leaves it out.
        .annotate(
            proof_count=Subquery(
                AddressProof.objects.filter(request=OuterRef("pk"))
                .order_by()
                .values("request")
                .annotate(n=Count("pk"))
                .values("n")[:1]
            )
        )
        .prefetch_related(
            Prefetch(
                "visits",
                queryset=AddressVisit.objects.filter(cancelled_at__isnull=True)
                .select_related("school")
                .order_by("-created_at"),
                to_attr="active_visits",
            )
        )
        .order_by("created_at", "pk")
    )
    return AddressQueue(requests=rows, counts=counts)


def address_request_for_staff(user: Any, pk: int) -> AddressChangeRequest:
    """The request ``pk`` if the user may see its household; 404 otherwise, so that
    a request of another school looks like one that does not exist."""
    request = (
        address_requests_visible_to(user)
        .select_related(
            "household",
            "requested_by",
            "registration__campaign__school_year",
            "decided_by",
            "visit_recorded_by",
        )
        .filter(pk=pk)
        .first()
    )
    if request is None:
        raise Http404
    return request


def address_proof_for_staff(user: Any, pk: int, proof_pk: int) -> AddressProof:
    """A proof of the request ``pk``, if the user may see the request; 404 otherwise."""
    proof = (
        AddressProof.objects.filter(
            pk=proof_pk, request__in=address_requests_visible_to(user).filter(pk=pk)
        )
        .select_related("request")
        .first()
    )
    if proof is None:
        raise Http404
    return proof


@dataclass
class AddressRequestDetail:
    request: AddressChangeRequest
    proofs: list[AddressProof]
    visits: list[AddressVisit]
    history: list[TransitionLog]
    guardians: list[Any]

    @property
    def active_visit(self) -> AddressVisit | None:
        return next((v for v in self.visits if v.cancelled_at is None), None)

    @property
    def is_open(self) -> bool:
        return self.request.state in AddressChangeRequest.OPEN_STATES

    @property
    def visit_recorded(self) -> bool:
        return (
            self.request.visit_recorded_at is not None and len(set(self.request.proofs_seen)) >= 2
        )

    @property
    def may_verify(self) -> bool:
        return self.request.state == AddressChangeRequest.State.AWAITING_VISIT and (
            self.visit_recorded
        )


def address_request_detail(request: AddressChangeRequest) -> AddressRequestDetail:
    """Everything the detail page shows about one request, in five queries."""
    return AddressRequestDetail(
        request=request,
        proofs=list(request.proofs.order_by("created_at", "pk")),
        visits=list(
            request.visits.select_related("school", "booked_by").order_by("-created_at", "-pk")
        ),
        history=list(
            TransitionLog.objects.filter(
                object_type=AddressChangeRequest._meta.label_lower, object_id=str(request.pk)
            )
            .select_related("actor")
            .order_by("created_at", "pk")
        ),
        guardians=[
            row.guardian
            for row in HouseholdGuardian.objects.filter(household_id=request.household_id)
            .select_related("guardian")
            .prefetch_related(
                Prefetch(
                    "guardian__contact_points",
                    queryset=ContactPoint.objects.order_by("kind", "position", "pk"),
                )
            )
            .order_by("guardian__given_name", "guardian__pk")
        ],
    )


def _day_bounds(day: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    start = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
    end = timezone.make_aware(
        datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time.min)
    )
    return start, end


def _visits_at(schools: QuerySet[School]) -> QuerySet[AddressVisit]:
    return AddressVisit.objects.filter(
        school__in=schools, cancelled_at__isnull=True
    ).select_related("school", "request__household", "request__requested_by", "booked_by")


def visits_of_day(
    user: Any, day: datetime.date, *, school: School | None = None
) -> list[AddressVisit]:
    """The day's booked visits at the schools the user may see, by time."""
    schools = address_schools_visible_to(user)
    if school is not None:
        schools = schools.filter(pk=school.pk)
    start, end = _day_bounds(day)
    return list(
        _visits_at(schools)
        .filter(starts_at__gte=start, starts_at__lt=end)
        .order_by("starts_at", "pk")
    )


def walk_ins_expected(user: Any, *, school: School | None = None, limit: int = 200) -> list[Any]:
    """Families who said they would walk in and whose address change is still open,
    the earliest booked first."""
    schools = address_schools_visible_to(user)
    if school is not None:
        schools = schools.filter(pk=school.pk)
    return list(
        _visits_at(schools)
        .filter(walk_in=True, request__state__in=QUEUE_STATES)
        .order_by("created_at", "pk")[:limit]
    )


def visit_schedules_of(schools: QuerySet[School]) -> list[School]:
    """The schools with their visit schedule and office hours, in two queries."""
    return list(
        schools.select_related("visit_schedule")
        .prefetch_related(
            Prefetch("office_hours", queryset=OfficeHours.objects.order_by("weekday", "opens_at"))
        )
        .order_by("name")
    )
