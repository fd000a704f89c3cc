"""Every write to the district's records goes through a function here."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterable
from pathlib import Path

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone, translation

from config.languages import language_or_default
from documents.letters import Letter, letters_pdf
from outbox.services import task_enqueue
from registration.activation import code_display, code_lookup, code_matches, code_normalise
from registration.models import (
    ActivationAttempt,
    ActivationCode,
    ActivationEmail,
    ContactPoint,
    Guardian,
    Household,
    HouseholdGuardian,
    School,
    StaffProfile,
    Student,
    StudentGuardian,
    User,
)
from registration.roster.exporter import ExportReport
from registration.roster.exporter import roster_export as _roster_export
from registration.roster.importer import ImportReport
from registration.roster.importer import roster_import as _roster_import
from registration.selectors import email_on_file
from registration.templatetags.phones import help_phone
from workflow.services import (
    activation_code_issue,
    activation_code_redeem,
    audit_record,
)

security_log = logging.getLogger("security")

REGISTRAR_GROUP = "Registrars"
# The registrar keeps the district's records in the admin; nobody deletes them there.
REGISTRAR_APPS = ("registration", "workflow")


def roster_import(*, path: Path, dry_run: bool = False, actor_label: str = "") -> ImportReport:
    """Import a roster bundle (folder or zip); see ``registration.roster.importer``.
    Once written, children eligible for free or reduced-price meals who joined a
    class or a school have its fees waived."""
    from payments.services import waivers_apply

    report = _roster_import(path=path, dry_run=dry_run, actor_label=actor_label)
    if report.written:
        waivers_apply()
    return report


def roster_export(*, folder: Path, actor_label: str = "") -> ExportReport:
    """Write the district's roster records as a bundle into ``folder``, and log it."""
    report = _roster_export(folder=folder)
    audit_record(
        action="export",
        object_type="registration.roster",
        actor_label=actor_label,
        detail={"rows": report.rows},
    )
    return report


def registrar_group_ensure() -> Group:
    """The group whose members may view, add and change the district's records in the
    admin. They never delete, never edit sign-ins (no way to make anyone a superuser)
    and only read the logs."""
    group, _ = Group.objects.get_or_create(name=REGISTRAR_GROUP)
    permissions = (
        Permission.objects.filter(content_type__app_label__in=REGISTRAR_APPS)
        .exclude(codename__startswith="delete_")
        .exclude(content_type__model="user")
        .exclude(content_type__app_label="workflow", codename__regex=r"^(add|change)_")
    )
    group.permissions.set(permissions)
    return group


def _user_for_email(email: str) -> User:
    email = email.strip().lower()
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User(username=email[:150], email=email)
    return user


def _verified_email(user: User) -> None:
    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )


@transaction.atomic
def staff_account_create(
    *,
    email: str,
    role: str,
    given_name: str,
    family_name: str,
    password: str | None,
    schools: Iterable[School] = (),
    profile: StaffProfile | None = None,
) -> StaffProfile:
    """Give a member of staff a sign-in (a new profile, or a roster one in ``profile``).

    Registrars reach the admin; the other roles work only in the staff pages.
    Without ``password`` the person sets one through "forgot password".
    """
    user = _user_for_email(email)
    user.first_name, user.last_name = given_name, family_name
    user.is_staff = role == StaffProfile.Role.REGISTRAR
    if password:
        user.set_password(password)
    elif user.pk is None:
        user.set_unusable_password()
    user.save()
    _verified_email(user)
    if role == StaffProfile.Role.REGISTRAR:
        user.groups.add(registrar_group_ensure())
    if profile is None:
        profile = StaffProfile.objects.filter(user=user).first() or StaffProfile()
    profile.user = user
    profile.role = role
    profile.given_name, profile.family_name = given_name, family_name
    profile.email = user.email
    profile.save()
    if schools:
        profile.schools.add(*schools)
    return profile


@transaction.atomic
def guardian_account_create(*, guardian: Guardian, email: str, password: str) -> User:
    """Give a guardian a sign-in with a verified email straight away, without a code:
    for the demo and for support staff. Families open accounts through
    ``activation_account_create``."""
    user = guardian.user or _user_for_email(email)
    user.email = email.strip().lower()
    user.first_name, user.last_name = guardian.given_name, guardian.family_name
    user.set_password(password)
    user.save()
    _verified_email(user)
    if guardian.user_id != user.pk:
        guardian.user = user
        guardian.save(update_fields=["user", "updated_at"])
    return user


# -- activation ---------------------------------------------------------------------


def _birth_date_matches(code: ActivationCode, birth_date: datetime.date) -> bool:
    if code.student_id:
        return code.student is not None and code.student.birth_date == birth_date
    return Student.objects.filter(
        guardian_links__guardian=code.guardian, birth_date=birth_date, enabled=True
    ).exists()


def _attempt(outcome: str, code: ActivationCode | None, ip_address: str) -> None:
    ActivationAttempt.objects.create(outcome=outcome, code=code, ip_address=ip_address or None)
    if outcome != ActivationAttempt.Outcome.SUCCEEDED:
        # Who and where, never what was typed.
        security_log.warning(
            "activation refused: %s, code id %s, ip %s",
            outcome,
            code.pk if code else "-",
            ip_address,
        )


@transaction.atomic
def activation_verify(
    *, code_text: str, birth_date: datetime.date, ip_address: str
) -> ActivationCode | None:
    """The code, if it is issued, unexpired, not locked, and the birth date is one the
    district holds for it (a child's, or a student's own). Every try is recorded; five
    failures on one code within the lock-out window lock it for that long.
    """
    code = code_normalise(code_text)
    row = (
        ActivationCode.objects.select_for_update(of=("self",))
        .select_related("guardian", "student")
        .filter(lookup=code_lookup(code))
        .first()
        if code
        else None
    )
    outcome = ActivationAttempt.Outcome
    if row is None or not code_matches(code or "", row.salt, row.code_hash):
        _attempt(outcome.UNKNOWN_CODE, None, ip_address)
        return None
    now = timezone.now()
    if row.locked_until and row.locked_until > now:
        _attempt(outcome.LOCKED, row, ip_address)
        return None
    if not row.is_usable():
        failed = outcome.NOT_USABLE
    elif not _birth_date_matches(row, birth_date):
        failed = outcome.WRONG_FACT
    else:
        _attempt(outcome.SUCCEEDED, row, ip_address)
        return row
    _attempt(failed, row, ip_address)
    window = datetime.timedelta(minutes=settings.ACTIVATION_LOCKOUT_MINUTES)
    recent_failures = row.attempts.filter(
        created_at__gt=now - window, outcome__in=[outcome.NOT_USABLE, outcome.WRONG_FACT]
    ).count()
    if recent_failures >= settings.ACTIVATION_LOCKOUT_FAILURES:
        ActivationCode.objects.filter(pk=row.pk).update(locked_until=now + window)
        security_log.warning(
            "activation code id %s locked after %d failures", row.pk, recent_failures
        )
    return None


def email_in_use(email: str) -> bool:
    return (
        User.objects.filter(email__iexact=email).exists()
        or EmailAddress.objects.filter(email__iexact=email).exists()
    )


@transaction.atomic
def activation_account_create(
    *, code: ActivationCode, email: str, password: str, language: str
) -> User:
    """Open the account a code was issued for: a sign-in with an email address that
    still has to be verified, linked to the guardian or student, and the code used up.
    """
    person: Guardian | Student = code.person
    if person.user_id:
        raise ValueError("this person already has an account")
    email = email.strip()
    user = User(
        username=email.lower()[:150],
        email=email,
        first_name=person.given_name,
        last_name=person.family_name,
    )
    user.set_password(password)
    user.save()
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=False)
    person.user = user
    fields = ["user", "updated_at"]
    if isinstance(person, Guardian):
        person.language = language
        fields.append("language")
    person.save(update_fields=fields)
    activation_code_redeem(code=code, user=user)
    return user


def guardian_language_set(*, guardian: Guardian, language: str, actor: User) -> bool:
    """Store the language a guardian chose to read the site, emails, letters and
    documents in; returns whether it changed (an unchanged choice writes nothing)."""
    if guardian.language == language:
        return False
    with transaction.atomic():
        before = guardian.language
        guardian.language = language
        guardian.save(update_fields=["language", "updated_at"])
        audit_record(
            action="change",
            obj=guardian,
            actor=actor,
            detail={"language": [before, language]},
        )
    return True


def guardian_language(guardian: Guardian) -> str:
    """The language to write to a guardian in: their choice, else their household's."""
    households = guardian.households.order_by("sourced_id").values_list("language", flat=True)
    return language_or_default(guardian.language, *households)


def activation_resend_candidates(*, now: datetime.datetime | None = None) -> QuerySet[Guardian]:
    """Guardians with an email on file and no account, in a household where nobody has
    an account yet, who were not sent a code (by letter or email) in the last
    ``ACTIVATION_RESEND_DAYS``: a fresh letter still in the post is not cancelled."""
    now = now or timezone.now()
    activated = HouseholdGuardian.objects.filter(guardian__user__isnull=False).values(
        "household_id"
    )
    waiting_households = Household.objects.exclude(pk__in=activated).values("pk")
    since = now - datetime.timedelta(days=settings.ACTIVATION_RESEND_DAYS)
    recently_sent = ActivationCode.objects.filter(
        guardian__isnull=False, created_at__gt=since
    ).values("guardian_id")
    with_email = ContactPoint.objects.filter(kind=ContactPoint.Kind.EMAIL).values("guardian_id")
    in_waiting = HouseholdGuardian.objects.filter(household_id__in=waiting_households).values(
        "guardian_id"
    )
    return (
        Guardian.objects.filter(enabled=True, user__isnull=True, pk__in=with_email)
        .filter(pk__in=in_waiting)
        .exclude(pk__in=recently_sent)
    )


# Guardians emailed by one task of a re-send: a district's first re-send reaches
# hundreds of thousands of guardians.
RESEND_CHUNK = 200


def activation_resend_due(*, actor: User | None = None) -> int:
    """Queue a fresh code by email for every guardian due one; returns how many.

    The sends are recorded in the outbox in the same transaction as the audit row, a
    task per ``RESEND_CHUNK`` guardians: a broker outage delays them and drops none.
    A task run twice sends nothing twice, since each guardian is checked again under
    a lock (``activation_code_email``)."""
    from registration.tasks import activation_codes_email_task  # tasks import this module

    guardian_ids = list(activation_resend_candidates().order_by("pk").values_list("pk", flat=True))
    actor_id = actor.pk if actor is not None else None
    with transaction.atomic():
        for start in range(0, len(guardian_ids), RESEND_CHUNK):
            chunk = guardian_ids[start : start + RESEND_CHUNK]
            task_enqueue(activation_codes_email_task, chunk, "resend", actor_id)
        audit_record(
            action="create",
            object_type="registration.activationemail",
            actor=actor,
            actor_label="" if actor else "scheduled re-send",
            detail={"queued": len(guardian_ids), "reason": "resend"},
        )
    return len(guardian_ids)


def activation_code_email(
    *, guardian: Guardian, reason: str, sent_by: User | None = None
) -> ActivationEmail | None:
    """Issue a guardian a new code (the old one stops working) and email it.

    Nothing is sent to a guardian who has an account or no email address, and a
    scheduled re-send goes to each guardian at most once per re-send period.
    """
    with transaction.atomic():
        # The person's row is locked while the checks run, the code is issued and the
        # mail goes out: a failed send rolls the new code back, so the family's
        # working code is never cancelled by a message that did not leave.
        Guardian.objects.select_for_update().filter(pk=guardian.pk).first()
        guardian.refresh_from_db(fields=["user"])
        if guardian.user_id:
            return None
        email = email_on_file(guardian)
        if not email:
            return None
        if (
            reason == "resend"
            and not activation_resend_candidates().filter(pk=guardian.pk).exists()
        ):
            return None
        code, clear = activation_code_issue(
            guardian=guardian,
            channel=ActivationCode.Channel.EMAIL,
            issued_by=sent_by,
            actor_label=reason,
        )
        context = {
            "guardian": guardian,
            "code": code_display(clear),
            "expires_on": timezone.localtime(code.expires_at).date(),
            "activate_url": settings.SITE_URL.rstrip("/") + "/activate/",
            "district": {
                "name": settings.DISTRICT_NAME,
                "help_email": settings.DISTRICT_HELP_EMAIL,
                "help_phone": help_phone(),
            },
        }
        with translation.override(guardian_language(guardian)):
            subject = render_to_string("registration/email/activation_code_subject.txt", context)
            body = render_to_string("registration/email/activation_code_message.txt", context)
        send_mail(" ".join(subject.split()), body, settings.DEFAULT_FROM_EMAIL, [email])
        return ActivationEmail.objects.create(
            guardian=guardian, email=email, code=code, sent_by=sent_by, reason=reason
        )


def _mailing_household(person: Guardian | Student) -> Household | None:
    """Where a letter to this person goes: a student's primary household; for a
    guardian, the first household where they have a child they hold rights for."""
    if isinstance(person, Student):
        return (
            Household.objects.filter(householdstudent__student=person)
            .order_by("-householdstudent__is_primary", "sourced_id")
            .first()
        )
    households = Household.objects.filter(householdguardian__guardian=person)
    with_rights = households.filter(
        householdstudent__student__guardian_links__guardian=person,
        householdstudent__student__guardian_links__has_education_rights=True,
    )
    return with_rights.order_by("sourced_id").first() or households.order_by("sourced_id").first()


def activation_letters_issue(
    *,
    guardians: Iterable[Guardian] = (),
    students: Iterable[Student] = (),
    issued_by: User | None = None,
    actor_label: str = "",
) -> list[Letter]:
    """Issue each person a new code (their old one stops working) and return their
    letters, sorted by postal code for bulk mail. The codes in the letters are the
    only copy in clear text."""
    letters: list[Letter] = []
    people: list[Guardian | Student] = [*guardians, *students]
    for person in people:
        household = _mailing_household(person)
        children: list[str] = []
        if isinstance(person, Student):
            code, clear = activation_code_issue(
                student=person,
                channel=ActivationCode.Channel.LETTER,
                issued_by=issued_by,
                actor_label=actor_label,
            )
            language = language_or_default(household.language if household else None)
        else:
            code, clear = activation_code_issue(
                guardian=person,
                channel=ActivationCode.Channel.LETTER,
                issued_by=issued_by,
                actor_label=actor_label,
            )
            language = guardian_language(person)
            children = list(
                Student.objects.filter(guardian_links__guardian=person, enabled=True)
                .order_by("birth_date", "given_name")
                .values_list("given_name", flat=True)
            )
        is_student = isinstance(person, Student)
        letters.append(
            Letter(
                kind="student" if is_student else "guardian",
                sourced_id=person.sourced_id,
                name=person.full_name,
                street1=household.street1 if household is not None else "",
                street2=household.street2 if household is not None else "",
                city=household.city if household is not None else "",
                state=household.state if household is not None else "",
                postal_code=household.postal_code if household is not None else "",
                language=language,
                code=code_display(clear),
                expires_on=timezone.localtime(code.expires_at).date(),
                children=children,
                household=household.sourced_id if household is not None else "",
            )
        )
    letters.sort(key=lambda letter: (letter.postal_code or "99999", letter.name, letter.sourced_id))
    return letters


@transaction.atomic
def activation_letter_reissue(*, guardian: Guardian, issued_by: User | None) -> bytes:
    """A single letter with a new code, for a lost one. If rendering fails the new
    code is rolled back and the old one keeps working."""
    letters = activation_letters_issue(
        guardians=[guardian], issued_by=issued_by, actor_label="lost letter"
    )
    return letters_pdf(letters)


def custody_note_set(*, link: StudentGuardian, note: str, request: HttpRequest) -> bool:
    """Write the custody note of one guardian and child, from the papers a family
    brought in. The audit row says who changed it and when, never what it says.
    Returns whether anything changed."""
    note = note.strip()
    with transaction.atomic():
        locked = StudentGuardian.objects.select_for_update().get(pk=link.pk)
        if (locked.custody_note or "") == note:
            return False
        locked.custody_note = note
        locked.save(update_fields=["custody_note"])
        audit_record(
            action="update",
            obj=locked.student,
            request=request,
            detail={
                "field": "custody_note",
                "guardian": locked.guardian_id,
                "note": "cleared" if not note else "written",
            },
        )
    link.custody_note = note
    return True
