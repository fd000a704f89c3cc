"""The district's records: schools, school years, classes, households, guardians,
students and what the district holds about how to reach them.

Records that come from the student information system carry the roster's
``sourced_id``; the roster importer upserts by it. Every record a guardian can
change keeps its history (django-simple-history).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition
from phonenumber_field.modelfields import PhoneNumberField
from simple_history.models import HistoricalRecords

from config.encryption import EncryptedTextField
from registration.grades import GRADE_CHOICES

SOURCED_ID_LENGTH = 255


class User(AbstractUser):
    """A person who signs in: a guardian, a secondary student or a member of staff.

    Sign-in is by email (django-allauth); ``username`` is an internal handle.
    """

    class Meta:
        db_table = "registration_user"


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class PostalAddress(models.Model):
    street1 = models.CharField(_("street address"), max_length=200, blank=True)
    street2 = models.CharField(_("apartment, suite, unit"), max_length=200, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    state = models.CharField(_("state"), max_length=2, blank=True)
    postal_code = models.CharField(_("ZIP code"), max_length=10, blank=True)

    class Meta:
        abstract = True

    @property
    def address_lines(self) -> list[str]:
        city_line = " ".join(
            part
            for part in (f"{self.city}," if self.city else "", self.state, self.postal_code)
            if part
        )
        return [line for line in (self.street1, self.street2, city_line) if line]


class District(TimeStamped):
    sourced_id = models.CharField(max_length=SOURCED_ID_LENGTH, unique=True)
    name = models.CharField(max_length=200)
    identifier = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class School(TimeStamped, PostalAddress):
    sourced_id = models.CharField(max_length=SOURCED_ID_LENGTH, unique=True)
    district = models.ForeignKey(
        District, on_delete=models.PROTECT, related_name="schools", null=True, blank=True
    )
    name = models.CharField(max_length=200)
    identifier = models.CharField(_("school code"), max_length=100, blank=True)
    low_grade = models.CharField(max_length=5, choices=GRADE_CHOICES, blank=True)
    high_grade = models.CharField(max_length=5, choices=GRADE_CHOICES, blank=True)
    phone = PhoneNumberField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AcademicSession(TimeStamped):
    """A school year, or a term, semester or grading period inside one."""

    class SessionType(models.TextChoices):
        SCHOOL_YEAR = "schoolYear", _("School year")
        SEMESTER = "semester", _("Semester")
        TERM = "term", _("Term")
        GRADING_PERIOD = "gradingPeriod", _("Grading period")

    sourced_id = models.CharField(max_length=SOURCED_ID_LENGTH, unique=True)
    title = models.CharField(max_length=200)
    session_type = models.CharField(max_length=20, choices=SessionType.choices)
    start_date = models.DateField()
    end_date = models.DateField()
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, related_name="children", null=True, blank=True
    )
    school_year = models.PositiveSmallIntegerField(
        help_text=_("The calendar year in which the school year ends, e.g. 2027 for 2026–27.")
    )

    class Meta:
        ordering = ["start_date", "session_type", "title"]
        indexes = [models.Index(fields=["session_type", "start_date"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__gte=models.F("start_date")),
                name="session_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def label(self) -> str:
        return f"{self.school_year - 1}–{str(self.school_year)[-2:]}"


class Course(TimeStamped):
    sourced_id = models.CharField(max_length=SOURCED_ID_LENGTH, unique=True)
    title = models.CharField(max_length=200)
    course_code = models.CharField(max_length=100, blank=True)
    grades = models.CharField(max_length=100, blank=True, help_text=_("Comma-separated."))
    subjects = models.CharField(max_length=200, blank=True)
    school_year = models.ForeignKey(
        AcademicSession, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    school = models.ForeignKey(
        School, on_delete=models.PROTECT, null=True, blank=True, related_name="courses"
    )
    district = models.ForeignKey(
        District, on_delete=models.PROTECT, null=True, blank=True, related_name="courses"
    )

    class Meta:
        ordering = ["title"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(school__isnull=False) & Q(district__isnull=True))
                | (Q(school__isnull=True) & Q(district__isnull=False)),
                name="course_belongs_to_school_or_district",
            )
        ]

    def __str__(self) -> str:
        return self.title


class ClassSection(TimeStamped):
    """A class: one section of a course, taught by its teachers."""

    class ClassType(models.TextChoices):
        HOMEROOM = "homeroom", _("Homeroom")
        SCHEDULED = "scheduled", _("Scheduled")

    sourced_id = models.CharField(max_length=SOURCED_ID_LENGTH, unique=True)
    title = models.CharField(max_length=200)
    class_code = models.CharField(max_length=100, blank=True)
    class_type = models.CharField(max_length=20, choices=ClassType.choices)
    location = models.CharField(max_length=100, blank=True)
    grades = models.CharField(max_length=100, blank=True, help_text=_("Comma-separated."))
    subjects = models.CharField(max_length=200, blank=True)
    periods = models.CharField(max_length=100, blank=True)
    course = models.ForeignKey(Course, on_delete=models.PROTECT, related_name="sections")
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="sections")
    terms = models.ManyToManyField(AcademicSession, related_name="sections")

    class Meta:
        ordering = ["title"]
        verbose_name = _("class")
        verbose_name_plural = _("classes")

    def __str__(self) -> str:
        return self.title


class StaffProfile(TimeStamped):
    """A member of staff and what they may see.

    Teachers and school administrators come from the roster (``sourced_id``);
    registrars and finance staff are created by the district. ``user`` is set once
    the person can sign in.
    """

    class Role(models.TextChoices):
        OFFICE = "office", _("School office staff")
        REGISTRAR = "registrar", _("District registrar")
        FINANCE = "finance", _("Finance")
        TEACHER = "teacher", _("Teacher")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="staff_profile",
    )
    role = models.CharField(max_length=20, choices=Role.choices)
    schools = models.ManyToManyField(School, blank=True, related_name="staff")
    sourced_id = models.CharField(max_length=SOURCED_ID_LENGTH, unique=True, null=True, blank=True)
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    email = models.EmailField(blank=True)
    identifier = models.CharField(max_length=100, blank=True)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["family_name", "given_name"]

    def __str__(self) -> str:
        return f"{self.given_name} {self.family_name}"


class TeachingAssignment(TimeStamped):
    sourced_id = models.CharField(max_length=SOURCED_ID_LENGTH, unique=True)
    section = models.ForeignKey(ClassSection, on_delete=models.CASCADE, related_name="teaching")
    teacher = models.ForeignKey(StaffProfile, on_delete=models.CASCADE, related_name="teaching")
    is_primary = models.BooleanField(default=False)
    begin_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["section", "teacher"], name="one_assignment_per_teacher"
            )
        ]

    def __str__(self) -> str:
        return f"{self.teacher} teaches {self.section}"


class Household(TimeStamped, PostalAddress):
    """The people who live at one address. A child may belong to two households."""

    sourced_id = models.CharField(max_length=SOURCED_ID_LENGTH, unique=True)
    phone = PhoneNumberField(_("home phone"), blank=True)
    language = models.CharField(
        _("language"),
        max_length=8,
        default="en",
        help_text=_("ISO 639-1 code of the language the household reads."),
    )
    guardians: models.ManyToManyField[Guardian, HouseholdGuardian] = models.ManyToManyField(
        "Guardian", through="HouseholdGuardian", related_name="households"
    )
    students: models.ManyToManyField[Student, HouseholdStudent] = models.ManyToManyField(
        "Student", through="HouseholdStudent", related_name="households"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["sourced_id"]
        indexes = [models.Index(fields=["postal_code"])]

    def __str__(self) -> str:
        return self.street1 or self.sourced_id


class Person(TimeStamped):
    given_name = models.CharField(_("first name"), max_length=100)
    middle_name = models.CharField(_("middle name"), max_length=100, blank=True)
    family_name = models.CharField(_("last name"), max_length=100)
    enabled = models.BooleanField(default=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


class Guardian(Person):
    """A parent or guardian as the district knows them; an account once activated."""

    class RosterRole(models.TextChoices):
        GUARDIAN = "guardian", _("Guardian")
        PARENT = "parent", _("Parent")
        RELATIVE = "relative", _("Relative")

    sourced_id = models.CharField(max_length=SOURCED_ID_LENGTH, unique=True)
    roster_role = models.CharField(
        max_length=20, choices=RosterRole.choices, default=RosterRole.GUARDIAN
    )
    identifier = models.CharField(max_length=100, blank=True)
    language = models.CharField(
        _("language"),
        max_length=8,
        blank=True,
        help_text=_("The language chosen at activation; blank means the household's."),
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="guardian",
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["family_name", "given_name"]
        indexes = [models.Index(fields=["family_name", "given_name"])]


# A child's eligibility for free or reduced-price school meals (blank: not eligible).
MEAL_ELIGIBILITY_CHOICES = [("free", _("Free meals")), ("reduced", _("Reduced-price meals"))]


class Student(Person):
    sourced_id = models.CharField(max_length=SOURCED_ID_LENGTH, unique=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    grade = models.CharField(_("grade"), max_length=5, choices=GRADE_CHOICES)
    school = models.ForeignKey(School, on_delete=models.PROTECT, related_name="students")
    state_id = models.CharField(_("state student id"), max_length=50, blank=True)
    meal_eligibility = models.CharField(
        _("free or reduced-price meals"),
        max_length=8,
        choices=MEAL_ELIGIBILITY_CHOICES,
        blank=True,
        help_text=_("Eligible children have the fees that allow it waived automatically."),
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="student",
    )
    guardians: models.ManyToManyField[Guardian, StudentGuardian] = models.ManyToManyField(
        Guardian, through="StudentGuardian", related_name="students"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["family_name", "given_name"]
        indexes = [
            models.Index(fields=["school", "grade"]),
            models.Index(fields=["family_name", "given_name"]),
            # Finance's count of children with free or reduced-price meals reads only
            # them, not every student of the district.
            models.Index(
                fields=["meal_eligibility"],
                condition=Q(enabled=True) & ~Q(meal_eligibility=""),
                name="student_meal_eligible",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["state_id"], condition=~Q(state_id=""), name="unique_state_id"
            )
        ]


class ClassEnrollment(TimeStamped):
    sourced_id = models.CharField(max_length=SOURCED_ID_LENGTH, unique=True)
    section = models.ForeignKey(ClassSection, on_delete=models.CASCADE, related_name="enrollments")
    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="enrollments")
    begin_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["section", "student"], name="one_enrollment_per_class")
        ]

    def __str__(self) -> str:
        return f"{self.student} in {self.section}"


class HouseholdGuardian(models.Model):
    household = models.ForeignKey(Household, on_delete=models.CASCADE)
    guardian = models.ForeignKey(Guardian, on_delete=models.CASCADE)

    class Meta:
        verbose_name = _("household guardian")
        constraints = [
            models.UniqueConstraint(fields=["household", "guardian"], name="one_guardian_row")
        ]

    def __str__(self) -> str:
        return f"{self.guardian} in {self.household}"


class HouseholdStudent(models.Model):
    household = models.ForeignKey(Household, on_delete=models.CASCADE)
    student = models.ForeignKey(Student, on_delete=models.CASCADE)
    is_primary = models.BooleanField(
        _("primary household"),
        default=True,
        help_text=_("The household the student mainly lives in; exactly one per student."),
    )

    class Meta:
        verbose_name = _("household student")
        constraints = [
            models.UniqueConstraint(fields=["household", "student"], name="one_student_row"),
            models.UniqueConstraint(
                fields=["student"], condition=Q(is_primary=True), name="one_primary_household"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student} in {self.household}"


class StudentGuardian(models.Model):
    """How one guardian stands to one child: relationship, education rights, and what
    the school must know of custody.

    The custody note (a court order, who may not pick the child up) is written by
    registrars and office staff from the papers a family brings in, encrypted at rest
    like the health notes, and shown only to them; the relationship and the education
    rights come from the roster and decide who may register the child."""

    class Relationship(models.TextChoices):
        MOTHER = "mother", _("Mother")
        FATHER = "father", _("Father")
        GUARDIAN = "guardian", _("Legal guardian")
        GRANDPARENT = "grandparent", _("Grandparent")
        OTHER = "other", _("Other")

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="guardian_links")
    guardian = models.ForeignKey(Guardian, on_delete=models.CASCADE, related_name="student_links")
    relationship = models.CharField(
        max_length=20, choices=Relationship.choices, default=Relationship.GUARDIAN
    )
    has_education_rights = models.BooleanField(
        _("holds education rights"),
        default=True,
        help_text=_("May make educational decisions for the child and sign for them."),
    )
    # Empty (NULL) until staff first write one: an import of a million links does not
    # encrypt a million empty notes. Once written, even cleared, it is a token.
    custody_note = EncryptedTextField(
        _("custody note"),
        blank=True,
        null=True,
        help_text=_(
            "Court orders and custody arrangements the school must know, such as who "
            "may not pick the child up."
        ),
    )

    class Meta:
        verbose_name = _("guardian of a student")
        constraints = [
            models.UniqueConstraint(fields=["student", "guardian"], name="one_link_per_pair")
        ]

    def __str__(self) -> str:
        return f"{self.guardian} ({self.get_relationship_display()}) of {self.student}"


class ContactPoint(TimeStamped):
    """One phone number or email address of a guardian."""

    class Kind(models.TextChoices):
        PHONE = "phone", _("Phone")
        EMAIL = "email", _("Email")

    class Label(models.TextChoices):
        MOBILE = "mobile", _("Mobile")
        HOME = "home", _("Home")
        WORK = "work", _("Work")
        PERSONAL = "personal", _("Personal")
        OTHER = "other", _("Other")

    class RosterField(models.TextChoices):
        """The users.csv column a contact point is read from and written back to."""

        NONE = "", _("Not from the roster")
        EMAIL = "email", "email"
        PHONE = "phone", "phone"
        SMS = "sms", "sms"

    guardian = models.ForeignKey(Guardian, on_delete=models.CASCADE, related_name="contact_points")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    label = models.CharField(max_length=10, choices=Label.choices, default=Label.OTHER)
    phone = PhoneNumberField(blank=True)
    email = models.EmailField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    roster_field = models.CharField(
        max_length=5, choices=RosterField.choices, default=RosterField.NONE, blank=True
    )
    bounced_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When mail to this address last bounced.")
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["guardian", "kind", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["guardian", "roster_field"],
                condition=~Q(roster_field=""),
                name="one_contact_per_roster_field",
            ),
            models.CheckConstraint(
                condition=(Q(kind="phone") & ~Q(phone="") & Q(email=""))
                | (Q(kind="email") & ~Q(email="") & Q(phone="")),
                name="contact_point_has_its_value",
            ),
        ]

    def __str__(self) -> str:
        return str(self.phone) if self.kind == self.Kind.PHONE else self.email


class ContactPreference(TimeStamped):
    """Which channels a guardian wants for each kind of message.

    Emergency messages always reach at least one channel; the non-emergency
    opt-out silences attendance and general messages.
    """

    guardian = models.OneToOneField(
        Guardian, on_delete=models.CASCADE, related_name="contact_preference"
    )
    emergency_voice = models.BooleanField(default=True)
    emergency_sms = models.BooleanField(default=True)
    emergency_email = models.BooleanField(default=True)
    attendance_voice = models.BooleanField(default=True)
    attendance_sms = models.BooleanField(default=False)
    attendance_email = models.BooleanField(default=True)
    general_voice = models.BooleanField(default=False)
    general_sms = models.BooleanField(default=False)
    general_email = models.BooleanField(default=True)
    non_emergency_opt_out = models.BooleanField(_("no non-emergency messages"), default=False)
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(emergency_voice=True) | Q(emergency_sms=True) | Q(emergency_email=True),
                name="emergency_reaches_a_channel",
            )
        ]

    def __str__(self) -> str:
        return f"Contact preferences of {self.guardian}"


class EmergencyContact(TimeStamped):
    """Someone other than the guardians the school calls, in order of priority."""

    household = models.ForeignKey(
        Household, on_delete=models.CASCADE, related_name="emergency_contacts"
    )
    priority = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=200)
    relationship = models.CharField(max_length=100, blank=True)
    phone = PhoneNumberField()
    history = HistoricalRecords()

    class Meta:
        ordering = ["household", "priority"]
        constraints = [
            models.UniqueConstraint(
                fields=["household", "priority"], name="one_contact_per_priority"
            )
        ]

    def __str__(self) -> str:
        return self.name


class StudentHealth(TimeStamped):
    """What the school nurse needs to know. Never shown to finance staff.

    The notes are encrypted at rest, in the history table too: nothing may filter,
    search or order by them in the database."""

    student = models.OneToOneField(Student, on_delete=models.CASCADE, related_name="health")
    allergies = EncryptedTextField(blank=True)
    medications = EncryptedTextField(blank=True)
    conditions = EncryptedTextField(_("medical conditions"), blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("student health summary")
        verbose_name_plural = _("student health summaries")

    def __str__(self) -> str:
        return f"Health summary of {self.student}"


class Consent(TimeStamped):
    """A permission a guardian gives or withholds for one child."""

    class Kind(models.TextChoices):
        DIRECTORY = "directory", _("Directory information may be shared")
        MEDIA = "media", _("Photos and video may be published")
        INTERNET = "internet", _("Internet and school accounts")
        LOCAL_TRIPS = "local_trips", _("Walking trips near school")
        EMERGENCY_CARE = "emergency_care", _("Emergency medical treatment")

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="consents")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    granted = models.BooleanField()
    guardian = models.ForeignKey(
        Guardian,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Who gave or withheld it."),
    )
    history = HistoricalRecords()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["student", "kind"], name="one_consent_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.granted} for {self.student}"


def _before_expiry(code: models.Model) -> bool:
    return getattr(code, "expires_at") > timezone.now()  # noqa: B009 - typed as any model


def _after_expiry(code: models.Model) -> bool:
    return getattr(code, "expires_at") <= timezone.now()  # noqa: B009 - typed as any model


class ActivationCode(ConcurrentTransitionMixin, TimeStamped):
    """A personal code that opens one guardian's or one secondary student's account.

    Only hashes are stored (see ``registration.activation``). A person has at most
    one issued code: issuing a new one revokes the old. State changes go through
    ``workflow.services``.
    """

    class State(models.TextChoices):
        ISSUED = "issued", _("Issued")
        REDEEMED = "redeemed", _("Redeemed")
        EXPIRED = "expired", _("Expired")
        REVOKED = "revoked", _("Revoked")

    class Channel(models.TextChoices):
        LETTER = "letter", _("Mailed letter")
        EMAIL = "email", _("Email")

    guardian = models.ForeignKey(
        Guardian, on_delete=models.CASCADE, null=True, blank=True, related_name="codes"
    )
    student = models.ForeignKey(
        Student, on_delete=models.CASCADE, null=True, blank=True, related_name="codes"
    )
    lookup = models.CharField(max_length=64, unique=True)
    salt = models.CharField(max_length=32)
    code_hash = models.CharField(max_length=64)
    state = FSMField(default=State.ISSUED, choices=State.choices, protected=True)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    expires_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True, blank=True)
    locked_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("Set after repeated failures; the code refuses until then."),
    )
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(guardian__isnull=False, student__isnull=True)
                | Q(guardian__isnull=True, student__isnull=False),
                name="code_for_one_person",
            ),
            models.UniqueConstraint(
                fields=["guardian"],
                condition=Q(state="issued"),
                name="one_issued_code_per_guardian",
            ),
            models.UniqueConstraint(
                fields=["student"], condition=Q(state="issued"), name="one_issued_code_per_student"
            ),
        ]
        indexes = [models.Index(fields=["state", "expires_at"])]

    def __str__(self) -> str:
        return f"Activation code for {self.guardian or self.student} ({self.state})"

    @property
    def person(self) -> Guardian | Student:
        return self.guardian or self.student  # type: ignore[return-value]

    def is_usable(self) -> bool:
        return self.state == self.State.ISSUED and self.expires_at > timezone.now()

    @transition(
        field=state,
        source=State.ISSUED,
        target=State.REDEEMED,
        conditions=[_before_expiry],
    )
    def redeem(self) -> None:
        self.redeemed_at = timezone.now()

    @transition(field=state, source=State.ISSUED, target=State.REVOKED)
    def revoke(self) -> None:
        pass

    @transition(
        field=state,
        source=State.ISSUED,
        target=State.EXPIRED,
        conditions=[_after_expiry],
    )
    def expire(self) -> None:
        pass


class ActivationAttempt(models.Model):
    """One try at /activate/. Never holds the code that was typed."""

    class Outcome(models.TextChoices):
        SUCCEEDED = "succeeded", _("Succeeded")
        UNKNOWN_CODE = "unknown_code", _("No such code")
        NOT_USABLE = "not_usable", _("Code used, revoked or expired")
        WRONG_FACT = "wrong_fact", _("Wrong birth date")
        LOCKED = "locked", _("Code locked after failures")
        THROTTLED = "throttled", _("Too many tries from this address")

    created_at = models.DateTimeField(auto_now_add=True)
    code = models.ForeignKey(
        ActivationCode, on_delete=models.CASCADE, null=True, blank=True, related_name="attempts"
    )
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["code", "created_at"])]

    def __str__(self) -> str:
        return f"{self.outcome} at {self.created_at:%Y-%m-%d %H:%M}"


class ActivationEmail(models.Model):
    """One email that carried a fresh code to a guardian (lost letters, re-sends)."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    guardian = models.ForeignKey(Guardian, on_delete=models.CASCADE, related_name="code_emails")
    email = models.EmailField()
    code = models.ForeignKey(ActivationCode, on_delete=models.SET_NULL, null=True, blank=True)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    reason = models.CharField(max_length=20)

    class Meta:
        indexes = [models.Index(fields=["guardian", "created_at"])]

    def __str__(self) -> str:
        return f"Code emailed to {self.email} on {self.created_at:%Y-%m-%d}"
