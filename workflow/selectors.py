"""Reads of campaigns and registrations that views share.

A guardian reaches a registration only through ``registration_of_guardian``, which
answers 404 for any household that is not theirs.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet
from django.http import Http404
from django.utils import timezone

from registration.grades import grade_in_range, grade_next
from registration.models import (
    Consent,
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
    all_schools: list[School]  # any of which a family may choose, if it teaches the grade

    @property
    def step(self) -> str:
        return f"child-{self.student.pk}"


class WizardContext:
    """Everything the wizard shows about one household. Each part is read on first
    use, in a fixed number of queries however many children and guardians the
    household has: a step that is saved and redirected reads only what its form
    needs, a page that is shown reads every part once."""

    def __init__(self, registration: Registration, guardian: Guardian) -> None:
        self.registration = registration
        self.guardian = guardian
        self.language = "en"

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

    @cached_property
    def guardians(self) -> list[Guardian]:
        return [
            row.guardian
            for row in HouseholdGuardian.objects.filter(household=self.household)
            .select_related("guardian__contact_preference")
            .prefetch_related(
                Prefetch(
                    "guardian__contact_points",
                    queryset=ContactPoint.objects.order_by("kind", "position", "pk"),
                )
            )
            .order_by("guardian__given_name", "guardian__pk")
        ]

    @cached_property
    def members(self) -> list[HouseholdStudent]:
        """The household's children, oldest first, each marked ``has_rights`` when the
        signed-in guardian holds education rights for them."""
        return list(
            HouseholdStudent.objects.filter(household=self.household, student__enabled=True)
            .select_related("student__school", "student__health")
            .annotate(
                has_rights=Exists(
                    StudentGuardian.objects.filter(
                        guardian=self.guardian,
                        student_id=OuterRef("student_id"),
                        has_education_rights=True,
                    )
                )
            )
            .order_by("student__birth_date", "student__given_name", "student__pk")
        )

    @property
    def child_steps(self) -> list[str]:
        """The names of the children's steps: all a step that is saved needs to know
        which step comes next."""
        return [f"child-{member.student_id}" for member in self.members]

    @cached_property
    def children(self) -> list[ChildRow]:
        members = self.members
        student_ids = [m.student_id for m in members]
        consents: dict[int, dict[str, bool]] = {pk: {} for pk in student_ids}
        for consent in Consent.objects.filter(student_id__in=student_ids):
            consents[consent.student_id][consent.kind] = consent.granted
        decisions = {
            d.student_id: d
            for d in EnrollmentDecision.objects.filter(
                campaign_id=self.registration.campaign_id, student_id__in=student_ids
            ).select_related("next_school")
        }
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
                    may_decide=member.is_primary and member.has_rights,  # type: ignore[attr-defined]
                    decision=decisions.get(student.pk),
                    consents=consents[student.pk],
                    next_grade=next_grade,
                    schools=teaching or schools,
                    all_schools=schools,
                )
            )
        return children

    @cached_property
    def emergency_contacts(self) -> list[EmergencyContact]:
        return list(EmergencyContact.objects.filter(household=self.household).order_by("priority"))

    @cached_property
    def acknowledgements(self) -> list[Acknowledgement]:
        return list(
            Acknowledgement.objects.filter(
                campaign_id=self.registration.campaign_id, is_current=True
            ).order_by("position", "key")
        )

    @cached_property
    def drafts(self) -> dict[str, RegistrationStep]:
        return {d.step: d for d in RegistrationStep.objects.filter(registration=self.registration)}

    @cached_property
    def address_request(self) -> AddressChangeRequest | None:
        return (
            AddressChangeRequest.objects.filter(
                household=self.household, state__in=AddressChangeRequest.OPEN_STATES
            )
            .prefetch_related("proofs")
            .first()
        )

    @cached_property
    def proofs(self) -> list[AddressProof]:
        return list(self.address_request.proofs.all()) if self.address_request else []


def wizard_context_load(registration: Registration, guardian: Guardian) -> WizardContext:
    """The wizard's view of ``registration`` for ``guardian``; nothing is read yet."""
    return WizardContext(registration, guardian)


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


@dataclass
class CampaignSummary:
    """One campaign on the registrar's list, with its registrations counted by state."""

    campaign: Campaign
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def counts_in_order(self) -> list[int]:
        """The counts in the order of ``Registration.State``, for the table's columns."""
        return [self.counts.get(state, 0) for state in Registration.State.values]

    def counts_by_label(self) -> list[tuple[str, int]]:
        """(state's label, count) in the order of ``Registration.State``."""
        return [
            (str(label), self.counts.get(state, 0)) for state, label in Registration.State.choices
        ]

    @property
    def status(self) -> str:
        """not_opened, scheduled, running or closed."""
        today = timezone.localdate()
        if self.campaign.opened_at is None:
            return "not_opened"
        if today < self.campaign.opens_on:
            return "scheduled"
        if today > self.campaign.closes_on:
            return "closed"
        return "running"


def registration_counts_by_campaign(campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Registrations per state of each campaign, in one aggregated query."""
    counts: dict[int, dict[str, int]] = {pk: {} for pk in campaign_ids}
    rows = (
        Registration.objects.filter(campaign_id__in=campaign_ids)
        .values_list("campaign_id", "state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for campaign_id, state, n in rows:
        counts[campaign_id][state] = n
    return counts


def campaign_summary(campaign: Campaign) -> CampaignSummary:
    return CampaignSummary(
        campaign=campaign, counts=registration_counts_by_campaign([campaign.pk])[campaign.pk]
    )


def campaign_summaries() -> list[CampaignSummary]:
    """Every campaign with its counts: two queries however many campaigns there are."""
    campaigns = list(campaigns_all())
    counts = registration_counts_by_campaign([c.pk for c in campaigns])
    return [CampaignSummary(campaign=c, counts=counts[c.pk]) for c in campaigns]


@dataclass
class AcknowledgementDocument:
    """Every version of one document of a campaign; ``current`` is None once retired."""

    key: str
    current: Acknowledgement | None
    earlier: list[Acknowledgement]

    @property
    def latest(self) -> Acknowledgement:
        return self.current or self.earlier[0]


def acknowledgement_documents(campaign: Campaign) -> list[AcknowledgementDocument]:
    """The campaign's documents in the order families see them, each with its earlier
    versions (newest first); retired documents last."""
    documents: dict[str, AcknowledgementDocument] = {}
    for row in (
        Acknowledgement.objects.filter(campaign=campaign)
        .select_related("created_by")
        .order_by("key", "-version")
    ):
        document = documents.setdefault(
            row.key, AcknowledgementDocument(key=row.key, current=None, earlier=[])
        )
        if row.is_current:
            document.current = row
        else:
            document.earlier.append(row)
    return sorted(
        documents.values(),
        key=lambda d: (d.current is None, d.latest.position, d.key),
    )
