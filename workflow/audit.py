"""Reads of the audit log for the registrar's audit page: who did what to which
record, found by the person who acted, by a student, and by date."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from registration.models import (
    Consent,
    EmergencyContact,
    Household,
    HouseholdStudent,
    Student,
    StudentGuardian,
    StudentHealth,
)
from workflow.models import (
    AddressChangeRequest,
    AuditEvent,
    EnrollmentDecision,
    Registration,
)


def students_matching(query: str) -> QuerySet[Student]:
    """Students whose roster or state id is ``query``, or whose names hold every
    word of it."""
    query = query.strip()
    if not query:
        return Student.objects.none()
    by_name = Q()
    for word in query.split():
        by_name &= Q(given_name__icontains=word) | Q(family_name__icontains=word)
    return Student.objects.filter(Q(sourced_id=query) | Q(state_id=query) | by_name)


def _ids(queryset: QuerySet[Any]) -> QuerySet[Any]:
    """The primary keys as text, to compare with ``AuditEvent.object_id``."""
    return queryset.order_by().values_list(Cast("pk", CharField()), flat=True)


def _about_students(students: QuerySet[Student]) -> Q:
    """Events about the students, their own records, and their households with the
    households' registrations, address requests and emergency contacts."""
    households = Household.objects.filter(householdstudent__student__in=students)
    about = {
        Student: students,
        StudentHealth: StudentHealth.objects.filter(student__in=students),
        Consent: Consent.objects.filter(student__in=students),
        StudentGuardian: StudentGuardian.objects.filter(student__in=students),
        HouseholdStudent: HouseholdStudent.objects.filter(student__in=students),
        EnrollmentDecision: EnrollmentDecision.objects.filter(student__in=students),
        Household: households,
        Registration: Registration.objects.filter(household__in=households),
        AddressChangeRequest: AddressChangeRequest.objects.filter(household__in=households),
        EmergencyContact: EmergencyContact.objects.filter(household__in=households),
    }
    condition = Q()
    for model, queryset in about.items():
        condition |= Q(object_type=model._meta.label_lower, object_id__in=_ids(queryset))
    return condition


def _actor_matches(query: str) -> Q:
    condition = Q()
    for word in query.split():
        condition &= (
            Q(actor__email__icontains=word)
            | Q(actor__first_name__icontains=word)
            | Q(actor__last_name__icontains=word)
            | Q(actor_label__icontains=word)
        )
    return condition


def _start_of(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


@dataclass
class AuditSearch:
    actor: str = ""
    student: str = ""
    since: datetime.date | None = None
    until: datetime.date | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.actor or self.student or self.since or self.until)


def audit_events_search(search: AuditSearch) -> QuerySet[AuditEvent]:
    """Events matching every filter given, newest first; ``until`` is inclusive."""
    events = AuditEvent.objects.select_related("actor")
    if search.actor.strip():
        events = events.filter(_actor_matches(search.actor))
    if search.student.strip():
        events = events.filter(_about_students(students_matching(search.student)))
    if search.since is not None:
        events = events.filter(created_at__gte=_start_of(search.since))
    if search.until is not None:
        events = events.filter(created_at__lt=_start_of(search.until + datetime.timedelta(days=1)))
    return events.order_by("-created_at", "-id")
