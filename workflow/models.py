"""The audit log: who read or changed which record, when and from where."""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition

from config.encryption import EncryptedJSONField
from config.languages import text_in
from config.storage import private_storage_get
from registration.grades import GRADE_CHOICES


class AuditEvent(models.Model):
    """One staff read of a record, one change, or one bulk operation.

    Rows are only ever added. ``object_type`` is the model label
    (``registration.student``) so that the log survives the record's deletion.
    """

    class Action(models.TextChoices):
        VIEW = "view", _("Viewed")
        LIST = "list", _("Listed")
        CREATE = "create", _("Created")
        CHANGE = "change", _("Changed")
        DELETE = "delete", _("Deleted")
        IMPORT = "import", _("Imported")
        EXPORT = "export", _("Exported")

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    actor_label = models.CharField(
        max_length=150, blank=True, help_text=_("Who acted when no user did (a command).")
    )
    action = models.CharField(max_length=10, choices=Action.choices)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"]),
            models.Index(fields=["actor", "created_at"]),
        ]

    def __str__(self) -> str:
        who = self.actor or self.actor_label or "system"
        return f"{who} {self.action} {self.object_type} {self.object_id}"


class TransitionLog(models.Model):
    """One state change of one record: who, when, from, to, and why.

    Written by ``workflow.services`` in the transaction that changes the state.
    """

    created_at = models.DateTimeField(auto_now_add=True)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    transition = models.CharField(max_length=50)
    source = models.CharField(max_length=30)
    target = models.CharField(max_length=30)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="transitions",
    )
    actor_label = models.CharField(max_length=150, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["object_type", "object_id", "created_at"])]

    def __str__(self) -> str:
        return f"{self.object_type} {self.object_id}: {self.source} → {self.target}"


# -- campaigns -----------------------------------------------------------------------


class Campaign(models.Model):
    """One year's re-registration: when it runs and what families must do.

    Opening it (``workflow.services.campaign_open``) creates a registration per
    household with an active student and an enrollment decision per student.
    """

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    school_year = models.OneToOneField(
        "registration.AcademicSession",
        on_delete=models.PROTECT,
        related_name="campaign",
        verbose_name=_("school year"),
        help_text=_("The school year families register for."),
    )
    opens_on = models.DateField(_("opens on"))
    closes_on = models.DateField(_("closes on"))
    fees_before_submit = models.BooleanField(
        _("fees must be paid before submitting"),
        default=False,
        help_text=_("Required fees must be paid or waived before a family can submit."),
    )
    approve_with_open_address_request = models.BooleanField(
        _("approve with an open address change"),
        default=False,
        help_text=_("Allow approval while the household's address change still awaits its visit."),
    )
    opened_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When registrations were created.")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-opens_on"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(closes_on__gte=models.F("opens_on")),
                name="campaign_closes_after_opening",
            )
        ]

    def __str__(self) -> str:
        return str(_("Registration for %(year)s") % {"year": self.school_year.label})

    def is_running(self, today: datetime.date | None = None) -> bool:
        today = today or timezone.localdate()
        return self.opened_at is not None and self.opens_on <= today <= self.closes_on


class Acknowledgement(models.Model):
    """One version of a document families must read and accept (a handbook, a
    technology use policy). Editing a document adds a version; signatures keep
    pointing at the version that was signed."""

    created_at = models.DateTimeField(auto_now_add=True)
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="acknowledgements"
    )
    key = models.SlugField(
        _("short name"), max_length=50, help_text=_("Stays the same across versions.")
    )
    version = models.PositiveIntegerField(default=1)
    is_current = models.BooleanField(default=True)
    required = models.BooleanField(_("required"), default=True)
    position = models.PositiveSmallIntegerField(_("order"), default=0)
    title_en = models.CharField(_("title (English)"), max_length=200)
    body_en = models.TextField(_("text (English)"))
    title_es = models.CharField(_("title (Spanish)"), max_length=200)
    body_es = models.TextField(_("text (Spanish)"))
    # Blank only on documents written before the product spoke Chinese: they are shown
    # in English until edited (the form asks for every language).
    title_zh = models.CharField(_("title (Simplified Chinese)"), max_length=200, blank=True)
    body_zh = models.TextField(_("text (Simplified Chinese)"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["campaign", "position", "key", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "key", "version"], name="one_row_per_version"
            ),
            models.UniqueConstraint(
                fields=["campaign", "key"],
                condition=models.Q(is_current=True),
                name="one_current_version",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title_en} (v{self.version})"

    def title_in(self, language: str) -> str:
        return text_in(self, "title", language, english=self.title_en)

    def body_in(self, language: str) -> str:
        return text_in(self, "body", language, english=self.body_en)


# -- registrations -------------------------------------------------------------------


def registration_children_decided(registration: Any) -> bool:
    """Every child this household decides for (its primary children) is decided."""
    return not registration.decisions.filter(state=EnrollmentDecision.State.PENDING).exists()


def registration_acknowledgements_signed(registration: Any) -> bool:
    """Every current required acknowledgement of the campaign is accepted."""
    return not (
        Acknowledgement.objects.filter(
            campaign_id=registration.campaign_id, is_current=True, required=True
        )
        .exclude(pk__in=registration.acceptances.values("acknowledgement_id"))
        .exists()
    )


def registration_address_settled(registration: Any) -> bool:
    """No address change waits for its visit, unless the campaign allows approval."""
    if registration.campaign.approve_with_open_address_request:
        return True
    return not AddressChangeRequest.objects.filter(
        household_id=registration.household_id, state__in=AddressChangeRequest.OPEN_STATES
    ).exists()


class Registration(ConcurrentTransitionMixin, models.Model):
    """One household's re-registration in one campaign.

    Answers live in ``RegistrationStep`` drafts until staff approve; the household's
    records change then (its address only when staff verify it in person).
    """

    class State(models.TextChoices):
        NOT_STARTED = "not_started", _("Not started")
        IN_PROGRESS = "in_progress", _("In progress")
        SUBMITTED = "submitted", _("Submitted")
        RETURNED = "returned", _("Returned for changes")
        APPROVED = "approved", _("Approved")
        EXPORTED = "exported", _("Exported")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="registrations")
    household = models.ForeignKey(
        "registration.Household", on_delete=models.PROTECT, related_name="registrations"
    )
    state = FSMField(default=State.NOT_STARTED, choices=State.choices, protected=True)
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    return_comment = models.TextField(
        blank=True, help_text=_("What staff asked the family to correct.")
    )
    return_step = models.CharField(max_length=40, blank=True)
    versions = models.PositiveIntegerField(
        default=0, help_text=_("How many times it was submitted: the last submission's version.")
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "household"], name="one_per_household")
        ]
        indexes = [
            models.Index(fields=["campaign", "state"]),
            # The review queue, oldest submission first: read in order, 50 at a time,
            # not sorted from the 125,000 submitted of a million-student district.
            models.Index(
                fields=["campaign", "state", "submitted_at", "id"], name="registration_review_order"
            ),
        ]

    def __str__(self) -> str:
        return f"Registration of {self.household} for {self.campaign.school_year.label}"

    @property
    def is_editable(self) -> bool:
        return self.state in (
            self.State.NOT_STARTED,
            self.State.IN_PROGRESS,
            self.State.RETURNED,
        )

    @transition(field=state, source=State.NOT_STARTED, target=State.IN_PROGRESS)
    def start(self) -> None:
        self.started_at = timezone.now()

    @transition(
        field=state,
        source=State.IN_PROGRESS,
        target=State.SUBMITTED,
        conditions=[registration_children_decided, registration_acknowledgements_signed],
    )
    def submit(self) -> None:
        self.submitted_at = timezone.now()
        self.versions += 1

    @transition(field=state, source=State.SUBMITTED, target=State.RETURNED)
    def return_for_changes(self) -> None:
        pass

    @transition(field=state, source=State.RETURNED, target=State.IN_PROGRESS)
    def reopen(self) -> None:
        pass

    @transition(
        field=state,
        source=State.SUBMITTED,
        target=State.APPROVED,
        conditions=[registration_address_settled],
    )
    def approve(self) -> None:
        pass

    @transition(field=state, source=State.APPROVED, target=State.EXPORTED)
    def export(self) -> None:
        pass

    @transition(
        field=state,
        source=[State.NOT_STARTED, State.IN_PROGRESS, State.SUBMITTED, State.RETURNED],
        target=State.WITHDRAWN,
    )
    def withdraw(self) -> None:
        pass


class RegistrationStep(models.Model):
    """The saved answers of one wizard step: what the form was sent (to show it
    again exactly) and what it meant (to review, sign and apply). Both are encrypted
    at rest: a child's step holds health notes."""

    registration = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="steps")
    step = models.CharField(max_length=40)
    data = EncryptedJSONField(help_text=_("The submitted form fields, as lists of strings."))
    answers = EncryptedJSONField(help_text=_("The cleaned answers."))
    unchanged = models.BooleanField(default=False)
    saved_at = models.DateTimeField(auto_now=True)
    saved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["registration", "step"], name="one_draft_per_step")
        ]

    def __str__(self) -> str:
        return f"{self.step} of registration {self.registration_id}"


class Submission(models.Model):
    """One signed submission of a registration: the reviewed content and its signature.

    A resubmission after a return adds a version; nothing here is ever changed. The
    content (health notes included) is encrypted at rest.
    """

    created_at = models.DateTimeField(auto_now_add=True)
    registration = models.ForeignKey(
        Registration, on_delete=models.PROTECT, related_name="submissions"
    )
    version = models.PositiveIntegerField()
    guardian = models.ForeignKey(
        "registration.Guardian", on_delete=models.PROTECT, related_name="+"
    )
    signed_name = models.CharField(max_length=200)
    signed_at = models.DateTimeField()
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    language = models.CharField(max_length=8)
    content = EncryptedJSONField(help_text=_("Everything the guardian reviewed and signed."))
    content_sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["registration", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["registration", "version"], name="one_submission_per_version"
            )
        ]

    def __str__(self) -> str:
        return f"Submission {self.version} of registration {self.registration_id}"


class AcknowledgementAcceptance(models.Model):
    """A guardian accepted one version of an acknowledgement for a registration."""

    created_at = models.DateTimeField(auto_now_add=True)
    registration = models.ForeignKey(
        Registration, on_delete=models.CASCADE, related_name="acceptances"
    )
    acknowledgement = models.ForeignKey(
        Acknowledgement, on_delete=models.PROTECT, related_name="acceptances"
    )
    guardian = models.ForeignKey(
        "registration.Guardian", on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["registration", "acknowledgement"], name="one_acceptance_per_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.acknowledgement} accepted for registration {self.registration_id}"


class EnrollmentDecision(ConcurrentTransitionMixin, models.Model):
    """Whether a child returns next year (to which school and grade) or leaves.

    Decided by the child's primary household; confirmed when staff approve.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("Not decided yet")
        RETURNING = "returning", _("Returning")
        LEAVING = "leaving", _("Leaving")
        CONFIRMED = "confirmed", _("Confirmed")

    class LeavingReason(models.TextChoices):
        MOVING = "moving", _("Moving out of the district")
        PRIVATE = "private", _("Private or parochial school")
        CHARTER = "charter", _("Charter school")
        HOMESCHOOL = "homeschool", _("Home schooling")
        GRADUATING = "graduating", _("Graduating")
        OTHER = "other", _("Another reason")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="decisions")
    student = models.ForeignKey(
        "registration.Student", on_delete=models.PROTECT, related_name="decisions"
    )
    registration = models.ForeignKey(
        Registration,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="decisions",
        help_text=_("The registration of the child's primary household."),
    )
    state = FSMField(default=State.PENDING, choices=State.choices, protected=True)
    returning = models.BooleanField(null=True, blank=True)
    next_school = models.ForeignKey(
        "registration.School", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    next_grade = models.CharField(max_length=5, choices=GRADE_CHOICES, blank=True)
    leaving_reason = models.CharField(max_length=20, choices=LeavingReason.choices, blank=True)
    leaving_destination = models.CharField(max_length=200, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "student"], name="one_decision_per_child")
        ]
        indexes = [models.Index(fields=["campaign", "state"])]

    def __str__(self) -> str:
        return f"{self.student}: {self.state}"

    @transition(
        field=state,
        source=[State.PENDING, State.RETURNING, State.LEAVING],
        target=State.RETURNING,
    )
    def mark_returning(self, *, school: Any, grade: str) -> None:
        self.returning = True
        self.next_school = school
        self.next_grade = grade
        self.leaving_reason = ""
        self.leaving_destination = ""
        self.decided_at = timezone.now()

    @transition(
        field=state,
        source=[State.PENDING, State.RETURNING, State.LEAVING],
        target=State.LEAVING,
    )
    def mark_leaving(self, *, reason: str, destination: str) -> None:
        self.returning = False
        self.next_school = None
        self.next_grade = ""
        self.leaving_reason = reason
        self.leaving_destination = destination
        self.decided_at = timezone.now()

    @transition(field=state, source=[State.RETURNING, State.LEAVING], target=State.CONFIRMED)
    def confirm(self) -> None:
        self.confirmed_at = timezone.now()


# -- address changes -----------------------------------------------------------------


class AddressChangeRequest(ConcurrentTransitionMixin, models.Model):
    """A household's new address, waiting for staff to see proofs in person.

    The household's address changes only when the request is verified. The US state
    is ``state_code``: ``state`` is the request's own state.
    """

    class State(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        AWAITING_VISIT = "awaiting_visit", _("Awaiting visit")
        VERIFIED = "verified", _("Verified")
        REJECTED = "rejected", _("Rejected")
        CANCELLED = "cancelled", _("Cancelled")

    OPEN_STATES = (State.REQUESTED, State.AWAITING_VISIT)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    household = models.ForeignKey(
        "registration.Household", on_delete=models.PROTECT, related_name="address_requests"
    )
    registration = models.ForeignKey(
        Registration,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="address_requests",
    )
    requested_by = models.ForeignKey(
        "registration.Guardian", on_delete=models.PROTECT, related_name="+"
    )
    street1 = models.CharField(_("street address"), max_length=200)
    street2 = models.CharField(_("apartment, suite, unit"), max_length=200, blank=True)
    city = models.CharField(_("city"), max_length=100)
    state_code = models.CharField(_("state"), max_length=2)
    postal_code = models.CharField(_("ZIP code"), max_length=10)
    state = FSMField(default=State.REQUESTED, choices=State.choices, protected=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.TextField(blank=True, help_text=_("Why it was rejected or cancelled."))
    proofs_seen = models.JSONField(
        default=list, blank=True, help_text=_("The kinds of proof staff saw at the visit.")
    )
    visit_recorded_at = models.DateTimeField(null=True, blank=True)
    visit_recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["household"],
                condition=models.Q(state__in=["requested", "awaiting_visit"]),
                name="one_open_address_request",
            )
        ]
        indexes = [
            models.Index(fields=["state", "created_at"]),
            # The office queue, oldest first: read in order, 50 at a time, however
            # many changes are open (PostgreSQL sorted all 39,000 of a million-student
            # district's open changes for every page).
            models.Index(
                fields=["created_at", "id"],
                condition=models.Q(state__in=["requested", "awaiting_visit"]),
                name="address_open_oldest_first",
            ),
        ]

    def __str__(self) -> str:
        return f"Address change of {self.household} ({self.state})"

    @property
    def address_lines(self) -> list[str]:
        city_line = " ".join(p for p in (f"{self.city},", self.state_code, self.postal_code) if p)
        return [line for line in (self.street1, self.street2, city_line) if line]

    @transition(field=state, source=State.REQUESTED, target=State.AWAITING_VISIT)
    def await_visit(self) -> None:
        pass

    @transition(field=state, source=State.AWAITING_VISIT, target=State.VERIFIED)
    def verify(self, *, by: Any) -> None:
        self.decided_at = timezone.now()
        self.decided_by = by

    @transition(field=state, source=[State.REQUESTED, State.AWAITING_VISIT], target=State.REJECTED)
    def reject(self, *, by: Any, reason: str) -> None:
        self.decided_at = timezone.now()
        self.decided_by = by
        self.reason = reason

    @transition(field=state, source=[State.REQUESTED, State.AWAITING_VISIT], target=State.CANCELLED)
    def cancel(self, *, reason: str = "") -> None:
        self.decided_at = timezone.now()
        self.reason = reason


class AddressProof(models.Model):
    """One uploaded proof of residence (a lease, a utility bill)."""

    created_at = models.DateTimeField(auto_now_add=True)
    request = models.ForeignKey(
        AddressChangeRequest, on_delete=models.CASCADE, related_name="proofs"
    )
    file = models.FileField(storage=private_storage_get, upload_to="proofs/%Y/%m/")
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=50)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        ordering = ["request", "created_at", "id"]

    def __str__(self) -> str:
        return self.original_name


# The proofs of residence office staff accept, in the order they are listed.
PROOF_KINDS = [
    ("lease", _("Lease or rental agreement")),
    ("mortgage", _("Mortgage statement or deed")),
    ("utility", _("Utility bill (gas, electricity, water)")),
    ("property_tax", _("Property tax bill")),
    ("government_mail", _("Letter from a government agency")),
    ("pay_stub", _("Pay stub showing the address")),
    ("bank", _("Bank statement")),
    ("id_card", _("Driver's license or ID card showing the address")),
]


# -- visits for address verification ---------------------------------------------


class VisitSchedule(models.Model):
    """How a school's office takes address-verification visits."""

    school = models.OneToOneField(
        "registration.School", on_delete=models.CASCADE, related_name="visit_schedule"
    )
    slot_minutes = models.PositiveSmallIntegerField(_("minutes per visit"), default=15)
    capacity = models.PositiveSmallIntegerField(
        _("families per slot"), default=1, help_text=_("How many visits can share one slot.")
    )

    def __str__(self) -> str:
        return f"Visits at {self.school}"


class OfficeHours(models.Model):
    """A school office's opening hours for visits on one day of the week."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    school = models.ForeignKey(
        "registration.School", on_delete=models.CASCADE, related_name="office_hours"
    )
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens_at = models.TimeField()
    closes_at = models.TimeField()

    class Meta:
        ordering = ["school", "weekday", "opens_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(closes_at__gt=models.F("opens_at")),
                name="office_closes_after_opening",
            )
        ]

    def __str__(self) -> str:
        return f"{self.school} {self.get_weekday_display()} {self.opens_at}-{self.closes_at}"


class AddressVisit(models.Model):
    """A family's visit to a school office to show the originals of their proofs:
    a booked slot, or a walk-in (no time)."""

    created_at = models.DateTimeField(auto_now_add=True)
    request = models.ForeignKey(
        AddressChangeRequest, on_delete=models.CASCADE, related_name="visits"
    )
    school = models.ForeignKey("registration.School", on_delete=models.PROTECT, related_name="+")
    starts_at = models.DateTimeField(null=True, blank=True)
    walk_in = models.BooleanField(default=False)
    booked_by = models.ForeignKey(
        "registration.Guardian", on_delete=models.PROTECT, null=True, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["starts_at", "created_at"]
        indexes = [models.Index(fields=["school", "starts_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(walk_in=True, starts_at__isnull=True)
                | models.Q(walk_in=False, starts_at__isnull=False),
                name="visit_is_booked_or_walk_in",
            )
        ]

    def __str__(self) -> str:
        return f"Visit for {self.request} at {self.starts_at or 'walk-in'}"


# -- reminders and the export to the SIS --------------------------------------------


class Reminder(models.Model):
    """One reminder email to a household that has not finished its registration."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    registration = models.ForeignKey(
        Registration, on_delete=models.CASCADE, related_name="reminders"
    )
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    recipients = models.JSONField(default=list, help_text=_("The addresses written to."))
    language = models.CharField(max_length=8)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["registration", "created_at"])]

    def __str__(self) -> str:
        return f"Reminder to registration {self.registration_id} on {self.created_at:%Y-%m-%d}"


class SisExport(models.Model):
    """One export of approved changes to the student information system."""

    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True)
    changes = models.PositiveIntegerField(default=0)
    registrations = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"SIS export of {self.created_at:%Y-%m-%d %H:%M}"


class ChangeRecord(models.Model):
    """One field changed by an approved registration or a verified address: what the
    SIS must be told. Written in the transaction of the approval; exported once."""

    created_at = models.DateTimeField(auto_now_add=True)
    registration = models.ForeignKey(
        Registration, on_delete=models.PROTECT, null=True, blank=True, related_name="changes"
    )
    record_type = models.CharField(max_length=50, help_text=_("household, guardian, student…"))
    record_id = models.CharField(max_length=255, help_text=_("The roster's sourcedId."))
    field = models.CharField(max_length=100)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    approved_at = models.DateTimeField()
    export = models.ForeignKey(
        SisExport, on_delete=models.PROTECT, null=True, blank=True, related_name="change_rows"
    )

    class Meta:
        ordering = ["approved_at", "id"]
        indexes = [models.Index(fields=["export", "approved_at"])]

    def __str__(self) -> str:
        return f"{self.record_type} {self.record_id} {self.field}"


class DashboardCount(models.Model):
    """One row of the staff dashboard as last counted: a campaign's households by
    registration state, open address changes, guardians with an account and children
    with required fees unpaid, for a grade of a school, a school, or the district.

    Counting a large district takes seconds, so the dashboard reads these rows and
    ``workflow.dashboard.dashboard_count`` writes them again in the background when
    they are older than ``settings.DASHBOARD_MAX_AGE_SECONDS``.
    """

    class Level(models.IntegerChoices):
        GRADE = 0, _("Grade of a school")
        SCHOOL = 1, _("School")
        DISTRICT = 2, _("District")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    level = models.PositiveSmallIntegerField(choices=Level.choices)
    school = models.ForeignKey(
        "registration.School", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    grade = models.CharField(max_length=5, blank=True)
    counted_at = models.DateTimeField()
    households = models.PositiveIntegerField(default=0)
    not_started = models.PositiveIntegerField(default=0)
    in_progress = models.PositiveIntegerField(default=0)
    submitted = models.PositiveIntegerField(default=0)
    returned = models.PositiveIntegerField(default=0)
    approved = models.PositiveIntegerField(default=0)
    address_requests = models.PositiveIntegerField(default=0)
    guardians = models.PositiveIntegerField(default=0)
    guardians_activated = models.PositiveIntegerField(default=0)
    children_fees_unpaid = models.PositiveIntegerField(default=0)

    class Meta:
        # Rows are replaced all at once for a campaign, never one by one.
        indexes = [models.Index(fields=["campaign", "level", "school"])]

    def __str__(self) -> str:
        return f"Dashboard of campaign {self.campaign_id}: {self.school_id} {self.grade}"


class Summary(models.Model):
    """A district-wide summary as last counted (``workflow.summaries``): the data
    quality lists, the activation rates per school. Counting them reads the whole
    district, seconds for a million students, so pages read the stored result and a
    worker counts again when it is older than ``settings.SUMMARY_MAX_AGE_SECONDS``.
    One row per kind of summary."""

    key = models.CharField(max_length=40, unique=True)
    taken_at = models.DateTimeField()
    data = models.JSONField()

    class Meta:
        verbose_name_plural = "summaries"

    def __str__(self) -> str:
        return f"{self.key} counted at {self.taken_at:%Y-%m-%d %H:%M}"
