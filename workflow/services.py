"""Every write in the workflow app: state transitions with their log rows, and the
audit log. A ``@transition`` method on a model only guards and sets fields; the
functions here call it, save, log, and schedule side effects after commit."""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Model
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext
from django_fsm import can_proceed

from registration.activation import code_generate, code_hash, code_lookup, code_salt
from registration.models import (
    AcademicSession,
    ActivationCode,
    Consent,
    ContactPoint,
    ContactPreference,
    EmergencyContact,
    Guardian,
    Household,
    HouseholdStudent,
    School,
    Student,
    StudentHealth,
)
from registration.throttle import client_ip
from workflow.models import (
    Acknowledgement,
    AcknowledgementAcceptance,
    AddressChangeRequest,
    AddressProof,
    AuditEvent,
    Campaign,
    EnrollmentDecision,
    Registration,
    RegistrationStep,
    Submission,
    TransitionLog,
    registration_address_settled,
)

# The household's address fields, and the request's field for each.
ADDRESS_FIELDS = ("street1", "street2", "city", "state", "postal_code")
REQUEST_FIELD = {"state": "state_code"}


class TransitionRefused(Exception):
    """The record is not in a state that allows this change; nothing was changed."""


def audit_record(
    *,
    action: str,
    obj: Model | None = None,
    object_type: str = "",
    object_id: str = "",
    actor: Any = None,
    actor_label: str = "",
    request: HttpRequest | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add one row to the audit log.

    ``obj`` names the record; bulk operations name a type (``object_type``) instead.
    The actor is the signed-in user of ``request`` unless given.
    """
    if request is not None and actor is None and request.user.is_authenticated:
        actor = request.user
    if obj is not None:
        object_type = obj._meta.label_lower
        object_id = str(obj.pk)
    return AuditEvent.objects.create(
        action=action,
        actor=actor,
        actor_label=actor_label[:150],
        object_type=object_type,
        object_id=object_id,
        object_repr=str(obj)[:200] if obj is not None else "",
        ip_address=(client_ip(request) or None) if request is not None else None,
        detail=detail or {},
    )


def transition_log(
    *,
    obj: Model,
    transition: str,
    source: str,
    target: str,
    actor: Any = None,
    actor_label: str = "",
    note: str = "",
) -> TransitionLog:
    return TransitionLog.objects.create(
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        transition=transition,
        source=source,
        target=target,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_label=actor_label[:150],
        note=note,
    )


def _apply(
    obj: Any,
    name: str,
    *,
    actor: Any,
    actor_label: str = "",
    note: str = "",
    checked: bool = False,
    logs: list[TransitionLog] | None = None,
    **arguments: Any,
) -> None:
    """Run transition ``name`` on a locked row, save it, and log it.

    A refused transition (wrong state, or a guard that does not hold) raises
    ``TransitionRefused`` and changes nothing. ``checked`` skips evaluating the
    guards a second time here when the caller has just checked them (the
    transition still does). With ``logs``, the log row is added to that list for
    the caller to write with its others.
    """
    method = getattr(obj, name)
    if not can_proceed(method, check_conditions=not checked):
        raise TransitionRefused(f"cannot {name} a {obj._meta.verbose_name} that is {obj.state}")
    source = obj.state
    method(**arguments)
    obj.save()
    log = _log_row(obj, name, source, actor, actor_label, note)
    if logs is None:
        log.save()
    else:
        logs.append(log)


def _log_row(
    obj: Any, name: str, source: str, actor: Any, actor_label: str, note: str
) -> TransitionLog:
    return TransitionLog(
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        transition=name,
        source=source,
        target=obj.state,
        actor=actor if actor is not None and actor.is_authenticated else None,
        actor_label=actor_label[:150],
        note=note,
    )


def _apply_each(
    objs: list[Any],
    name: str,
    *,
    actor: Any,
    arguments: Any = None,
    note: Any = None,
    logs: list[TransitionLog] | None = None,
) -> None:
    """Run transition ``name`` on each of several locked rows of one model, then save
    them in one query and write their log rows in another, however many there are
    (or add the log rows to ``logs``)."""
    if not objs:
        return
    pending: list[TransitionLog] = []
    now = timezone.now()
    for obj in objs:
        method = getattr(obj, name)
        if not can_proceed(method):
            raise TransitionRefused(f"cannot {name} a {obj._meta.verbose_name} that is {obj.state}")
        source = obj.state
        method(**(arguments(obj) if arguments else {}))
        if hasattr(obj, "updated_at"):
            obj.updated_at = now  # bulk_update does not touch auto_now fields
        pending.append(_log_row(obj, name, source, actor, "", note(obj) if note else ""))
    model = type(objs[0])
    fields = [
        f.name for f in model._meta.concrete_fields if not f.primary_key and f.name != "created_at"
    ]
    model.objects.bulk_update(objs, fields)
    if logs is None:
        TransitionLog.objects.bulk_create(pending)
    else:
        logs.extend(pending)


# -- activation codes ---------------------------------------------------------------


def activation_code_issue(
    *,
    guardian: Any = None,
    student: Any = None,
    channel: str,
    issued_by: Any = None,
    actor_label: str = "",
) -> tuple[Any, str]:
    """Issue a new code for a guardian or a student, revoking the one they had.

    Returns the code's row and its clear text, which the caller hands over once (a
    letter, an email) and never stores.
    """
    person = {"guardian": guardian} if guardian is not None else {"student": student}
    with transaction.atomic():
        # Lock the person, so that two issues at once (a double click, a re-send
        # racing a staff action) follow each other instead of both inserting.
        owner = guardian if guardian is not None else student
        type(owner).objects.select_for_update().filter(pk=owner.pk).first()
        for old in (
            ActivationCode.objects.select_for_update()
            .filter(**person, state=ActivationCode.State.ISSUED)
            .order_by("pk")
        ):
            _apply(
                old,
                "revoke",
                actor=issued_by,
                actor_label=actor_label,
                note="replaced by a new code",
            )
        clear = code_generate()
        salt = code_salt()
        code = ActivationCode.objects.create(
            **person,
            lookup=code_lookup(clear),
            salt=salt,
            code_hash=code_hash(clear, salt),
            channel=channel,
            expires_at=timezone.now() + datetime.timedelta(days=settings.ACTIVATION_CODE_DAYS),
            issued_by=issued_by if issued_by is not None and issued_by.is_authenticated else None,
        )
        transition_log(
            obj=code,
            transition="issue",
            source="",
            target=code.state,
            actor=issued_by,
            actor_label=actor_label,
            note=channel,
        )
    return code, clear


def activation_code_redeem(*, code: Any, user: Any) -> None:
    """Mark a code used by the account it opened; a code works once."""
    with transaction.atomic():
        locked = ActivationCode.objects.select_for_update().get(pk=code.pk)
        _apply(locked, "redeem", actor=user, note=f"opened the account of user {user.pk}")


def activation_code_revoke(*, code: Any, actor: Any, note: str = "") -> None:
    with transaction.atomic():
        locked = ActivationCode.objects.select_for_update().get(pk=code.pk)
        _apply(locked, "revoke", actor=actor, note=note)


def activation_codes_expire(*, now: datetime.datetime | None = None) -> int:
    """Move every issued code past its expiry to expired; returns how many."""
    now = now or timezone.now()
    expired = 0
    due = ActivationCode.objects.filter(state=ActivationCode.State.ISSUED, expires_at__lte=now)
    for pk in due.values_list("pk", flat=True).iterator(chunk_size=2000):
        with transaction.atomic():
            code = ActivationCode.objects.select_for_update().get(pk=pk)
            if can_proceed(code.expire):
                _apply(code, "expire", actor=None, actor_label="expiry")
                expired += 1
    return expired


# -- campaigns -----------------------------------------------------------------------


@dataclass
class CampaignOpened:
    registrations: int
    decisions: int


def campaign_save(
    *,
    campaign: Campaign | None = None,
    school_year: AcademicSession,
    opens_on: datetime.date,
    closes_on: datetime.date,
    fees_before_submit: bool,
    approve_with_open_address_request: bool,
    actor: Any,
    actor_label: str = "",
) -> Campaign:
    """Create a campaign, or change the dates and rules of one."""
    with transaction.atomic():
        created = campaign is None
        if campaign is None:
            campaign = Campaign(created_by=actor)
        campaign.school_year = school_year
        campaign.opens_on = opens_on
        campaign.closes_on = closes_on
        campaign.fees_before_submit = fees_before_submit
        campaign.approve_with_open_address_request = approve_with_open_address_request
        campaign.save()
        audit_record(
            action=AuditEvent.Action.CREATE if created else AuditEvent.Action.CHANGE,
            obj=campaign,
            actor=actor,
            actor_label=actor_label,
            detail={
                "opens_on": opens_on.isoformat(),
                "closes_on": closes_on.isoformat(),
                "fees_before_submit": fees_before_submit,
                "approve_with_open_address_request": approve_with_open_address_request,
            },
        )
    return campaign


ACKNOWLEDGEMENT_TEXT_FIELDS = ("title_en", "body_en", "title_es", "body_es")


def acknowledgement_save(
    *,
    campaign: Campaign,
    key: str,
    texts: dict[str, str],
    required: bool,
    position: int,
    actor: Any,
    actor_label: str = "",
) -> Acknowledgement:
    """Add a document to accept, or a new version of one when its text changes.

    Families who accepted an earlier version keep that acceptance; those who have
    not submitted yet are asked for the new one.
    """
    with transaction.atomic():
        current = (
            Acknowledgement.objects.select_for_update()
            .filter(campaign=campaign, key=key, is_current=True)
            .first()
        )
        if current is not None and all(
            getattr(current, f) == texts[f] for f in ACKNOWLEDGEMENT_TEXT_FIELDS
        ):
            current.required, current.position = required, position
            current.save(update_fields=["required", "position"])
            audit_record(
                action=AuditEvent.Action.CHANGE, obj=current, actor=actor, actor_label=actor_label
            )
            return current
        # Numbered after the highest version, a retired one included.
        version = (
            Acknowledgement.objects.filter(campaign=campaign, key=key).aggregate(
                last=Max("version")
            )["last"]
            or 0
        ) + 1
        if current is not None:
            current.is_current = False
            current.save(update_fields=["is_current"])
        acknowledgement = Acknowledgement.objects.create(
            campaign=campaign,
            key=key,
            version=version,
            required=required,
            position=position,
            created_by=actor,
            **{f: texts[f] for f in ACKNOWLEDGEMENT_TEXT_FIELDS},
        )
        audit_record(
            action=AuditEvent.Action.CREATE,
            obj=acknowledgement,
            actor=actor,
            actor_label=actor_label,
            detail={"key": key, "version": version},
        )
    return acknowledgement


def acknowledgement_retire(*, acknowledgement: Acknowledgement, actor: Any) -> None:
    """Stop asking for a document; acceptances already given stay."""
    with transaction.atomic():
        updated = Acknowledgement.objects.filter(pk=acknowledgement.pk, is_current=True).update(
            is_current=False
        )
        if updated:
            audit_record(
                action=AuditEvent.Action.DELETE,
                obj=acknowledgement,
                actor=actor,
                detail={"retired": True},
            )


def campaign_open(*, campaign: Campaign, actor: Any = None, batch: int = 5000) -> CampaignOpened:
    """Create a registration for every household with an active student and an
    enrollment decision for every active student. Running it again adds only what
    is missing (new households, new students) and changes nothing else."""
    active = HouseholdStudent.objects.filter(student__enabled=True)
    household_ids = active.values_list("household_id", flat=True).distinct().order_by()
    registrations = 0
    pending: list[Registration] = []

    def flush_registrations() -> int:
        created = Registration.objects.bulk_create(pending, ignore_conflicts=True)
        pending.clear()
        return len(created)

    registered = set(
        Registration.objects.filter(campaign=campaign).values_list("household_id", flat=True)
    )
    for household_id in household_ids.iterator(chunk_size=batch):
        if household_id in registered:
            continue
        pending.append(Registration(campaign=campaign, household_id=household_id))
        if len(pending) >= batch:
            registrations += flush_registrations()
    registrations += flush_registrations()

    registration_of = dict(
        Registration.objects.filter(campaign=campaign).values_list("household_id", "pk")
    )
    primary = dict(
        active.filter(is_primary=True).values_list("student_id", "household_id").order_by()
    )
    decided = set(
        EnrollmentDecision.objects.filter(campaign=campaign).values_list("student_id", flat=True)
    )
    decisions: list[EnrollmentDecision] = []
    for student_id in (
        Student.objects.filter(enabled=True, households__isnull=False)
        .values_list("pk", flat=True)
        .distinct()
        .order_by()
        .iterator(chunk_size=batch)
    ):
        if student_id in decided:
            continue
        decisions.append(
            EnrollmentDecision(
                campaign=campaign,
                student_id=student_id,
                registration_id=registration_of.get(primary.get(student_id)),
            )
        )
    created_decisions = 0
    for start in range(0, len(decisions), batch):
        created_decisions += len(
            EnrollmentDecision.objects.bulk_create(
                decisions[start : start + batch], ignore_conflicts=True
            )
        )
    with transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk, opened_at__isnull=True).update(
            opened_at=timezone.now()
        )
        audit_record(
            action=AuditEvent.Action.CREATE,
            obj=campaign,
            actor=actor,
            actor_label="" if actor else "campaign open",
            detail={"opened": True, "registrations": registrations, "decisions": created_decisions},
        )
    campaign.refresh_from_db(fields=["opened_at"])
    return CampaignOpened(registrations=registrations, decisions=created_decisions)


# -- registrations -------------------------------------------------------------------


class RegistrationClosed(TransitionRefused):
    """The registration was submitted, approved or withdrawn; it takes no answers."""


def _registration_lock(registration: Registration) -> Registration:
    return (
        Registration.objects.select_for_update().select_related("campaign").get(pk=registration.pk)
    )


def _registration_open_for_answers(locked: Registration, user: Any) -> None:
    """Start or reopen the registration: a guardian's first answer moves it on."""
    if locked.state == Registration.State.NOT_STARTED:
        _apply(locked, "start", actor=user)
    elif locked.state == Registration.State.RETURNED:
        _apply(locked, "reopen", actor=user, note="the family is making the corrections")
    elif locked.state != Registration.State.IN_PROGRESS:
        raise RegistrationClosed(
            gettext("This registration was submitted and can no longer be changed here.")
        )


def registration_step_save(
    *,
    registration: Registration,
    step: str,
    data: dict[str, list[str]],
    answers: dict[str, Any],
    unchanged: bool,
    user: Any,
) -> RegistrationStep:
    """Save one step's answers as a draft, at once, so that nothing is lost."""
    with transaction.atomic():
        locked = _registration_lock(registration)
        _registration_open_for_answers(locked, user)
        draft = _draft_save(locked, step, data, answers, unchanged, user)
    return draft


def _draft_save(
    registration: Registration,
    step: str,
    data: dict[str, list[str]],
    answers: dict[str, Any],
    unchanged: bool,
    user: Any,
) -> RegistrationStep:
    draft, _created = RegistrationStep.objects.update_or_create(
        registration=registration,
        step=step,
        defaults={"data": data, "answers": answers, "unchanged": unchanged, "saved_by": user},
    )
    return draft


def _sha256_of_upload(upload: Any) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def address_change_save(
    *,
    registration: Registration,
    guardian: Guardian,
    data: dict[str, list[str]],
    answers: dict[str, Any],
    unchanged: bool,
    uploads: list[Any],
    remove_proof_ids: list[int],
    user: Any,
) -> AddressChangeRequest | None:
    """The address step, saved with its draft: keep the address, or ask for it to
    change, with proofs.

    An open request is updated while nobody has looked at it yet; once it waits for
    the visit, a different address cancels it and starts a new one. Keeping the old
    address cancels any open request. The household's address does not change here.
    """
    with transaction.atomic():
        locked = _registration_lock(registration)
        _registration_open_for_answers(locked, user)
        _draft_save(locked, "address", data, answers, unchanged, user)
        request = (
            AddressChangeRequest.objects.select_for_update()
            .filter(household_id=locked.household_id, state__in=AddressChangeRequest.OPEN_STATES)
            .first()
        )
        if not answers.get("moved"):
            if request is not None:
                _apply(
                    request,
                    "cancel",
                    actor=user,
                    note="the family still lives at the old address",
                    reason="The family still lives at the address on file.",
                )
            return None
        fields = {REQUEST_FIELD.get(n, n): answers.get(n, "") for n in ADDRESS_FIELDS}
        if request is not None and request.state == AddressChangeRequest.State.AWAITING_VISIT:
            if all(getattr(request, n) == v for n, v in fields.items()):
                pass
            else:
                _apply(
                    request,
                    "cancel",
                    actor=user,
                    note="replaced by another address",
                    reason="The family gave another address.",
                )
                request = None
        if request is None:
            request = AddressChangeRequest.objects.create(
                household_id=locked.household_id,
                registration=locked,
                requested_by=guardian,
                **fields,
            )
            transition_log(
                obj=request, transition="request", source="", target=request.state, actor=user
            )
        else:
            for name, value in fields.items():
                setattr(request, name, value)
            request.save(update_fields=[*fields, "updated_at"])
        if remove_proof_ids:
            for proof in AddressProof.objects.filter(request=request, pk__in=remove_proof_ids):
                proof.file.delete(save=False)
                proof.delete()
        for upload in uploads:
            proof = AddressProof(
                request=request,
                original_name=Path(upload.name).name[:200],
                content_type=upload.content_type,
                size=upload.size,
                sha256=_sha256_of_upload(upload),
                uploaded_by=user,
            )
            proof.file.save(Path(upload.name).name, upload, save=False)
            proof.save()
    return request


def content_sha256(content: Any) -> str:
    """A stable digest of what the guardian reviewed."""
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


class AnswersChanged(TransitionRefused):
    """A draft changed after the family reviewed it (on another device): they must
    review again before signing."""


def drafts_fingerprint(drafts: Any) -> str:
    """Which drafts, saved when: the same fingerprint means the same answers."""
    return content_sha256(sorted((d.step, d.saved_at.isoformat()) for d in drafts))


@dataclass
class Signature:
    guardian: Guardian
    signed_name: str
    ip_address: str
    user_agent: str
    language: str


def registration_submit(
    *,
    registration: Registration,
    signature: Signature,
    content: dict[str, Any],
    user: Any,
    drafts: str | None = None,
) -> Submission:
    """Sign and submit: record every child's decision and each accepted document,
    send the address change to the office, keep the signed content, and queue the
    confirmation (PDF and email) for after commit. One transaction: on any refusal
    nothing is kept. ``drafts`` is the fingerprint of the drafts the content was
    built from; if they changed since, ``AnswersChanged`` is raised."""
    from documents.tasks import confirmation_send_task

    with transaction.atomic():
        locked = _registration_lock(registration)
        if locked.state == Registration.State.RETURNED:
            raise RegistrationClosed(
                gettext("Please make the correction the school asked for before signing again.")
            )
        if locked.state != Registration.State.IN_PROGRESS:
            raise RegistrationClosed(gettext("This registration has already been submitted."))
        rows = list(RegistrationStep.objects.filter(registration=locked))
        if drafts is not None and drafts_fingerprint(rows) != drafts:
            raise AnswersChanged(gettext("Your answers changed since you reviewed them."))
        answers_of = {row.step: row.answers for row in rows}
        decisions = list(
            EnrollmentDecision.objects.select_for_update()
            .filter(registration=locked)
            .order_by("pk")
        )
        answers = {d.pk: answers_of.get(f"child-{d.student_id}") or {} for d in decisions}
        decided = [d for d in decisions if answers[d.pk] and not answers[d.pk].get("read_only")]
        if len(decided) < len(decisions):
            raise TransitionRefused(gettext("Please decide for every child before signing."))
        schools = School.objects.in_bulk(
            {answers[d.pk]["next_school"] for d in decided if answers[d.pk]["returning"]}
        )
        logs: list[TransitionLog] = []
        returning = [d for d in decided if answers[d.pk]["returning"]]
        leaving = [d for d in decided if not answers[d.pk]["returning"]]
        _apply_each(
            returning,
            "mark_returning",
            actor=user,
            arguments=lambda d: {
                "school": schools[answers[d.pk]["next_school"]],
                "grade": answers[d.pk]["next_grade"],
            },
            logs=logs,
        )
        _apply_each(
            leaving,
            "mark_leaving",
            actor=user,
            arguments=lambda d: {
                "reason": answers[d.pk]["leaving_reason"],
                "destination": answers[d.pk]["leaving_destination"],
            },
            note=lambda d: answers[d.pk]["leaving_reason"],
            logs=logs,
        )
        accepted = set(answers_of.get("acknowledgements", {}).get("accepted", []))
        current = list(
            Acknowledgement.objects.filter(campaign_id=locked.campaign_id, is_current=True)
        )
        if any(ack.required and ack.pk not in accepted for ack in current):
            raise TransitionRefused(
                gettext("Please accept every required document before signing.")
            )
        AcknowledgementAcceptance.objects.bulk_create(
            [
                AcknowledgementAcceptance(
                    registration=locked, acknowledgement=ack, guardian=signature.guardian
                )
                for ack in current
                if ack.pk in accepted
            ],
            ignore_conflicts=True,
        )
        requests = list(
            AddressChangeRequest.objects.select_for_update().filter(
                household_id=locked.household_id, state=AddressChangeRequest.State.REQUESTED
            )
        )
        for request in requests:
            request.registration = locked
        _apply_each(
            requests,
            "await_visit",
            actor=user,
            note=lambda r: "registration submitted",
            logs=logs,
        )
        # The transition checks its guards itself; they were checked above with a
        # message each.
        _apply(
            locked,
            "submit",
            actor=user,
            note=f"version {locked.versions + 1}",
            checked=True,
            logs=logs,
        )
        TransitionLog.objects.bulk_create(logs)
        version = locked.versions
        submission = Submission.objects.create(
            registration=locked,
            version=version,
            guardian=signature.guardian,
            signed_name=signature.signed_name,
            signed_at=timezone.now(),
            ip_address=signature.ip_address or None,
            user_agent=signature.user_agent[:500],
            language=signature.language,
            content=content,
            content_sha256=content_sha256(content),
        )
        transaction.on_commit(partial(confirmation_send_task.delay, submission.pk), robust=True)
    return submission


def registration_return(
    *, registration: Registration, actor: Any, comment: str, step: str = ""
) -> None:
    """Staff send a submitted registration back with what to correct; the family
    sees the comment and the wizard opens again at ``step``."""
    if not comment.strip():
        raise TransitionRefused(gettext("Please say what the family should correct."))
    with transaction.atomic():
        locked = _registration_lock(registration)
        locked.return_comment = comment.strip()
        locked.return_step = step
        _apply(locked, "return_for_changes", actor=actor, note=comment.strip())


def _contacts_apply(guardian: Guardian, values: dict[str, str]) -> None:
    """Make the guardian's email and phones what the family confirmed."""
    points = list(guardian.contact_points.order_by("kind", "position", "pk"))
    slots = {
        "email": (ContactPoint.Kind.EMAIL, None, ContactPoint.Label.PERSONAL),
        "mobile": (ContactPoint.Kind.PHONE, ContactPoint.Label.MOBILE, ContactPoint.Label.MOBILE),
        "work_phone": (ContactPoint.Kind.PHONE, ContactPoint.Label.WORK, ContactPoint.Label.WORK),
        "home_phone": (ContactPoint.Kind.PHONE, "other", ContactPoint.Label.HOME),
    }
    taken: set[int] = set()
    for name, (kind, label, new_label) in slots.items():
        value = values.get(name, "")
        point = next(
            (
                p
                for p in points
                if p.pk not in taken
                and p.kind == kind
                and (
                    label is None
                    or p.label == label
                    or (
                        label == "other"
                        and p.label not in (ContactPoint.Label.MOBILE, ContactPoint.Label.WORK)
                    )
                )
            ),
            None,
        )
        if point is not None:
            taken.add(point.pk)
        value_field = "email" if kind == ContactPoint.Kind.EMAIL else "phone"
        if not value:
            if point is not None:
                point.delete()
            continue
        if point is None:
            ContactPoint.objects.create(
                guardian=guardian,
                kind=kind,
                label=new_label,
                position=len(points) + len(taken),
                **{value_field: value},
            )
        elif str(getattr(point, value_field)) != value:
            setattr(point, value_field, value)
            point.save(update_fields=[value_field, "updated_at"])


def _answers_apply(registration: Registration, submission: Submission) -> None:
    """Write the approved answers into the household's records (not its address:
    that changes when staff verify it in person)."""
    drafts = {d.step: d.answers for d in RegistrationStep.objects.filter(registration=registration)}
    guardians = {
        str(g.pk): g
        for g in Guardian.objects.filter(householdguardian__household_id=registration.household_id)
    }
    for guardian_id, values in drafts.get("contacts", {}).get("guardians", {}).items():
        if guardian_id in guardians:
            _contacts_apply(guardians[guardian_id], values)
    for guardian_id, values in drafts.get("preferences", {}).get("guardians", {}).items():
        if guardian_id in guardians:
            ContactPreference.objects.update_or_create(
                guardian=guardians[guardian_id], defaults=values
            )
    if "emergency" in drafts:
        EmergencyContact.objects.filter(household_id=registration.household_id).delete()
        EmergencyContact.objects.bulk_create(
            EmergencyContact(
                household_id=registration.household_id,
                priority=priority,
                name=contact["name"],
                relationship=contact["relationship"],
                phone=contact["phone"],
            )
            for priority, contact in enumerate(drafts["emergency"]["contacts"], 1)
        )
    decided = set(registration.decisions.values_list("student_id", flat=True))
    for step, answer in drafts.items():
        if not step.startswith("child-") or answer.get("read_only"):
            continue
        if answer["student"] not in decided:
            continue
        StudentHealth.objects.update_or_create(
            student_id=answer["student"], defaults=answer["health"]
        )
        for kind, granted in answer["consents"].items():
            Consent.objects.update_or_create(
                student_id=answer["student"],
                kind=kind,
                defaults={"granted": granted, "guardian": submission.guardian},
            )


def registration_approve(*, registration: Registration, actor: Any, note: str = "") -> None:
    """Staff approve a submitted registration: each child's decision is confirmed and
    the family's answers become the household's records, in one transaction."""
    with transaction.atomic():
        locked = _registration_lock(registration)
        if locked.state == Registration.State.SUBMITTED and not registration_address_settled(
            locked
        ):
            raise TransitionRefused(
                gettext("The household's address change must be verified or rejected first.")
            )
        _apply(locked, "approve", actor=actor, note=note)
        _apply_each(
            list(
                EnrollmentDecision.objects.select_for_update()
                .filter(
                    registration=locked,
                    state__in=[
                        EnrollmentDecision.State.RETURNING,
                        EnrollmentDecision.State.LEAVING,
                    ],
                )
                .order_by("pk")
            ),
            "confirm",
            actor=actor,
        )
        submission = locked.submissions.order_by("-version").first()
        if submission is not None:
            _answers_apply(locked, submission)
        audit_record(
            action=AuditEvent.Action.CHANGE,
            obj=locked.household,
            actor=actor,
            detail={"approved_registration": locked.pk},
        )


def registration_withdraw(*, registration: Registration, actor: Any, note: str) -> None:
    """Staff withdraw a registration (the family left, or a duplicate household)."""
    with transaction.atomic():
        locked = _registration_lock(registration)
        _apply(locked, "withdraw", actor=actor, note=note)


def address_change_verify(
    *, request: AddressChangeRequest, actor: Any, proofs_seen: list[str]
) -> None:
    """Staff saw the proofs in person: the household's address becomes the new one,
    in the same transaction as the request's transition."""
    if len(set(proofs_seen)) < 2:
        raise TransitionRefused(gettext("Record at least two proofs you saw."))
    with transaction.atomic():
        locked = AddressChangeRequest.objects.select_for_update().get(pk=request.pk)
        _apply(locked, "verify", actor=actor, note=", ".join(sorted(set(proofs_seen))), by=actor)
        household = Household.objects.select_for_update().get(pk=locked.household_id)
        before = household.address_lines
        for name in ADDRESS_FIELDS:
            setattr(household, name, getattr(locked, REQUEST_FIELD.get(name, name)))
        household.save(update_fields=[*ADDRESS_FIELDS, "updated_at"])
        audit_record(
            action=AuditEvent.Action.CHANGE,
            obj=household,
            actor=actor,
            detail={"address_before": before, "address_after": household.address_lines},
        )


def address_change_reject(*, request: AddressChangeRequest, actor: Any, reason: str) -> None:
    """Staff could not verify the new address; the household's address stays."""
    if not reason.strip():
        raise TransitionRefused(gettext("Please give the reason, for the family."))
    with transaction.atomic():
        locked = AddressChangeRequest.objects.select_for_update().get(pk=request.pk)
        _apply(locked, "reject", actor=actor, note=reason.strip(), by=actor, reason=reason.strip())
