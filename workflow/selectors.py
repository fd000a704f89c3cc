"""Reads of campaigns and registrations that views share.

A guardian reaches a registration only through ``registration_of_guardian``, which
answers 404 for any household that is not theirs.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

from django.conf import settings
from django.db.models import (
    Count,
    Exists,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
)
from django.http import Http404
from django.utils import timezone

from config import school_field
from registration.grades import GRADE_LABELS, grade_in_range, grade_next, grade_rank
from registration.models import (
    ClassSection,
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
from registration.selectors import (
    ALL_SCHOOL_ROLES,
    households_visible_to,
    schools_visible_to,
    staff_profile_for,
)
from workflow.models import (
    Acknowledgement,
    AddressChangeRequest,
    AddressProof,
    AddressVisit,
    AuditEvent,
    Campaign,
    DashboardCount,
    EnrollmentDecision,
    Registration,
    RegistrationStep,
    Reminder,
    Submission,
    TransitionLog,
)
from workflow.visits import VisitOptions, visit_options_load, visit_school_of, visit_slots_free


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


# How many schools near the household the child step offers, besides the child's own
# school and the one already chosen, when the district has too many to list.
NEAR_SCHOOLS_OFFERED = 20


@dataclass(frozen=True)
class SchoolChoice:
    """A school as the child step offers and checks it."""

    pk: int
    name: str
    low_grade: str
    high_grade: str
    postal_code: str = ""

    def teaches(self, grade: str | None) -> bool:
        """Whether it teaches ``grade``; a school that gives no grades may teach any."""
        if not (grade and self.low_grade and self.high_grade):
            return True
        return grade_in_range(grade, self.low_grade, self.high_grade)


@dataclass
class SchoolOffer:
    """The schools the child step lists. A district of up to ``SCHOOL_SELECT_MAX``
    schools lists them all (``complete``); a larger one lists the schools near the
    household and those its children attend or were given, and the family types the
    name of any other."""

    schools: list[SchoolChoice]
    complete: bool
    postal_code: str
    # Schools read one by one, by id, when a larger district's family chose one that
    # is not listed.
    others: dict[int, SchoolChoice | None] = field(default_factory=dict)

    def school(self, pk: int) -> SchoolChoice | None:
        listed = next((s for s in self.schools if s.pk == pk), None)
        if listed is not None or self.complete:
            return listed
        if pk not in self.others:
            row = School.objects.filter(pk=pk).values_list(
                "pk", "name", "low_grade", "high_grade", "postal_code"
            )
            self.others[pk] = next((SchoolChoice(*r) for r in row), None)
        return self.others[pk]

    def remember(self, school: School) -> None:
        """A school the family typed, so that checking it reads it no more."""
        self.others[school.pk] = SchoolChoice(
            school.pk, school.name, school.low_grade, school.high_grade, school.postal_code
        )


@dataclass
class ChildRow:
    """One child of the household, as the wizard's child step needs them."""

    student: Student
    is_primary: bool
    may_decide: bool  # primary household and the signed-in guardian holds education rights
    decision: EnrollmentDecision | None
    consents: dict[str, bool]
    next_grade: str | None
    # The schools the household's child steps offer, read on first use: only the steps
    # whose form lists or checks a school read them.
    school_offer: Callable[[], SchoolOffer] = field(repr=False, compare=False)

    @property
    def step(self) -> str:
        return f"child-{self.student.pk}"

    @property
    def every_school_offered(self) -> bool:
        """Whether the list holds every school of the district (no search needed)."""
        return self.school_offer().complete

    @cached_property
    def offered_schools(self) -> list[SchoolChoice]:
        """The schools the child step lists, by name: all of a small district's; of a
        larger one, the child's own school if it teaches next year's grade, the school
        already chosen, and up to ``NEAR_SCHOOLS_OFFERED`` schools that teach the grade
        and share the household's ZIP code."""
        offer = self.school_offer()
        if offer.complete:
            return offer.schools
        chosen = self.decision.next_school_id if self.decision else None
        own = self.student.school_id
        near = [
            s
            for s in offer.schools
            if s.pk not in (own, chosen)
            and offer.postal_code
            and s.postal_code[:5] == offer.postal_code
            and s.teaches(self.next_grade)
        ][:NEAR_SCHOOLS_OFFERED]
        kept = [
            s
            for s in offer.schools
            if s.pk == chosen or (s.pk == own and s.teaches(self.next_grade))
        ]
        return sorted([*kept, *near], key=lambda s: (s.name, s.pk))

    def school(self, pk: int) -> SchoolChoice | None:
        """Any school of the district, by id."""
        return self.school_offer().school(pk)

    @cached_property
    def schools(self) -> list[SchoolChoice]:
        """The listed schools that teach next year's grade (all listed, if none does)."""
        grade = self.next_grade
        teaching = [
            s
            for s in self.offered_schools
            if grade and s.low_grade and s.high_grade and s.teaches(grade)
        ]
        return teaching or self.offered_schools


class WizardContext:
    """Everything the wizard shows about one household. Each part is read on first
    use, in a fixed number of queries however many children and guardians the
    household has: a step that is saved and redirected reads only what its form
    needs, a page that is shown reads every part once."""

    def __init__(self, registration: Registration, guardian: Guardian) -> None:
        self.registration = registration
        self.guardian = guardian
        self.language = "en"
        self._school_offer: SchoolOffer | None = None

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
        children = []
        for member in members:
            student = member.student
            next_grade = grade_next(student.grade)
            children.append(
                ChildRow(
                    student=student,
                    is_primary=member.is_primary,
                    may_decide=member.is_primary and member.has_rights,  # type: ignore[attr-defined]
                    decision=decisions.get(student.pk),
                    consents=consents[student.pk],
                    next_grade=next_grade,
                    school_offer=self._schools,
                )
            )
        return children

    def _schools(self) -> SchoolOffer:
        """The schools the children's steps offer, for every child of the household in
        one query: every school when the district has at most ``SCHOOL_SELECT_MAX``
        (``config.school_field``), otherwise those in the household's ZIP code (its
        five digits: a school's may be a ZIP+4), the children's own and those already
        chosen for them. Plain rows: a district has a thousand schools."""
        if self._school_offer is None:
            listed_max = school_field.SCHOOL_SELECT_MAX
            beyond_list = School.objects.order_by().values("pk")[listed_max : listed_max + 1]
            postal_code = self.household.postal_code.strip()[:5]
            ids = {m.student.school_id for m in self.members}
            ids |= {
                row.decision.next_school_id
                for row in self.children
                if row.decision and row.decision.next_school_id
            }
            near = Q(postal_code__startswith=postal_code) if postal_code else Q(pk__in=[])
            rows = list(
                School.objects.filter(near | Q(pk__in=ids) | ~Exists(beyond_list))
                .annotate(complete=~Exists(beyond_list))
                .order_by("name", "pk")
                .values_list("pk", "name", "low_grade", "high_grade", "postal_code", "complete")
            )
            self._school_offer = SchoolOffer(
                schools=[SchoolChoice(*row[:5]) for row in rows],
                complete=bool(rows) and rows[0][5],
                postal_code=postal_code,
            )
        return self._school_offer

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

    @property
    def visit_school(self) -> School | None:
        """The school whose office the family visits to show their proofs."""
        return visit_school_of(self.members)

    @cached_property
    def visit_options(self) -> VisitOptions:
        return visit_options_load(self.visit_school)

    @cached_property
    def visit_slots(self) -> list[datetime.datetime]:
        """The slots with room, the family's own booking counted as free."""
        request = self.address_request
        return visit_slots_free(
            self.visit_options, exclude_request_id=request.pk if request else None
        )

    @cached_property
    def address_visit(self) -> AddressVisit | None:
        """The family's booking for its open address change, if any."""
        if self.address_request is None:
            return None
        return (
            AddressVisit.objects.filter(request=self.address_request, cancelled_at__isnull=True)
            .order_by("-created_at")
            .first()
        )


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
    counted_at: datetime.datetime | None = None

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


def campaign_count() -> dict[str, Any]:
    """Registrations per state of every campaign, kept as the ``campaigns`` summary
    (``workflow.summaries``): a district's campaign has half a million of them."""
    ids = list(Campaign.objects.values_list("pk", flat=True))
    return {str(pk): counts for pk, counts in registration_counts_by_campaign(ids).items()}


def _counted() -> tuple[dict[str, dict[str, int]], datetime.datetime]:
    from workflow.summaries import summary_current

    summary = summary_current("campaigns")
    return summary.data, summary.taken_at


def campaign_summary(campaign: Campaign) -> CampaignSummary:
    counts, counted_at = _counted()
    return CampaignSummary(
        campaign=campaign, counts=counts.get(str(campaign.pk), {}), counted_at=counted_at
    )


def campaign_summaries() -> list[CampaignSummary]:
    """Every campaign with its counts as last counted: two queries however many
    campaigns and registrations there are."""
    counts, counted_at = _counted()
    return [
        CampaignSummary(campaign=c, counts=counts.get(str(c.pk), {}), counted_at=counted_at)
        for c in campaigns_all()
    ]


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


# -- the staff dashboard -------------------------------------------------------------


@dataclass
class DashboardCounts:
    """One row of the staff dashboard: a grade of a school, a school, or all of them."""

    households: int = 0
    not_started: int = 0
    in_progress: int = 0
    submitted: int = 0
    returned: int = 0
    approved: int = 0  # approved or already exported to the SIS
    address_requests: int = 0  # open: requested or awaiting the visit
    guardians: int = 0
    guardians_activated: int = 0

    children_fees_unpaid: int = 0  # children with a required fee not paid or waived

    @property
    def activation_percent(self) -> int | None:
        """The share of guardians with an account, in whole percent (None: no guardians)."""
        if not self.guardians:
            return None
        return round(100 * self.guardians_activated / self.guardians)


DASHBOARD_COUNT_NAMES = [name for name in DashboardCounts.__dataclass_fields__]


@dataclass
class DashboardGrade:
    grade: str
    label: str
    counts: DashboardCounts


@dataclass
class DashboardSchool:
    school: School
    grades: list[DashboardGrade]
    total: DashboardCounts


@dataclass
class Dashboard:
    campaign: Campaign
    schools: list[DashboardSchool]
    total: DashboardCounts
    district_wide: bool  # the user sees every school: the total is the district's
    counted_at: datetime.datetime | None  # None: never counted


def registration_dashboard(
    user: Any, campaign: Campaign, *, only: Collection[int] | None = None
) -> Dashboard:
    """The campaign's dashboard as last counted (``workflow.dashboard``) for the
    schools ``user`` may see: registrations by state, open address changes, the
    share of guardians with an account and the children with required fees unpaid,
    per school and grade, with each school's total and the total of them all.

    A household is counted with its primary children (those who live there mainly,
    whose enrollment decision is its to make): a household with children in two
    grades counts in each grade, and once in its school's total. The district's
    total counts each household once; the total of some schools is the sum of their
    totals. Three queries, however many schools and households there are.

    ``only`` (ids of schools) lists only those schools, a page of a district of a
    thousand schools; the total is still the district's, or of all the user's
    schools.
    """
    profile = staff_profile_for(user)
    district_wide = user.is_superuser or (profile is not None and profile.role in ALL_SCHOOL_ROLES)
    visible = schools_visible_to(user)
    if only is not None and district_wide:
        visible = visible.filter(pk__in=list(only))
    schools = sorted(visible, key=lambda s: (grade_rank(s.low_grade), s.name))
    rows = DashboardCount.objects.filter(campaign=campaign)
    if only is not None or not district_wide:
        rows = rows.filter(
            Q(school__in=[s.pk for s in schools]) | Q(level=DashboardCount.Level.DISTRICT)
        )
    # Plain tuples: a district has thousands of rows, and model instances cost.
    found: dict[tuple[int, int | None, str], DashboardCounts] = {}
    counted_at = None
    for level, school_id, grade, when, *values in rows.values_list(
        "level", "school_id", "grade", "counted_at", *DASHBOARD_COUNT_NAMES
    ):
        found[(level, school_id, grade)] = DashboardCounts(*values)
        if level == DashboardCount.Level.DISTRICT:
            counted_at = when
    district = found.get((DashboardCount.Level.DISTRICT, None, ""))

    def counts(row: DashboardCounts | None) -> DashboardCounts:
        return row if row is not None else DashboardCounts()

    # Each school's grades, found in one pass (not one pass over every row per school:
    # quadratic in a district of a thousand schools).
    grades_of: dict[int | None, list[str]] = {}
    for level, school_id, grade in found:
        if level == DashboardCount.Level.GRADE:
            grades_of.setdefault(school_id, []).append(grade)
    items = []
    for school in schools:
        grades = sorted(grades_of.get(school.pk, []), key=grade_rank)
        items.append(
            DashboardSchool(
                school=school,
                grades=[
                    DashboardGrade(
                        grade=grade,
                        label=str(GRADE_LABELS.get(grade, grade)),
                        counts=counts(found[(DashboardCount.Level.GRADE, school.pk, grade)]),
                    )
                    for grade in grades
                ],
                total=counts(found.get((DashboardCount.Level.SCHOOL, school.pk, ""))),
            )
        )
    if district_wide:
        total = counts(district)
    else:
        total = DashboardCounts()
        for item in items:
            for name in DASHBOARD_COUNT_NAMES:
                setattr(total, name, getattr(total, name) + getattr(item.total, name))
    return Dashboard(
        campaign=campaign,
        schools=items,
        total=total,
        district_wide=district_wide,
        counted_at=counted_at,
    )


def classes_of_teacher(user: Any) -> list[ClassSection]:
    """The classes the user teaches, each with ``students``: how many enabled students
    it has. One query."""
    profile = staff_profile_for(user)
    if profile is None or not profile.enabled:
        return []
    return list(
        ClassSection.objects.filter(teaching__teacher=profile)
        .select_related("school")
        .annotate(
            students=Count(
                "enrollments__student", distinct=True, filter=Q(enrollments__student__enabled=True)
            )
        )
        .order_by("school__name", "title", "pk")
    )


# -- reminders -----------------------------------------------------------------------

REMINDER_STATES = (Registration.State.NOT_STARTED, Registration.State.IN_PROGRESS)


def reminder_registrations(
    *,
    campaign: Campaign,
    school_ids: Sequence[int],
    grades: Sequence[str],
    states: Sequence[str],
    now: datetime.datetime | None = None,
) -> QuerySet[Registration]:
    """The campaign's registrations in ``states`` (not started, in progress) of
    households with a child at one of ``school_ids`` in one of ``grades`` (any school,
    any grade when empty), each annotated with ``reminded_recently`` (the household
    was sent a reminder in the last ``REMINDER_MIN_DAYS`` days) and ``has_email``
    (one of its guardians has an email address on file)."""
    now = now or timezone.now()
    children = HouseholdStudent.objects.filter(student__enabled=True)
    if school_ids:
        children = children.filter(student__school__in=school_ids)
    if grades:
        children = children.filter(student__grade__in=grades)
    since = now - datetime.timedelta(days=settings.REMINDER_MIN_DAYS)
    return (
        Registration.objects.filter(
            campaign=campaign,
            state__in=[s for s in states if s in REMINDER_STATES],
            household__in=children.values("household"),
        )
        .annotate(
            reminded_recently=Exists(
                Reminder.objects.filter(
                    registration__household=OuterRef("household"), created_at__gte=since
                )
            ),
            has_email=Exists(
                HouseholdGuardian.objects.filter(
                    household=OuterRef("household"),
                    guardian__enabled=True,
                    guardian__contact_points__kind=ContactPoint.Kind.EMAIL,
                )
            ),
        )
        .order_by("pk")
    )


def reminders_due(**filters: Any) -> QuerySet[Registration]:
    """The registrations of ``reminder_registrations(**filters)`` to write to now."""
    return reminder_registrations(**filters).filter(Q(reminded_recently=False), Q(has_email=True))


@dataclass
class ReminderPreview:
    matching: int  # households in the chosen schools, grades and states
    reminded_recently: int
    without_email: int
    due: int  # would be emailed


def reminder_preview(**filters: Any) -> ReminderPreview:
    """How many households a send with these filters would write to, and how many it
    leaves out and why. One query."""
    counts = reminder_registrations(**filters).aggregate(
        matching_count=Count("pk"),
        recent_count=Count("pk", filter=Q(reminded_recently=True)),
        without_email_count=Count("pk", filter=Q(has_email=False)),
        due_count=Count("pk", filter=Q(reminded_recently=False, has_email=True)),
    )
    return ReminderPreview(
        matching=counts["matching_count"],
        reminded_recently=counts["recent_count"],
        without_email=counts["without_email_count"],
        due=counts["due_count"],
    )


def reminder_count() -> dict[str, Any]:
    """The preview of a reminder to every household of the running campaign not done
    yet (every school, every grade, both states), kept as the ``reminders`` summary
    (``workflow.summaries``): it reads every registration of the district."""
    campaign = campaign_running()
    if campaign is None:
        return {"campaign": None}
    preview = reminder_preview(
        campaign=campaign, school_ids=[], grades=[], states=list(REMINDER_STATES)
    )
    return {"campaign": campaign.pk, **asdict(preview)}


def reminder_sends_recent(*, limit: int = 10) -> list[AuditEvent]:
    """The last reminder sends, newest first, with who sent them."""
    return list(
        AuditEvent.objects.filter(object_type="workflow.reminder", action=AuditEvent.Action.CREATE)
        .select_related("actor")
        .order_by("-created_at", "-pk")[:limit]
    )


# -- staff review of registrations -----------------------------------------------------

REVIEW_STATES = (
    Registration.State.SUBMITTED,
    Registration.State.RETURNED,
    Registration.State.APPROVED,
)


def registrations_visible_to(user: Any) -> QuerySet[Registration]:
    """Registrars (and superusers) see every registration; office staff those of the
    households with a student at their schools; anyone else, none."""
    profile = staff_profile_for(user)
    if user.is_superuser:
        return Registration.objects.all()
    if profile is None or not profile.enabled:
        return Registration.objects.none()
    if profile.role == profile.Role.REGISTRAR:
        return Registration.objects.all()
    if profile.role == profile.Role.OFFICE:
        return Registration.objects.filter(household__in=households_visible_to(user))
    return Registration.objects.none()


def registrations_at_school(
    registrations: QuerySet[Registration], school: School
) -> QuerySet[Registration]:
    """The registrations of households with a student at ``school``."""
    return registrations.filter(
        household_id__in=HouseholdStudent.objects.filter(student__school=school).values(
            "household_id"
        )
    )


# The review queue's tabs count each state up to this many; beyond, a tab reads
# "10,000+" (the dashboard has the district's exact figures, counted in the background).
REVIEW_COUNT_CAP = 10_000


def registration_counts_by_state(
    registrations: QuerySet[Registration], *, besides: str = ""
) -> dict[str, int]:
    """How many of ``registrations`` are in each state of the review queue but
    ``besides`` (the state whose list is shown, counted by its pages), each
    counted up to ``REVIEW_COUNT_CAP`` + 1: one query per state over the (campaign,
    state) index's entries of that state, which stops there. Counting every entry
    took 37 ms of the queue's 90 at a million students."""
    return {
        str(state): registrations.filter(state=state).order_by()[: REVIEW_COUNT_CAP + 1].count()
        for state in REVIEW_STATES
        if state != besides
    }


def registration_review_queue(registrations: QuerySet[Registration]) -> QuerySet[Registration]:
    """Registrations as the review queue lists them, oldest submission first, each
    with its household, guardians and children and whether an address change is
    open: three queries for a page, however many rows it holds."""
    return (
        registrations.select_related("household")
        .annotate(
            address_open=Exists(
                AddressChangeRequest.objects.filter(
                    household_id=OuterRef("household_id"),
                    state__in=AddressChangeRequest.OPEN_STATES,
                )
            )
        )
        .prefetch_related(
            Prefetch(
                "household__householdstudent_set",
                queryset=HouseholdStudent.objects.select_related("student__school").order_by(
                    "student__birth_date", "student__given_name", "pk"
                ),
                to_attr="student_rows",
            ),
            Prefetch(
                "household__householdguardian_set",
                queryset=HouseholdGuardian.objects.select_related("guardian").order_by(
                    "guardian__given_name", "pk"
                ),
                to_attr="guardian_rows",
            ),
        )
        .order_by(F("submitted_at").asc(nulls_last=True), "pk")
    )


@dataclass
class RegistrationReview:
    """What staff see of one registration before they approve or return it."""

    registration: Registration
    submissions: list[Submission]  # newest first
    decisions: list[EnrollmentDecision]
    address_request: AddressChangeRequest | None
    history: list[TransitionLog]

    @property
    def submission(self) -> Submission | None:
        return self.submissions[0] if self.submissions else None

    @property
    def earlier_submissions(self) -> list[Submission]:
        return self.submissions[1:]

    @property
    def history_rows(self) -> list[tuple[TransitionLog, str, str]]:
        """Each state change with the labels of the states it went from and to."""
        labels = dict(Registration.State.choices)
        return [
            (log, str(labels.get(log.source, log.source)), str(labels.get(log.target, log.target)))
            for log in self.history
        ]

    @property
    def address_open(self) -> bool:
        request = self.address_request
        return request is not None and request.state in AddressChangeRequest.OPEN_STATES

    @property
    def steps(self) -> list[tuple[str, str]]:
        """The steps the family signed, as (step, title): where staff may send them
        back to."""
        if self.submission is None:
            return []
        return [
            (section["step"], section["title"])
            for section in self.submission.content.get("sections", [])
            if section.get("step")
        ]


def registration_review_load(registration: Registration) -> RegistrationReview:
    """Every submission (newest first), the children's decisions, the household's
    open address change (else this registration's last one) and the registration's
    state changes: four queries."""
    address_requests = AddressChangeRequest.objects.filter(
        household_id=registration.household_id
    ).filter(Q(state__in=AddressChangeRequest.OPEN_STATES) | Q(registration=registration))
    return RegistrationReview(
        registration=registration,
        submissions=list(
            Submission.objects.filter(registration=registration)
            .select_related("guardian")
            .order_by("-version")
        ),
        decisions=decisions_of_registration(registration),
        address_request=address_requests.order_by("-created_at", "-pk").first(),
        history=list(
            TransitionLog.objects.filter(
                object_type=Registration._meta.label_lower, object_id=str(registration.pk)
            )
            .select_related("actor")
            .order_by("created_at", "pk")
        ),
    )
