"""Reads of campaigns and registrations that views share.

A guardian reaches a registration only through ``registration_of_guardian``, which
answers 404 for any household that is not theirs.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone

from registration.grades import grade_in_range, grade_next
from registration.models import (
    ContactPoint,
    EmergencyContact,
    Guardian,
    HouseholdGuardian,
    HouseholdStudent,
    School,
    Student,
    StudentGuardian,
)
from workflow.models import (
    Acknowledgement,
    AddressChangeRequest,
    AddressProof,
    Campaign,
    EnrollmentDecision,
    Registration,
    RegistrationStep,
    Submission,
)


def campaign_running(*, today: datetime.date | None = None) -> Campaign | None:
    """The opened campaign whose dates include today, if any."""
    today = today or timezone.localdate()
    return (
        Campaign.objects.select_related("school_year")
        .filter(opened_at__isnull=False, opens_on__lte=today, closes_on__gte=today)
        .order_by("-opens_on")
        .first()
    )


def campaign_latest() -> Campaign | None:
    """The most recent opened campaign, running or not: the one homes show."""
    return (
        Campaign.objects.select_related("school_year")
        .filter(opened_at__isnull=False)
        .order_by("-opens_on")
        .first()
    )


def registrations_of_guardian(guardian: Guardian, campaign: Campaign) -> list[Registration]:
    return list(
        Registration.objects.filter(
            campaign=campaign, household__householdguardian__guardian=guardian
        )
        .select_related("household")
        .order_by("household__sourced_id")
    )


def registration_of_guardian(guardian: Guardian | None, pk: int) -> Registration:
    """The registration ``pk`` if it belongs to one of the guardian's households;
    404 otherwise, so that a guessed id tells nothing."""
    if guardian is None:
        raise Http404
    registration = (
        Registration.objects.select_related("campaign__school_year", "household")
        .filter(pk=pk, household__householdguardian__guardian=guardian)
        .first()
    )
    if registration is None:
        raise Http404
    return registration


@dataclass
class ChildRow:
    """One child of the household, as the wizard's child step needs them."""

    student: Student
    is_primary: bool
    may_decide: bool  # primary household and the signed-in guardian holds education rights
    decision: EnrollmentDecision | None
    consents: dict[str, bool]
    next_grade: str | None
    schools: list[School]  # the schools that teach next year's grade

    @property
    def step(self) -> str:
        return f"child-{self.student.pk}"


@dataclass
class WizardContext:
    """Everything the wizard shows, read in a fixed number of queries however many
    children and guardians the household has."""

    registration: Registration
    guardian: Guardian
    guardians: list[Guardian]
    children: list[ChildRow]
    emergency_contacts: list[EmergencyContact]
    acknowledgements: list[Acknowledgement]
    drafts: dict[str, RegistrationStep]
    address_request: AddressChangeRequest | None
    proofs: list[AddressProof] = field(default_factory=list)
    last_submission: Submission | None = None
    language: str = "en"

    @property
    def household(self) -> Any:
        return self.registration.household

    @property
    def campaign(self) -> Campaign:
        return self.registration.campaign

    def child(self, student_id: int) -> ChildRow | None:
        for row in self.children:
            if row.student.pk == student_id:
                return row
        return None


def wizard_context_load(registration: Registration, guardian: Guardian) -> WizardContext:
    household = registration.household
    guardians = [
        row.guardian
        for row in HouseholdGuardian.objects.filter(household=household)
        .select_related("guardian__contact_preference")
        .prefetch_related(
            Prefetch(
                "guardian__contact_points",
                queryset=ContactPoint.objects.order_by("kind", "position", "pk"),
            )
        )
        .order_by("guardian__given_name", "guardian__pk")
    ]
    members = list(
        HouseholdStudent.objects.filter(household=household, student__enabled=True)
        .select_related("student__school", "student__health")
        .prefetch_related("student__consents")
        .order_by("student__birth_date", "student__given_name", "student__pk")
    )
    student_ids = [m.student_id for m in members]
    decisions = {
        d.student_id: d
        for d in EnrollmentDecision.objects.filter(
            campaign_id=registration.campaign_id, student_id__in=student_ids
        ).select_related("next_school")
    }
    rights = set(
        StudentGuardian.objects.filter(
            guardian=guardian, student_id__in=student_ids, has_education_rights=True
        ).values_list("student_id", flat=True)
    )
    schools = list(School.objects.order_by("name"))
    children = []
    for member in members:
        student = member.student
        next_grade = grade_next(student.grade)
        teaching = [
            s
            for s in schools
            if next_grade and s.low_grade and s.high_grade
            if grade_in_range(next_grade, s.low_grade, s.high_grade)
        ]
        children.append(
            ChildRow(
                student=student,
                is_primary=member.is_primary,
                may_decide=member.is_primary and student.pk in rights,
                decision=decisions.get(student.pk),
                consents={c.kind: c.granted for c in student.consents.all()},
                next_grade=next_grade,
                schools=teaching or schools,
            )
        )
    address_request = (
        AddressChangeRequest.objects.filter(
            household=household, state__in=AddressChangeRequest.OPEN_STATES
        )
        .prefetch_related("proofs")
        .first()
    )
    return WizardContext(
        registration=registration,
        guardian=guardian,
        guardians=guardians,
        children=children,
        emergency_contacts=list(
            EmergencyContact.objects.filter(household=household).order_by("priority")
        ),
        acknowledgements=list(
            Acknowledgement.objects.filter(
                campaign_id=registration.campaign_id, is_current=True
            ).order_by("position", "key")
        ),
        drafts={d.step: d for d in RegistrationStep.objects.filter(registration=registration)},
        address_request=address_request,
        proofs=list(address_request.proofs.all()) if address_request else [],
        last_submission=registration.submissions.order_by("-version").first(),
    )


def registration_states_of_households(
    households: list[Any], campaign: Campaign | None
) -> dict[int, Registration]:
    """The campaign's registration of each household, by household id."""
    if campaign is None:
        return {}
    return {
        r.household_id: r
        for r in Registration.objects.filter(
            campaign=campaign, household__in=[h.pk for h in households]
        ).prefetch_related(
            Prefetch("submissions", queryset=Submission.objects.select_related("confirmation"))
        )
    }


def decisions_of_students(
    student_ids: list[int], campaign: Campaign | None
) -> dict[int, EnrollmentDecision]:
    if campaign is None:
        return {}
    return {
        d.student_id: d
        for d in EnrollmentDecision.objects.filter(
            campaign=campaign, student_id__in=student_ids
        ).select_related("next_school")
    }


def campaigns_all() -> QuerySet[Campaign]:
    return Campaign.objects.select_related("school_year").order_by("-opens_on")


def decisions_of_registration(registration: Registration) -> list[EnrollmentDecision]:
    """The decisions for the household's children, those made by another household
    included (shown read-only)."""
    return list(
        EnrollmentDecision.objects.filter(
            campaign_id=registration.campaign_id,
            student__householdstudent__household_id=registration.household_id,
        )
        .select_related("student", "next_school")
        .order_by("student__birth_date", "student__given_name")
    )
