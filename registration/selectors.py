"""Reads that views share. Every read that staff make goes through the ``*_visible_to``
selectors, so that what a member of staff may see is decided in one place."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from registration.grades import GRADE_LABELS, grade_rank
from registration.models import (
    AcademicSession,
    ContactPoint,
    EmergencyContact,
    Guardian,
    Household,
    HouseholdGuardian,
    HouseholdStudent,
    School,
    StaffProfile,
    Student,
    StudentGuardian,
    User,
)

ALL_SCHOOL_ROLES = {StaffProfile.Role.REGISTRAR, StaffProfile.Role.FINANCE}


def school_year_current(*, today: datetime.date | None = None) -> AcademicSession | None:
    """The school year running today (or the last that started); before any has
    started, the first one."""
    today = today or timezone.localdate()
    years = AcademicSession.objects.filter(session_type=AcademicSession.SessionType.SCHOOL_YEAR)
    return (
        years.filter(start_date__lte=today).order_by("-start_date").first()
        or years.order_by("start_date").first()
    )


def school_year_next(*, today: datetime.date | None = None) -> AcademicSession | None:
    """The school year after the current one: the one families re-register for."""
    current = school_year_current(today=today)
    if current is None:
        return None
    return (
        AcademicSession.objects.filter(
            session_type=AcademicSession.SessionType.SCHOOL_YEAR,
            start_date__gt=current.start_date,
        )
        .order_by("start_date")
        .first()
    )


def _own_record(user: User, attribute: str) -> Any:
    """The record a signed-in user is (their staff profile, guardian, student), or None."""
    if not user.is_authenticated:
        return None
    try:
        return getattr(user, attribute)
    except ObjectDoesNotExist:
        return None


def staff_profile_for(user: User) -> StaffProfile | None:
    return _own_record(user, "staff_profile")


def guardian_for(user: User) -> Guardian | None:
    return _own_record(user, "guardian")


def student_for(user: User) -> Student | None:
    return _own_record(user, "student")


def schools_visible_to(user: User) -> QuerySet[School]:
    """Registrars, finance and superusers see every school; office staff and teachers
    see their own; anyone else sees none."""
    if user.is_superuser:
        return School.objects.all()
    profile = staff_profile_for(user)
    if profile is None or not profile.enabled:
        return School.objects.none()
    if profile.role in ALL_SCHOOL_ROLES:
        return School.objects.all()
    return School.objects.filter(staff=profile)


def students_visible_to(user: User) -> QuerySet[Student]:
    """Office staff see the students of their schools; teachers the students of their
    own classes."""
    profile = staff_profile_for(user)
    if profile is not None and profile.role == StaffProfile.Role.TEACHER:
        if not profile.enabled:
            return Student.objects.none()
        return Student.objects.filter(enrollments__section__teaching__teacher=profile).distinct()
    return Student.objects.filter(school__in=schools_visible_to(user))


def households_visible_to(user: User) -> QuerySet[Household]:
    """Households with at least one student the user may see."""
    return Household.objects.filter(
        Q(
            pk__in=HouseholdStudent.objects.filter(student__in=students_visible_to(user)).values(
                "household_id"
            )
        )
    )


@dataclass
class SchoolOverview:
    school: School
    students: int = 0
    households: int = 0
    by_grade: list[tuple[str, str, int]] = field(default_factory=list)  # code, label, count


def school_overview(user: User) -> list[SchoolOverview]:
    """Students per school and grade, and households per school, for the schools the
    user may see. Three queries, whatever the district's size."""
    schools = {s.pk: SchoolOverview(school=s) for s in schools_visible_to(user)}
    if not schools:
        return []
    grade_counts = (
        Student.objects.filter(school_id__in=schools, enabled=True)
        .values_list("school_id", "grade")
        .annotate(n=Count("id"))
        .order_by()
    )
    for school_id, grade, count in grade_counts:
        overview = schools[school_id]
        overview.students += count
        overview.by_grade.append((grade, str(GRADE_LABELS.get(grade, grade)), count))
    household_counts = (
        HouseholdStudent.objects.filter(student__school_id__in=schools, student__enabled=True)
        .values_list("student__school_id")
        .annotate(n=Count("household_id", distinct=True))
        .order_by()
    )
    for school_id, count in household_counts:
        schools[school_id].households = count
    for overview in schools.values():
        overview.by_grade.sort(key=lambda item: grade_rank(item[0]))
    return sorted(schools.values(), key=lambda o: (grade_rank(o.school.low_grade), o.school.name))


def households_of_guardian(guardian: Guardian) -> list[Household]:
    """The guardian's households with everything their home page shows, in five
    queries however many children and contacts there are."""
    return list(
        Household.objects.filter(householdguardian__guardian=guardian)
        .prefetch_related(
            Prefetch(
                "householdstudent_set",
                queryset=HouseholdStudent.objects.select_related("student__school").order_by(
                    "student__birth_date", "student__given_name"
                ),
                to_attr="student_rows",
            ),
            Prefetch(
                "householdguardian_set",
                queryset=HouseholdGuardian.objects.select_related("guardian")
                .prefetch_related(
                    Prefetch(
                        "guardian__contact_points",
                        queryset=ContactPoint.objects.order_by("kind", "position"),
                    )
                )
                .order_by("guardian__given_name"),
                to_attr="guardian_rows",
            ),
            Prefetch("emergency_contacts", queryset=EmergencyContact.objects.order_by("priority")),
        )
        .order_by("sourced_id")
    )


def links_of_guardian(guardian: Guardian) -> dict[int, StudentGuardian]:
    """The guardian's relationship to each of their children, by student id."""
    return {link.student_id: link for link in StudentGuardian.objects.filter(guardian=guardian)}


def households_of_student(student: Student) -> list[Household]:
    """A student's households with their guardians' contacts, primary first."""
    return list(
        Household.objects.filter(householdstudent__student=student)
        .prefetch_related(
            Prefetch(
                "householdguardian_set",
                queryset=HouseholdGuardian.objects.select_related("guardian")
                .prefetch_related(
                    Prefetch(
                        "guardian__contact_points",
                        queryset=ContactPoint.objects.order_by("kind", "position"),
                    )
                )
                .order_by("guardian__given_name"),
                to_attr="guardian_rows",
            ),
            Prefetch("emergency_contacts", queryset=EmergencyContact.objects.order_by("priority")),
        )
        .order_by("-householdstudent__is_primary", "sourced_id")
    )


def email_on_file(guardian: Guardian) -> str:
    """The guardian's email address from the roster, else the first one they gave."""
    points = ContactPoint.objects.filter(guardian=guardian, kind=ContactPoint.Kind.EMAIL)
    point = points.order_by("-roster_field", "position", "pk").first()
    return point.email if point is not None else ""


def guardians_visible_to(user: User) -> QuerySet[Guardian]:
    """Guardians of the households the user may see."""
    if user.is_superuser:
        return Guardian.objects.all()
    profile = staff_profile_for(user)
    if profile is not None and profile.role == StaffProfile.Role.REGISTRAR:
        return Guardian.objects.all()
    return Guardian.objects.filter(
        pk__in=HouseholdGuardian.objects.filter(household__in=households_visible_to(user)).values(
            "guardian_id"
        )
    )


# Guardians found by one email address at most: a household's shared address, not
# hundreds.
EMAIL_MATCHES_MAX = 100


def guardian_search(queryset: QuerySet[Guardian], query: str) -> QuerySet[Guardian]:
    """Guardians of ``queryset`` whose names hold every word of ``query``, or whose id
    or email it is, by name. A union of querysets: only slicing, ordering and counting
    apply to it (prefetch on the page's rows)."""
    query = query.strip()
    # No record holds a NUL, and PostgreSQL refuses one even in a comparison.
    if not query or "\x00" in query:
        return queryset.none()
    # Three searches, each on its own index (on PostgreSQL, trigram indexes on the
    # names and one on the upper-cased email: registration migration 0006), joined
    # with UNION; one OR across the contact points' join would read every guardian.
    # Each part reads whole rows: matching ids joined back to the guardians made
    # PostgreSQL read all of them to find a surname's thousands (113 ms of the page's
    # 160 at a million students).
    by_id = queryset.filter(sourced_id=query)
    # The LIMIT keeps the email search a subquery of its own, read by its index: as a
    # semi-join, PostgreSQL may instead probe each guardian's contact points.
    by_email = queryset.filter(
        pk__in=ContactPoint.objects.filter(email__iexact=query)
        .order_by()
        .values("guardian_id")[:EMAIL_MATCHES_MAX]
    )
    by_name = queryset
    for word in query.split():
        by_name = by_name.filter(Q(given_name__icontains=word) | Q(family_name__icontains=word))
    return (
        by_id.order_by()
        .union(by_email.order_by(), by_name.order_by())
        .order_by("family_name", "given_name", "pk")
    )


@dataclass(frozen=True)
class SchoolName:
    """A school as lists of every school show it: plain values, as a district has a
    thousand schools and a model instance each cost more than the rest of the page."""

    pk: int
    name: str
    low_grade: str


@dataclass
class ActivationRate:
    school: SchoolName
    guardians: int = 0
    guardians_activated: int = 0
    households: int = 0
    households_activated: int = 0

    @property
    def guardian_rate(self) -> float:
        return self.guardians_activated / self.guardians if self.guardians else 0.0

    @property
    def household_rate(self) -> float:
        return self.households_activated / self.households if self.households else 0.0


def activation_count() -> dict[str, Any]:
    """What the activation page shows, for the whole district: per school id,
    guardians, guardians with an account, households and households with an account
    (three grouped queries whatever the number of schools); and how many guardians
    are due a new code by email. Kept as the ``activation`` summary
    (``workflow.summaries``): it reads every link of the district."""
    from registration.services import activation_resend_candidates

    schools: dict[str, list[int]] = {}

    def row(school_id: int) -> list[int]:
        return schools.setdefault(str(school_id), [0, 0, 0, 0])

    links = StudentGuardian.objects.filter(student__enabled=True)
    for school_id, total, activated in (
        links.values_list("student__school_id")
        .annotate(
            total=Count("guardian_id", distinct=True),
            activated=Count("guardian_id", filter=Q(guardian__user__isnull=False), distinct=True),
        )
        .order_by()
    ):
        row(school_id)[0:2] = [total, activated]
    members = HouseholdStudent.objects.filter(student__enabled=True)
    for school_id, total in (
        members.values_list("student__school_id")
        .annotate(total=Count("household_id", distinct=True))
        .order_by()
    ):
        row(school_id)[2] = total
    activated_households = HouseholdGuardian.objects.filter(guardian__user__isnull=False).values(
        "household_id"
    )
    for school_id, total in (
        members.filter(household_id__in=activated_households)
        .values_list("student__school_id")
        .annotate(total=Count("household_id", distinct=True))
        .order_by()
    ):
        row(school_id)[3] = total
    return {"schools": schools, "due": activation_resend_candidates().count()}


def activation_rates(user: User, counted: dict[str, Any]) -> list[ActivationRate]:
    """Per school the user may see, the rates ``activation_count`` counted."""
    rates = []
    for row in schools_visible_to(user).values_list("pk", "name", "low_grade"):
        school = SchoolName(*row)
        guardians, activated, households, households_activated = counted["schools"].get(
            str(school.pk), [0, 0, 0, 0]
        )
        rates.append(
            ActivationRate(
                school=school,
                guardians=guardians,
                guardians_activated=activated,
                households=households,
                households_activated=households_activated,
            )
        )
    return sorted(rates, key=lambda r: (grade_rank(r.school.low_grade), r.school.name))
