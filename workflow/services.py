"""Every write in the workflow app: state transitions with their log rows, and the
audit log. A ``@transition`` method on a model only guards and sets fields; the
functions here call it, save, log, and schedule side effects after commit."""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection, send_mail
from django.db import connection, transaction
from django.db.models import Max, Model, Q
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext
from django_fsm import can_proceed

from config.languages import language_or_default, product_language
from outbox.services import delivery_once, task_enqueue
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
    HouseholdGuardian,
    HouseholdStudent,
    School,
    StaffProfile,
    Student,
    StudentHealth,
)
from registration.proof_files import proof_storage_name
from registration.selectors import email_on_file
from registration.templatetags.phones import help_phone
from registration.throttle import client_ip
from workflow.models import (
    PROOF_KINDS,
    Acknowledgement,
    AcknowledgementAcceptance,
    AddressChangeRequest,
    AddressProof,
    AddressVisit,
    AuditEvent,
    Campaign,
    ChangeRecord,
    EnrollmentDecision,
    OfficeHours,
    Registration,
    RegistrationStep,
    Reminder,
    Submission,
    TransitionLog,
    VisitSchedule,
    registration_address_settled,
)
from workflow.selectors import REMINDER_STATES, reminders_due
from workflow.visits import DEFAULT_CAPACITY, VisitChoice, slot_label

# The household's address fields, and the request's field for each.
ADDRESS_FIELDS = ("street1", "street2", "city", "state", "postal_code")
REQUEST_FIELD = {"state": "state_code"}


class TransitionRefused(Exception):
    """The record is not in a state that allows this change; nothing was changed."""


def _storable(detail: Any) -> Any:
    """``detail`` with each NUL in its texts written as U+FFFD: a search box may be
    sent one, and PostgreSQL's JSON cannot hold it."""
    if isinstance(detail, str):
        return detail.replace("\x00", "\ufffd")
    if isinstance(detail, dict):
        return {key: _storable(value) for key, value in detail.items()}
    if isinstance(detail, list | tuple):
        return [_storable(value) for value in detail]
    return detail


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
        detail=_storable(detail or {}),
    )


def audit_records_bulk(
    *,
    action: str,
    objs: Sequence[Model],
    actor: Any = None,
    actor_label: str = "",
    request: HttpRequest | None = None,
    detail: dict[str, Any] | None = None,
) -> list[AuditEvent]:
    """``audit_record`` for each of ``objs`` (a page listing many children), in one
    insert per batch: the same rows, each naming its record."""
    if request is not None and actor is None and request.user.is_authenticated:
        actor = request.user
    ip_address = (client_ip(request) or None) if request is not None else None
    return AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                action=action,
                actor=actor,
                actor_label=actor_label[:150],
                object_type=obj._meta.label_lower,
                object_id=str(obj.pk),
                object_repr=str(obj)[:200],
                ip_address=ip_address,
                detail=_storable(detail or {}),
            )
            for obj in objs
        ],
        batch_size=500,
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


ACKNOWLEDGEMENT_TEXT_FIELDS = ("title_en", "body_en", "title_es", "body_es", "title_zh", "body_zh")


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
        changed = [
            f for f in ACKNOWLEDGEMENT_TEXT_FIELDS if getattr(current, f, None) != texts.get(f, "")
        ]
        # A translation written for the first time (a document from before the product
        # spoke Chinese) says nothing new: families who accepted keep their acceptance.
        filled = [f for f in changed if current is not None and not getattr(current, f)]
        if current is not None and changed == filled:
            current.required, current.position = required, position
            for f in filled:
                setattr(current, f, texts[f])
            current.save(update_fields=["required", "position", *filled])
            audit_record(
                action=AuditEvent.Action.CHANGE,
                obj=current,
                actor=actor,
                actor_label=actor_label,
                detail={"translated": filled} if filled else None,
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
            **{f: texts.get(f, "") for f in ACKNOWLEDGEMENT_TEXT_FIELDS},
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


def campaign_open(*, campaign: Campaign, actor: Any = None) -> CampaignOpened:
    """Create a registration for every household with an active student and an
    enrollment decision for every active student. Running it again adds only what
    is missing (new households, new students) and changes nothing else.

    Each kind of row is written by one ``INSERT ... SELECT`` that skips the rows
    already there (the unique constraints decide): a district of a million students
    opens its campaign in seconds, inside a web request's time limit, where making
    the rows in Python took two minutes."""
    now = timezone.now()
    student = Student._meta.db_table
    membership = HouseholdStudent._meta.db_table
    registration = Registration._meta.db_table
    with transaction.atomic():
        registrations = _insert_select(
            Registration,
            given={"campaign_id": campaign.pk},
            selected=["household_id"],
            source=f"SELECT DISTINCT m.household_id AS household_id FROM {membership} m JOIN {student} s ON s.id = m.student_id WHERE s.enabled",  # noqa: E501, S608  # nosec B608
            now=now,
        )
        # A child's decision belongs to the registration of their primary household.
        decisions = _insert_select(
            EnrollmentDecision,
            given={"campaign_id": campaign.pk},
            selected=["student_id", "registration_id"],
            source=f"SELECT s.id AS student_id, r.id AS registration_id FROM {student} s LEFT JOIN {membership} m ON m.student_id = s.id AND m.is_primary LEFT JOIN {registration} r ON r.household_id = m.household_id AND r.campaign_id = %s WHERE s.enabled AND EXISTS (SELECT 1 FROM {membership} o WHERE o.student_id = s.id)",  # noqa: E501, S608  # nosec B608
            source_params=[campaign.pk],
            now=now,
        )
        Campaign.objects.filter(pk=campaign.pk, opened_at__isnull=True).update(opened_at=now)
        audit_record(
            action=AuditEvent.Action.CREATE,
            obj=campaign,
            actor=actor,
            actor_label="" if actor else "campaign open",
            detail={"opened": True, "registrations": registrations, "decisions": decisions},
        )
    campaign.refresh_from_db(fields=["opened_at"])
    return CampaignOpened(registrations=registrations, decisions=decisions)


def _insert_select(
    model: type[Model],
    *,
    given: dict[str, Any],
    selected: list[str],
    source: str,
    now: datetime.datetime,
    source_params: Sequence[Any] = (),
) -> int:
    """Insert a row of ``model`` for each row of the query ``source``, which names its
    columns after the fields of ``selected``; ``given`` values and every other field's
    default fill the rest. Rows that would break a unique constraint are skipped.
    Returns how many were inserted."""
    columns: list[str] = []
    values: list[str] = []
    params: list[Any] = []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in selected:
            values.append(f"picked.{field.attname}")
            continue
        if field.attname in given:
            value = given[field.attname]
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = now
        else:
            value = field.get_default()
        values.append("%s")
        params.append(field.get_db_prep_save(value, connection))
    # Only quoted names of our own models go into the text; values are parameters
    # (hence the nosec: nothing a person typed reaches the statement). "WHERE true":
    # SQLite needs it to read ON CONFLICT after a SELECT.
    table = connection.ops.quote_name(model._meta.db_table)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM ({source}) AS picked WHERE true ON CONFLICT DO NOTHING"  # noqa: E501, S608  # nosec B608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, *source_params])
        return max(cursor.rowcount, 0)


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
    read_only: bool = False,
) -> RegistrationStep:
    """Save one step's answers as a draft, at once, so that nothing is lost.

    A ``read_only`` step (a child another guardian of the household decides for) only
    marks the step as seen: what a guardian with education rights saved there stays."""
    with transaction.atomic():
        locked = _registration_lock(registration)
        _registration_open_for_answers(locked, user)
        if read_only:
            seen = RegistrationStep.objects.filter(registration=locked, step=step).first()
            if seen is not None:
                return seen
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
    # The registration's row is locked: no other save of this step runs meanwhile, so
    # a read and a write do (update_or_create would add two savepoints).
    draft = RegistrationStep.objects.filter(registration=registration, step=step).first()
    if draft is None:
        return RegistrationStep.objects.create(
            registration=registration,
            step=step,
            data=data,
            answers=answers,
            unchanged=unchanged,
            saved_by=user,
        )
    draft.data, draft.answers, draft.unchanged, draft.saved_by = data, answers, unchanged, user
    draft.save(update_fields=["data", "answers", "unchanged", "saved_by", "saved_at"])
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
    visit: VisitChoice | None = None,
) -> AddressChangeRequest | None:
    """The address step, saved with its draft: keep the address, or ask for it to
    change, with proofs and the family's visit to the school office.

    An open request is updated while nobody has looked at it yet; once it waits for
    the visit, a different address cancels it and starts a new one. Keeping the old
    address cancels any open request (and its bookings). The household's address
    does not change here. With ``visit``, the visit is booked in the same transaction
    (see ``address_visit_book``): ``VisitSlotTaken`` when its slot is full.
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
                _visits_release(request)
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
                _visits_release(request)
                request = None
        created = request is None
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
            proof.file.save(proof_storage_name(upload.name), upload, save=False)
            proof.save()
        if visit is not None:
            _visit_book(request, visit, guardian=guardian, fresh=created)
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
        if locked.campaign.fees_before_submit:
            from payments.money import money
            from payments.selectors import required_fees_unsettled

            due = required_fees_unsettled(household=locked.household, campaign=locked.campaign)
            if due:
                raise TransitionRefused(
                    gettext("Please pay the required fees before signing: %(amount)s is still due.")
                    % {"amount": money(sum(due.values()))}
                )
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
        task_enqueue(confirmation_send_task, submission.pk)
    return submission


# What staff decided about a registration, as the email to the family names it.
REVIEW_APPROVED = "approved"
REVIEW_RETURNED = "returned"
REVIEW_STILL_TRUE = {
    REVIEW_APPROVED: (Registration.State.APPROVED, Registration.State.EXPORTED),
    REVIEW_RETURNED: (Registration.State.RETURNED,),
}


def registration_review_email(*, registration_id: int, outcome: str) -> int:
    """Write to the household's guardians, each in their language, that staff
    approved their registration or returned it (with the comment and where to make
    the correction). Nothing is sent when the registration has moved on since (the
    family already started the correction), and each guardian is written to once
    per decision however often the task runs. Returns how many messages were sent."""
    from registration.services import guardian_language

    registration = (
        Registration.objects.select_related("campaign__school_year", "household")
        .filter(pk=registration_id)
        .first()
    )
    if registration is None or registration.state not in REVIEW_STILL_TRUE[outcome]:
        return 0
    decisions = list(
        EnrollmentDecision.objects.filter(registration=registration)
        .select_related("student", "next_school")
        .order_by("student__birth_date", "student__given_name")
    )
    sent = 0
    for guardian in Guardian.objects.filter(
        householdguardian__household_id=registration.household_id, enabled=True
    ).select_related("user"):
        email = (guardian.user.email if guardian.user else "") or email_on_file(guardian)
        if not email:
            continue
        context = {
            "guardian": guardian,
            "registration": registration,
            "year": registration.campaign.school_year.label,
            "comment": registration.return_comment,
            "decisions": decisions,
            "register_url": settings.SITE_URL.rstrip("/") + "/register/",
            "home_url": settings.SITE_URL.rstrip("/") + "/home/",
            "district": settings.DISTRICT_NAME,
            "help_email": settings.DISTRICT_HELP_EMAIL,
            "help_phone": help_phone(),
        }
        templates = f"workflow/email/registration_{outcome}"
        with translation.override(guardian_language(guardian)):
            subject = render_to_string(f"{templates}_subject.txt", context)
            body = render_to_string(f"{templates}_message.txt", context)
        # A registration is approved or returned at most once per submitted version.
        sent += delivery_once(
            key=f"registration-{outcome}:{registration.pk}:v{registration.versions}"
            f":guardian-{guardian.pk}",
            send=partial(
                send_mail, " ".join(subject.split()), body, settings.DEFAULT_FROM_EMAIL, [email]
            ),
        )
    return sent


def registration_return(
    *, registration: Registration, actor: Any, comment: str, step: str = ""
) -> None:
    """Staff send a submitted registration back with what to correct; the family
    sees the comment and the wizard opens again at ``step``. The household's
    guardians are emailed the comment after commit."""
    from workflow.tasks import registration_review_email_task

    if not comment.strip():
        raise TransitionRefused(gettext("Please say what the family should correct."))
    with transaction.atomic():
        locked = _registration_lock(registration)
        locked.return_comment = comment.strip()
        locked.return_step = step
        _apply(locked, "return_for_changes", actor=actor, note=comment.strip())
        audit_record(
            action=AuditEvent.Action.CHANGE,
            obj=locked,
            actor=actor,
            detail={"returned": True, "step": step},
        )
        task_enqueue(registration_review_email_task, locked.pk, REVIEW_RETURNED)


def _contacts_apply(guardian: Guardian, values: dict[str, str]) -> list[tuple[str, str, str]]:
    """Make the guardian's email and phones what the family confirmed; returns each
    one that changed as (field, old value, new value)."""
    points = list(guardian.contact_points.order_by("kind", "position", "pk"))
    changed: list[tuple[str, str, str]] = []
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
        old = str(getattr(point, value_field)) if point is not None else ""
        if old != value:
            changed.append((name, old, value))
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
        elif old != value:
            setattr(point, value_field, value)
            point.save(update_fields=[value_field, "updated_at"])
    return changed


def _flag(value: bool | None) -> str:
    """A yes/no value as the roster files write it."""
    return "" if value is None else ("true" if value else "false")


@dataclass
class _ChangeRecords:
    """The fields an approval changes, collected as ``ChangeRecord`` rows for the SIS."""

    registration: Registration
    approved_by: Any
    approved_at: datetime.datetime
    rows: list[ChangeRecord]

    def add(
        self,
        record_type: str,
        record_id: str,
        field: str,
        old: str,
        new: str,
        *,
        always: bool = False,
    ) -> None:
        """One changed field; an unchanged one is left out unless ``always``."""
        if old == new and not always:
            return
        self.rows.append(
            ChangeRecord(
                registration=self.registration,
                record_type=record_type,
                record_id=record_id,
                field=field,
                old_value=old,
                new_value=new,
                approved_by=self.approved_by,
                approved_at=self.approved_at,
            )
        )


def _answers_apply(
    registration: Registration,
    submission: Submission,
    *,
    approved_by: Any,
    approved_at: datetime.datetime,
) -> list[ChangeRecord]:
    """Write the approved answers into the household's records (not its address:
    that changes when staff verify it in person), and a ``ChangeRecord`` for each
    field that changed: contacts, preferences, emergency contacts, consents and the
    children's enrollment for next year. Health is written but never recorded for
    the SIS: it is not exported."""
    changes = _ChangeRecords(
        registration=registration, approved_by=approved_by, approved_at=approved_at, rows=[]
    )
    drafts = {d.step: d.answers for d in RegistrationStep.objects.filter(registration=registration)}
    guardians = {
        str(g.pk): g
        for g in Guardian.objects.filter(householdguardian__household_id=registration.household_id)
    }
    for guardian_id, values in drafts.get("contacts", {}).get("guardians", {}).items():
        if guardian_id in guardians:
            guardian = guardians[guardian_id]
            for field, old, new in _contacts_apply(guardian, values):
                changes.add("guardian", guardian.sourced_id, field, old, new)
    preferences = {
        p.guardian_id: p
        for p in ContactPreference.objects.filter(guardian__in=list(guardians.values()))
    }
    for guardian_id, values in drafts.get("preferences", {}).get("guardians", {}).items():
        if guardian_id in guardians:
            guardian = guardians[guardian_id]
            before = preferences.get(guardian.pk)
            for name, value in values.items():
                old = _flag(getattr(before, name)) if before is not None else ""
                field = f"preference.{name}"
                changes.add("guardian", guardian.sourced_id, field, old, _flag(value))
            ContactPreference.objects.update_or_create(guardian=guardian, defaults=values)
    if "emergency" in drafts:
        on_file = list(
            EmergencyContact.objects.filter(household_id=registration.household_id).order_by(
                "priority"
            )
        )
        given = drafts["emergency"]["contacts"]
        # Numbered as they will be: the contacts given are stored from priority 1.
        for priority in range(1, max(len(on_file), len(given)) + 1):
            old_contact = on_file[priority - 1] if priority <= len(on_file) else None
            new_contact = given[priority - 1] if priority <= len(given) else None
            for column in ("name", "relationship", "phone"):
                changes.add(
                    "emergency_contact",
                    registration.household.sourced_id,
                    f"priority_{priority}.{column}",
                    str(getattr(old_contact, column)) if old_contact is not None else "",
                    new_contact[column] if new_contact is not None else "",
                )
        EmergencyContact.objects.filter(household_id=registration.household_id).delete()
        EmergencyContact.objects.bulk_create(
            EmergencyContact(
                household_id=registration.household_id,
                priority=priority,
                name=contact["name"],
                relationship=contact["relationship"],
                phone=contact["phone"],
            )
            for priority, contact in enumerate(given, 1)
        )
    decisions = list(
        registration.decisions.select_related("student__school", "next_school").order_by("pk")
    )
    students = {d.student_id: d.student for d in decisions}
    consents = {
        (c.student_id, c.kind): c.granted for c in Consent.objects.filter(student_id__in=students)
    }
    for step, answer in drafts.items():
        if not step.startswith("child-") or answer.get("read_only"):
            continue
        if answer["student"] not in students:
            continue
        student = students[answer["student"]]
        StudentHealth.objects.update_or_create(student_id=student.pk, defaults=answer["health"])
        for kind, granted in answer["consents"].items():
            changes.add(
                "student",
                student.sourced_id,
                f"consent.{kind}",
                _flag(consents.get((student.pk, kind))),
                _flag(granted),
            )
            Consent.objects.update_or_create(
                student_id=student.pk,
                kind=kind,
                defaults={"granted": granted, "guardian": submission.guardian},
            )
    for decision in decisions:
        if decision.state != EnrollmentDecision.State.CONFIRMED:
            continue
        student = decision.student
        enrollment = partial(changes.add, "enrollment", student.sourced_id)
        # Next year's enrollment is news to the SIS even where it repeats this year's.
        enrollment("returning", "", _flag(decision.returning), always=True)
        if decision.returning:
            next_school = decision.next_school.sourced_id if decision.next_school else ""
            enrollment("next_school", student.school.sourced_id, next_school, always=True)
            enrollment("next_grade", student.grade, decision.next_grade, always=True)
        else:
            enrollment("leaving_reason", "", decision.leaving_reason)
            enrollment("leaving_destination", "", decision.leaving_destination)
    return ChangeRecord.objects.bulk_create(changes.rows)


def registration_approve(*, registration: Registration, actor: Any, note: str = "") -> None:
    """Staff approve a submitted registration: each child's decision is confirmed and
    the family's answers become the household's records, each changed field recorded
    for the SIS, in one transaction. The household's guardians are emailed after
    commit."""
    from workflow.tasks import registration_review_email_task

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
        changes: list[ChangeRecord] = []
        if submission is not None:
            changes = _answers_apply(
                locked,
                submission,
                approved_by=actor if actor is not None and actor.is_authenticated else None,
                approved_at=timezone.now(),
            )
        audit_record(
            action=AuditEvent.Action.CHANGE,
            obj=locked.household,
            actor=actor,
            detail={"approved_registration": locked.pk, "changes": len(changes)},
        )
        task_enqueue(registration_review_email_task, locked.pk, REVIEW_APPROVED)


def registration_withdraw(*, registration: Registration, actor: Any, note: str) -> None:
    """Staff withdraw a registration (the family left, or a duplicate household)."""
    with transaction.atomic():
        locked = _registration_lock(registration)
        _apply(locked, "withdraw", actor=actor, note=note)


def address_change_verify(*, request: AddressChangeRequest, actor: Any) -> list[ChangeRecord]:
    """Staff verify the new address once they have recorded the visit with at least
    two proofs seen (``address_visit_record``): the household's address becomes the
    new one, with a ``ChangeRecord`` for the SIS per changed field, in the same
    transaction as the request's transition. Bookings not yet used are cancelled;
    the household's guardians are emailed after commit."""
    from workflow.tasks import address_decision_email_task

    with transaction.atomic():
        locked = AddressChangeRequest.objects.select_for_update().get(pk=request.pk)
        if locked.visit_recorded_at is None or len(set(locked.proofs_seen)) < 2:
            raise TransitionRefused(
                gettext("Record the visit, with at least two proofs seen, before verifying.")
            )
        _apply(locked, "verify", actor=actor, note=", ".join(locked.proofs_seen), by=actor)
        household = Household.objects.select_for_update().get(pk=locked.household_id)
        before = household.address_lines
        approved_by = actor if actor is not None and actor.is_authenticated else None
        changes = []
        for name in ADDRESS_FIELDS:
            old = getattr(household, name) or ""
            new = getattr(locked, REQUEST_FIELD.get(name, name))
            if old != new:
                changes.append(
                    ChangeRecord(
                        registration_id=locked.registration_id,
                        record_type="household",
                        record_id=household.sourced_id,
                        field=name,
                        old_value=old,
                        new_value=new,
                        approved_by=approved_by,
                        approved_at=locked.decided_at,
                    )
                )
            setattr(household, name, new)
        household.save(update_fields=[*ADDRESS_FIELDS, "updated_at"])
        changes = ChangeRecord.objects.bulk_create(changes)
        _visits_release(locked)
        audit_record(
            action=AuditEvent.Action.CHANGE,
            obj=household,
            actor=actor,
            detail={
                "address_before": before,
                "address_after": household.address_lines,
                "address_request": locked.pk,
                "proofs_seen": locked.proofs_seen,
            },
        )
        task_enqueue(address_decision_email_task, locked.pk)
    return changes


def address_change_reject(*, request: AddressChangeRequest, actor: Any, reason: str) -> None:
    """Staff could not verify the new address; the household's address stays."""
    if not reason.strip():
        raise TransitionRefused(gettext("Please give the reason, for the family."))
    from workflow.tasks import address_decision_email_task

    with transaction.atomic():
        locked = AddressChangeRequest.objects.select_for_update().get(pk=request.pk)
        _apply(locked, "reject", actor=actor, note=reason.strip(), by=actor, reason=reason.strip())
        _visits_release(locked)
        task_enqueue(address_decision_email_task, locked.pk)


# -- visits for address verification ---------------------------------------------

PROOF_KIND_KEYS = [kind for kind, _label in PROOF_KINDS]


class VisitSlotTaken(TransitionRefused):
    """The slot filled up (or passed) before the family's booking was saved."""


def _visits_release(request: AddressChangeRequest) -> int:
    """Cancel the request's bookings that have not happened yet (walk-ins and slots
    to come), so that their places are free again."""
    now = timezone.now()
    return (
        AddressVisit.objects.filter(request=request, cancelled_at__isnull=True)
        .filter(Q(starts_at__isnull=True) | Q(starts_at__gt=now))
        .update(cancelled_at=now)
    )


def _visit_book(
    request: AddressChangeRequest, choice: VisitChoice, *, guardian: Guardian | None, fresh: bool
) -> AddressVisit | None:
    """Book ``choice`` for ``request``, whose row the caller has locked; a different
    booking it had is cancelled. Returns None when the booking stays as it was.
    ``fresh``: the request was just created, so it has no booking to look for."""
    from workflow.tasks import address_visit_email_task

    now = timezone.now()
    current = [] if fresh else list(request.visits.filter(cancelled_at__isnull=True))
    if any(v.school_id == choice.school.pk and v.starts_at == choice.starts_at for v in current):
        return None
    if current:
        AddressVisit.objects.filter(pk__in=[v.pk for v in current]).update(cancelled_at=now)
    if choice.starts_at is not None:
        if choice.starts_at <= now:
            raise VisitSlotTaken(gettext("This time has passed. Please choose another."))
        # The school's schedule row is locked while the slot is counted, so that two
        # families cannot both take its last place.
        schedule = VisitSchedule.objects.select_for_update().filter(school=choice.school).first()
        if schedule is None:
            list(School.objects.select_for_update().filter(pk=choice.school.pk).values_list("pk"))
        capacity = schedule.capacity if schedule is not None else DEFAULT_CAPACITY
        booked = AddressVisit.objects.filter(
            school=choice.school, starts_at=choice.starts_at, cancelled_at__isnull=True
        ).count()
        if booked >= capacity:
            raise VisitSlotTaken(gettext("This time was just taken. Please choose another."))
    visit = AddressVisit.objects.create(
        request=request,
        school=choice.school,
        starts_at=choice.starts_at,
        walk_in=choice.walk_in,
        booked_by=guardian,
    )
    task_enqueue(address_visit_email_task, visit.pk)
    return visit


def address_visit_book(
    *, request: AddressChangeRequest, choice: VisitChoice, guardian: Guardian | None
) -> AddressVisit | None:
    """Book the family's visit for an open address change: a slot of the school's
    office hours, or a walk-in. A different earlier booking is cancelled; a full
    slot raises ``VisitSlotTaken``. The family and the school office are emailed
    after commit. The wizard books through ``address_change_save``."""
    with transaction.atomic():
        locked = AddressChangeRequest.objects.select_for_update().get(pk=request.pk)
        if locked.state not in AddressChangeRequest.OPEN_STATES:
            raise TransitionRefused(gettext("This address change is no longer open."))
        return _visit_book(locked, choice, guardian=guardian, fresh=False)


def address_visit_record(
    *, request: AddressChangeRequest, actor: Any, proofs_seen: list[str]
) -> AddressChangeRequest:
    """Staff met the family and saw the originals of their proofs: record which kinds
    (at least two of ``PROOF_KINDS``), by whom and when. The address changes only
    when staff then verify it."""
    seen = set(proofs_seen)
    kinds = [kind for kind in PROOF_KIND_KEYS if kind in seen]
    if len(kinds) < 2:
        raise TransitionRefused(gettext("Record at least two proofs you saw."))
    with transaction.atomic():
        locked = AddressChangeRequest.objects.select_for_update().get(pk=request.pk)
        if locked.state not in AddressChangeRequest.OPEN_STATES:
            raise TransitionRefused(gettext("This address change is no longer open."))
        locked.proofs_seen = kinds
        locked.visit_recorded_at = timezone.now()
        locked.visit_recorded_by = actor
        locked.save(
            update_fields=["proofs_seen", "visit_recorded_at", "visit_recorded_by", "updated_at"]
        )
        audit_record(
            action=AuditEvent.Action.CHANGE,
            obj=locked,
            actor=actor,
            detail={"visit_recorded": True, "proofs_seen": kinds},
        )
    return locked


def visit_schedule_save(
    *,
    school: School,
    hours: list[tuple[int, datetime.time, datetime.time]],
    actor: Any,
    slot_minutes: int | None = None,
    capacity: int | None = None,
) -> VisitSchedule:
    """Set a school office's hours for visits, as (weekday, opens, closes), replacing
    the ones it had; and, when given, the minutes per visit and the families per
    slot. Visits already booked stay booked."""
    with transaction.atomic():
        schedule, _created = VisitSchedule.objects.select_for_update().get_or_create(school=school)
        if slot_minutes is not None:
            schedule.slot_minutes = slot_minutes
        if capacity is not None:
            schedule.capacity = capacity
        schedule.save(update_fields=["slot_minutes", "capacity"])
        OfficeHours.objects.filter(school=school).delete()
        OfficeHours.objects.bulk_create(
            OfficeHours(school=school, weekday=weekday, opens_at=opens, closes_at=closes)
            for weekday, opens, closes in sorted(hours)
        )
        audit_record(
            action=AuditEvent.Action.CHANGE,
            obj=schedule,
            actor=actor,
            detail={
                "slot_minutes": schedule.slot_minutes,
                "capacity": schedule.capacity,
                "hours": [
                    [weekday, opens.strftime("%H:%M"), closes.strftime("%H:%M")]
                    for weekday, opens, closes in sorted(hours)
                ],
            },
        )
    return schedule


def _household_recipients(household_id: int) -> list[tuple[Guardian, str]]:
    """Every guardian of the household with an address to write to."""
    recipients = []
    for guardian in Guardian.objects.filter(
        householdguardian__household_id=household_id, enabled=True
    ).select_related("user"):
        email = (guardian.user.email if guardian.user else "") or email_on_file(guardian)
        if email:
            recipients.append((guardian, email))
    return recipients


def _office_recipients(school: School) -> list[str]:
    """The email addresses of the school's office staff."""
    emails: list[str] = []
    for profile in StaffProfile.objects.filter(
        role=StaffProfile.Role.OFFICE, enabled=True, schools=school
    ).select_related("user"):
        email = (profile.user.email if profile.user else "") or profile.email
        if email and email not in emails:
            emails.append(email)
    return emails


def _mail_render(template: str, context: dict[str, Any]) -> tuple[str, str]:
    subject = render_to_string(f"workflow/email/{template}_subject.txt", context)
    body = render_to_string(f"workflow/email/{template}_message.txt", context)
    return " ".join(subject.split()), body


def _mail_context(**values: Any) -> dict[str, Any]:
    return {
        "district": settings.DISTRICT_NAME,
        "help_email": settings.DISTRICT_HELP_EMAIL,
        "help_phone": help_phone(),
        **values,
    }


def address_visit_email(*, visit_id: int) -> int:
    """Write to the household's guardians (each in their language) and to the office
    staff of the school that a visit is booked: when (or walk in), where, and the
    proofs to bring. Nothing is sent for a booking cancelled since, and nobody is
    written to twice about one booking. Returns how many messages were sent."""
    from registration.services import guardian_language

    visit = (
        AddressVisit.objects.select_related("school", "request__household", "booked_by")
        .filter(pk=visit_id)
        .first()
    )
    if visit is None or visit.cancelled_at is not None:
        return 0
    request = visit.request

    def context(**values: Any) -> dict[str, Any]:
        return _mail_context(
            visit=visit,
            request=request,
            household=request.household,
            school=visit.school,
            school_address=visit.school.address_lines,
            when=slot_label(visit.starts_at) if visit.starts_at else "",
            proof_kinds=[label for _kind, label in PROOF_KINDS],
            **values,
        )

    sent = 0
    for guardian, email in _household_recipients(request.household_id):
        with translation.override(guardian_language(guardian)):
            subject, body = _mail_render("visit_booked", context(guardian=guardian))
        sent += delivery_once(
            key=f"visit-booked:{visit.pk}:guardian-{guardian.pk}",
            send=partial(send_mail, subject, body, settings.DEFAULT_FROM_EMAIL, [email]),
        )
    office = _office_recipients(visit.school)
    if office:
        with translation.override(settings.LANGUAGE_CODE):
            subject, body = _mail_render(
                "visit_booked_office",
                context(
                    address_url=settings.SITE_URL.rstrip("/")
                    + reverse("staff_address", args=[request.pk])
                ),
            )
        sent += delivery_once(
            key=f"visit-booked:{visit.pk}:office",
            send=partial(send_mail, subject, body, settings.DEFAULT_FROM_EMAIL, office),
        )
    return sent


def address_decision_email(*, request_id: int) -> int:
    """Write to the household's guardians, each in their language, that staff
    verified their new address or could not (with the reason), each once. Returns
    how many messages were sent; none for a request that is not verified or
    rejected."""
    from registration.services import guardian_language

    request = AddressChangeRequest.objects.select_related("household").filter(pk=request_id).first()
    templates = {
        AddressChangeRequest.State.VERIFIED: "address_verified",
        AddressChangeRequest.State.REJECTED: "address_rejected",
    }
    if request is None or request.state not in templates:
        return 0
    sent = 0
    for guardian, email in _household_recipients(request.household_id):
        values = _mail_context(
            guardian=guardian,
            request=request,
            address=request.address_lines,
            reason=request.reason,
            home_url=settings.SITE_URL.rstrip("/") + "/home/",
        )
        with translation.override(guardian_language(guardian)):
            subject, body = _mail_render(templates[request.state], values)
        sent += delivery_once(
            key=f"address-{request.state}:{request.pk}:guardian-{guardian.pk}",
            send=partial(send_mail, subject, body, settings.DEFAULT_FROM_EMAIL, [email]),
        )
    return sent


# -- reminders -----------------------------------------------------------------------

# Reminders per Celery task: a task sends a batch over one mail-server connection.
REMINDER_BATCH = 200


def _reminder_recipients(household_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Per household, one recipient per enabled guardian with an email on file, with
    the address ``registration.selectors.email_on_file`` gives and the language
    ``registration.services.guardian_language`` gives, read for a whole batch of
    households in three queries. An address two guardians share is written to once."""
    members = list(
        HouseholdGuardian.objects.filter(household_id__in=household_ids, guardian__enabled=True)
        .order_by("household_id", "guardian__given_name", "guardian_id")
        .values_list(
            "household_id",
            "guardian_id",
            "guardian__given_name",
            "guardian__family_name",
            "guardian__language",
        )
    )
    email_of: dict[int, str] = {}
    for guardian_id, email in (
        ContactPoint.objects.filter(
            guardian_id__in={m[1] for m in members}, kind=ContactPoint.Kind.EMAIL
        )
        .order_by("guardian_id", "-roster_field", "position", "pk")
        .values_list("guardian_id", "email")
    ):
        email_of.setdefault(guardian_id, email)
    # A guardian who chose no language reads the language of their first household.
    household_language: dict[int, str] = {}
    for guardian_id, language in (
        HouseholdGuardian.objects.filter(
            guardian_id__in={
                m[1] for m in members if not product_language(m[4]) and m[1] in email_of
            }
        )
        .order_by("guardian_id", "household__sourced_id")
        .values_list("guardian_id", "household__language")
    ):
        if product_language(language):
            household_language.setdefault(guardian_id, language_or_default(language))
    recipients: dict[int, list[dict[str, Any]]] = {pk: [] for pk in household_ids}
    for household_id, guardian_id, given_name, family_name, language in members:
        email = email_of.get(guardian_id, "")
        written = recipients[household_id]
        if not email or email.lower() in (r["email"].lower() for r in written):
            continue
        language = product_language(language) or household_language.get(
            guardian_id, settings.LANGUAGE_CODE
        )
        written.append(
            {
                "guardian": guardian_id,
                "name": f"{given_name} {family_name}",
                "email": email,
                "language": language,
            }
        )
    return recipients


def reminders_send(
    *,
    campaign: Campaign,
    school_ids: Sequence[int],
    grades: Sequence[str],
    states: Sequence[str],
    actor: Any,
    batch: int = REMINDER_BATCH,
) -> int:
    """Queue a reminder email to every household of ``campaign`` whose registration
    is in ``states`` (not started, in progress) with a child at one of
    ``school_ids`` in one of ``grades`` (any school, any grade when empty), leaving
    out households reminded in the last ``REMINDER_MIN_DAYS`` days and those where
    no guardian has an email on file.

    Writes one ``Reminder`` per registration (its recipients, each guardian in their
    own language, and the household's language: its first recipient's) in batches,
    and one audit row for the send; after commit, a Celery task per batch emails
    them. Returns how many households will be written to.
    """
    from workflow.tasks import reminders_send_task

    if not states or not set(states) <= set(REMINDER_STATES):
        raise ValueError(f"reminders go to registrations in {REMINDER_STATES}, not {states}")
    if not campaign.is_running():
        raise TransitionRefused(gettext("Reminders are sent only while the campaign is running."))
    with transaction.atomic():
        # Sends for one campaign follow each other (two registrars at once, a double
        # click): the second one sees the first one's reminders and skips them.
        list(Campaign.objects.select_for_update().filter(pk=campaign.pk).values_list("pk"))
        due = list(
            reminders_due(
                campaign=campaign, school_ids=school_ids, grades=grades, states=states
            ).values_list("pk", "household_id")
        )
        queued: list[int] = []
        for start in range(0, len(due), batch):
            chunk = due[start : start + batch]
            recipients = _reminder_recipients([household_id for _pk, household_id in chunk])
            reminders = Reminder.objects.bulk_create(
                Reminder(
                    registration_id=pk,
                    sent_by=actor,
                    recipients=recipients[household_id],
                    language=recipients[household_id][0]["language"],
                )
                for pk, household_id in chunk
                if recipients[household_id]
            )
            ids = [reminder.pk for reminder in reminders]
            if ids:
                task_enqueue(reminders_send_task, ids)
                queued.extend(ids)
        audit_record(
            action=AuditEvent.Action.CREATE,
            object_type=Reminder._meta.label_lower,
            object_id=str(campaign.pk),
            actor=actor,
            detail={
                "campaign": campaign.pk,
                "school_ids": sorted(school_ids),
                "grades": sorted(grades),
                "states": sorted(states),
                "reminders": len(queued),
                "first_id": queued[0] if queued else None,
                "last_id": queued[-1] if queued else None,
            },
        )
    return len(queued)


def _reminder_message(
    reminder: Reminder, recipient: dict[str, Any], connection: Any
) -> EmailMessage:
    registration = reminder.registration
    campaign = registration.campaign
    context = _mail_context(
        name=recipient["name"],
        year=campaign.school_year.label,
        closes_on=campaign.closes_on,
        started=registration.state == Registration.State.IN_PROGRESS,
        register_url=settings.SITE_URL.rstrip("/") + "/register/",
    )
    with translation.override(recipient["language"]):
        subject, body = _mail_render("reminder", context)
    return EmailMessage(
        subject, body, settings.DEFAULT_FROM_EMAIL, [recipient["email"]], connection=connection
    )


def reminders_batch_send(*, reminder_ids: Sequence[int]) -> int:
    """Email the reminders of ``reminder_ids`` that are not sent yet, each to its
    recipients in their language, over one connection. Returns how many were sent.

    Each reminder is claimed before it is sent (``sent_at`` set by a compare-and-set
    update), so a task delivered twice, or two workers, send it once; a failed send
    releases the claim for the retry. A household that finished registering since
    the reminder was queued is not written to (its reminder stays unsent).
    """
    reminders = (
        Reminder.objects.filter(pk__in=reminder_ids, sent_at__isnull=True)
        .select_related("registration__campaign__school_year")
        .order_by("pk")
    )
    sent = 0
    with get_connection() as connection:
        for reminder in reminders:
            if reminder.registration.state not in REMINDER_STATES:
                continue
            claimed = Reminder.objects.filter(pk=reminder.pk, sent_at__isnull=True).update(
                sent_at=timezone.now()
            )
            if not claimed:
                continue
            try:
                connection.send_messages(
                    [_reminder_message(reminder, r, connection) for r in reminder.recipients]
                )
            except Exception:
                Reminder.objects.filter(pk=reminder.pk).update(sent_at=None)
                raise
            sent += 1
    return sent


def reminders_requeue(*, older_than: datetime.timedelta = datetime.timedelta(minutes=30)) -> int:
    """Queue again the reminders still unsent some time after they were written (the
    broker was down when they were queued, or a task gave up), as long as they are
    recent enough to count against ``REMINDER_MIN_DAYS``. Sending claims each one,
    so a reminder whose first task is only late is still sent once."""
    from workflow.tasks import reminders_send_task

    now = timezone.now()
    unsent = list(
        Reminder.objects.filter(
            sent_at__isnull=True,
            created_at__lte=now - older_than,
            created_at__gt=now - datetime.timedelta(days=settings.REMINDER_MIN_DAYS),
            registration__state__in=REMINDER_STATES,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for start in range(0, len(unsent), REMINDER_BATCH):
        reminders_send_task.delay(unsent[start : start + REMINDER_BATCH])
    return len(unsent)
