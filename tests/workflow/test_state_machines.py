"""The state machines, driven through ``workflow.services`` as the pages drive them.

A refused transition raises ``TransitionRefused`` and changes nothing: neither the
state in the database nor the log. A transition that happens writes exactly one
``TransitionLog`` row saying from where, to where and who.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Max

from registration.models import (
    ActivationCode,
    Guardian,
    Household,
    HouseholdStudent,
    School,
    Student,
)
from workflow.models import (
    Acknowledgement,
    AcknowledgementAcceptance,
    AddressChangeRequest,
    Campaign,
    EnrollmentDecision,
    Registration,
    Submission,
    TransitionLog,
)
from workflow.services import (
    RegistrationClosed,
    Signature,
    TransitionRefused,
    _apply,
    acknowledgement_retire,
    acknowledgement_save,
    activation_code_issue,
    activation_code_redeem,
    activation_code_revoke,
    address_change_save,
    address_change_verify,
    address_visit_record,
    campaign_open,
    registration_approve,
    registration_return,
    registration_step_save,
    registration_submit,
    registration_withdraw,
)

NEW_ADDRESS = {
    "moved": True,
    "street1": "5 New Rd",
    "street2": "",
    "city": "Riverside",
    "state": "CA",
    "postal_code": "95210",
}
HANDBOOK_V1 = {
    "title_en": "Family handbook",
    "body_en": "Attendance, behaviour and safety rules.",
    "title_es": "Manual para familias",
    "body_es": "Reglas de asistencia, conducta y seguridad.",
    "title_zh": "家庭手册",
    "body_zh": "出勤、行为和安全规定。",
}

# -- the household and its answers ----------------------------------------------------


@pytest.fixture(autouse=True)
def _jose_signs_in(guardian_user):
    """José answers and signs with his own account in every test (the actor logged)."""
    return guardian_user


def _registration(campaign: Campaign, household: str = "hh-001") -> Registration:
    return Registration.objects.get(campaign=campaign, household__sourced_id=household)


def _jose() -> Guardian:
    """José Ángel García, the guardian_user, who signs for hh-001."""
    return Guardian.objects.get(sourced_id="par-002")


def _save(registration: Registration, step: str, answers: dict[str, Any]) -> None:
    registration_step_save(
        registration=registration,
        step=step,
        data={},
        answers=answers,
        unchanged=False,
        user=_jose().user,
    )


def _decisions(registration: Registration) -> list[EnrollmentDecision]:
    return list(EnrollmentDecision.objects.filter(registration=registration).order_by("pk"))


def _answer(
    registration: Registration,
    *,
    children: list[EnrollmentDecision] | None = None,
    accepted: list[int] | None = None,
) -> None:
    """Answer the child steps (every child unless ``children``) and accept the
    documents (every current one unless ``accepted``)."""
    for decision in _decisions(registration) if children is None else children:
        _save(
            registration,
            f"child-{decision.student_id}",
            {
                "student": decision.student_id,
                "read_only": False,
                "returning": True,
                "next_school": decision.student.school_id,
                "next_grade": "05",
                "leaving_reason": "",
                "leaving_destination": "",
                "health": {"allergies": "", "medications": "", "conditions": ""},
                "consents": {"media": True},
            },
        )
    if accepted is None:
        accepted = list(
            Acknowledgement.objects.filter(
                campaign_id=registration.campaign_id, is_current=True
            ).values_list("pk", flat=True)
        )
    _save(registration, "acknowledgements", {"accepted": accepted})


def _move(registration: Registration) -> AddressChangeRequest | None:
    jose = _jose()
    return address_change_save(
        registration=registration,
        guardian=jose,
        data={},
        answers=NEW_ADDRESS,
        unchanged=False,
        uploads=[],
        remove_proof_ids=[],
        user=jose.user,
    )


def _submit(registration: Registration) -> Submission:
    jose = _jose()
    return registration_submit(
        registration=registration,
        signature=Signature(
            guardian=jose,
            signed_name=jose.full_name,
            ip_address="203.0.113.7",
            user_agent="test",
            language="en",
        ),
        content={"sections": []},
        user=jose.user,
    )


def _submitted(campaign: Campaign) -> Registration:
    registration = _registration(campaign)
    _answer(registration)
    _submit(registration)
    return Registration.objects.get(pk=registration.pk)


# -- the log --------------------------------------------------------------------------


def _log_mark() -> int:
    return TransitionLog.objects.aggregate(last=Max("pk"))["last"] or 0


def _logged_since(mark: int) -> list[tuple[str, str, str, str, str, int | None]]:
    """(object, transition, source, target, actor) of every row written after ``mark``."""
    return [
        (f"{r.object_type}:{r.object_id}", r.transition, r.source, r.target, r.actor_id)
        for r in TransitionLog.objects.filter(pk__gt=mark).order_by("pk")
    ]


def _key(obj: Any) -> str:
    return f"{obj._meta.label_lower}:{obj.pk}"


def _assert_refused(obj: Any, attempt: Callable[[], Any]) -> TransitionRefused:
    """``attempt`` raises TransitionRefused, and neither ``obj``'s state in the
    database nor the log changed."""
    model = type(obj)
    state = model.objects.get(pk=obj.pk).state
    mark = _log_mark()
    with pytest.raises(TransitionRefused) as refused:
        attempt()
    assert model.objects.get(pk=obj.pk).state == state
    assert _logged_since(mark) == []
    return refused.value


# -- refused transitions ------------------------------------------------------------


def test_a_registration_not_started_cannot_be_submitted(campaign):
    registration = _registration(campaign)
    assert registration.state == Registration.State.NOT_STARTED

    refused = _assert_refused(registration, lambda: _submit(registration))

    assert isinstance(refused, RegistrationClosed)
    assert not Submission.objects.filter(registration=registration).exists()
    assert not TransitionLog.objects.filter(object_id=str(registration.pk)).exists()


def test_a_submitted_registration_cannot_be_submitted_again(campaign):
    registration = _submitted(campaign)
    assert registration.state == Registration.State.SUBMITTED
    accepted = AcknowledgementAcceptance.objects.filter(registration=registration).count()

    refused = _assert_refused(registration, lambda: _submit(registration))

    assert isinstance(refused, RegistrationClosed)
    assert Submission.objects.filter(registration=registration).count() == 1
    assert AcknowledgementAcceptance.objects.filter(registration=registration).count() == accepted


def test_a_registration_in_progress_cannot_be_approved(campaign, registrar_user):
    registration = _registration(campaign)
    _answer(registration)
    assert Registration.objects.get(pk=registration.pk).state == Registration.State.IN_PROGRESS

    def approve_through_apply() -> None:
        with transaction.atomic():
            locked = Registration.objects.select_for_update().get(pk=registration.pk)
            _apply(locked, "approve", actor=registrar_user)

    _assert_refused(registration, approve_through_apply)
    _assert_refused(
        registration,
        lambda: registration_approve(registration=registration, actor=registrar_user),
    )
    assert all(d.state == EnrollmentDecision.State.PENDING for d in _decisions(registration))


def test_a_registration_in_progress_cannot_be_returned(campaign, registrar_user):
    registration = _registration(campaign)
    _answer(registration)

    _assert_refused(
        registration,
        lambda: registration_return(
            registration=registration, actor=registrar_user, comment="Please check the phone."
        ),
    )
    registration.refresh_from_db()
    assert registration.return_comment == ""


def test_an_approved_registration_cannot_be_withdrawn(campaign, registrar_user):
    registration = _submitted(campaign)
    registration_approve(registration=registration, actor=registrar_user)

    _assert_refused(
        registration,
        lambda: registration_withdraw(registration=registration, actor=registrar_user, note="x"),
    )


def test_a_pending_decision_cannot_be_confirmed(campaign, registrar_user):
    decision = _decisions(_registration(campaign))[0]

    _assert_refused(decision, lambda: _apply(decision, "confirm", actor=registrar_user))

    decision = EnrollmentDecision.objects.get(pk=decision.pk)
    assert decision.state == EnrollmentDecision.State.PENDING
    assert decision.confirmed_at is None


def test_an_address_change_not_awaiting_its_visit_cannot_be_verified(campaign, registrar_user):
    registration = _registration(campaign)
    request = _move(registration)
    assert request is not None and request.state == AddressChangeRequest.State.REQUESTED
    household = Household.objects.get(pk=registration.household_id)

    # The visit can be recorded before the family submits; verifying waits for it.
    address_visit_record(request=request, actor=registrar_user, proofs_seen=["lease", "utility"])
    request.refresh_from_db()
    _assert_refused(
        request,
        lambda: address_change_verify(request=request, actor=registrar_user),
    )

    assert Household.objects.get(pk=household.pk).address_lines == household.address_lines
    request.refresh_from_db()
    assert request.decided_at is None and request.decided_by is None


def test_a_revoked_activation_code_cannot_be_redeemed(sample_district, guardian_user):
    code, _clear = activation_code_issue(guardian=_jose(), channel="letter")
    activation_code_revoke(code=code, actor=None, note="lost letter")

    _assert_refused(code, lambda: activation_code_redeem(code=code, user=guardian_user))


# -- every transition logs once -------------------------------------------------------


def test_each_transition_of_a_registration_writes_one_log_row(
    campaign, guardian_user, registrar_user
):
    registration = _registration(campaign)
    decisions = _decisions(registration)
    jose, registrar = guardian_user.pk, registrar_user.pk
    reg = _key(registration)

    mark = _log_mark()
    _save(registration, "contacts", {"guardians": {}})
    assert _logged_since(mark) == [(reg, "start", "not_started", "in_progress", jose)]

    mark = _log_mark()
    _save(registration, "preferences", {"guardians": {}})
    request = _move(registration)
    assert request is not None
    assert _logged_since(mark) == [(_key(request), "request", "", "requested", jose)]

    mark = _log_mark()
    _answer(registration)
    _submit(registration)
    assert _logged_since(mark) == [
        *((_key(d), "mark_returning", "pending", "returning", jose) for d in decisions),
        (_key(request), "await_visit", "requested", "awaiting_visit", jose),
        (reg, "submit", "in_progress", "submitted", jose),
    ]

    mark = _log_mark()
    registration_return(registration=registration, actor=registrar_user, comment="Check Mateo.")
    assert _logged_since(mark) == [(reg, "return_for_changes", "submitted", "returned", registrar)]

    mark = _log_mark()
    _answer(registration)
    assert _logged_since(mark) == [(reg, "reopen", "returned", "in_progress", jose)]

    mark = _log_mark()
    _submit(registration)
    assert _logged_since(mark) == [
        *((_key(d), "mark_returning", "returning", "returning", jose) for d in decisions),
        (reg, "submit", "in_progress", "submitted", jose),
    ]

    address_visit_record(request=request, actor=registrar_user, proofs_seen=["lease", "utility"])
    mark = _log_mark()
    address_change_verify(request=request, actor=registrar_user)
    assert _logged_since(mark) == [
        (_key(request), "verify", "awaiting_visit", "verified", registrar)
    ]

    mark = _log_mark()
    registration_approve(registration=registration, actor=registrar_user)
    assert _logged_since(mark) == [
        (reg, "approve", "submitted", "approved", registrar),
        *((_key(d), "confirm", "returning", "confirmed", registrar) for d in decisions),
    ]
    assert Submission.objects.filter(registration=registration).count() == 2


def test_withdrawing_and_cancelling_write_one_log_row_each(campaign, registrar_user):
    other = _registration(campaign, "hh-002")
    mark = _log_mark()
    registration_withdraw(registration=other, actor=registrar_user, note="moved away")
    assert _logged_since(mark) == [
        (_key(other), "withdraw", "not_started", "withdrawn", registrar_user.pk)
    ]

    registration = _registration(campaign)
    request = _move(registration)
    assert request is not None
    jose = _jose()
    mark = _log_mark()
    address_change_save(
        registration=registration,
        guardian=jose,
        data={},
        answers={"moved": False},
        unchanged=True,
        uploads=[],
        remove_proof_ids=[],
        user=jose.user,
    )
    assert _logged_since(mark) == [
        (_key(request), "cancel", "requested", "cancelled", jose.user.pk)
    ]


def test_each_transition_of_an_activation_code_writes_one_log_row(sample_district, registrar_user):
    jose = _jose()
    mark = _log_mark()
    first, _clear = activation_code_issue(guardian=jose, channel="letter", issued_by=registrar_user)
    assert _logged_since(mark) == [(_key(first), "issue", "", "issued", registrar_user.pk)]

    mark = _log_mark()
    second, _clear = activation_code_issue(guardian=jose, channel="email", issued_by=registrar_user)
    assert _logged_since(mark) == [
        (_key(first), "revoke", "issued", "revoked", registrar_user.pk),
        (_key(second), "issue", "", "issued", registrar_user.pk),
    ]

    mark = _log_mark()
    activation_code_revoke(code=second, actor=registrar_user, note="wrong address")
    assert _logged_since(mark) == [(_key(second), "revoke", "issued", "revoked", registrar_user.pk)]
    assert ActivationCode.objects.get(pk=second.pk).state == ActivationCode.State.REVOKED


# -- what submitting requires -------------------------------------------------------


def _assert_nothing_submitted(registration: Registration) -> None:
    registration.refresh_from_db()
    assert registration.state == Registration.State.IN_PROGRESS
    assert registration.submitted_at is None
    assert not Submission.objects.filter(registration=registration).exists()
    assert not AcknowledgementAcceptance.objects.filter(registration=registration).exists()
    for decision in _decisions(registration):
        assert decision.state == EnrollmentDecision.State.PENDING
        assert decision.returning is None and decision.next_school is None
        assert decision.decided_at is None


def test_submitting_is_refused_while_a_child_is_undecided(campaign):
    registration = _registration(campaign)
    decided, _undecided = _decisions(registration)
    _answer(registration, children=[decided])
    mark = _log_mark()

    with pytest.raises(TransitionRefused, match="decide for every child"):
        _submit(registration)

    # The decided child was marked returning inside the refused transaction: undone.
    _assert_nothing_submitted(registration)
    assert _logged_since(mark) == []


def test_submitting_is_refused_until_every_required_document_is_accepted(campaign):
    registration = _registration(campaign)
    optional = Acknowledgement.objects.get(campaign=campaign, key="photo-day")
    _answer(registration, accepted=[optional.pk])
    mark = _log_mark()

    with pytest.raises(TransitionRefused, match="accept every required document"):
        _submit(registration)

    _assert_nothing_submitted(registration)
    assert _logged_since(mark) == []


def test_a_new_version_of_a_required_document_must_be_accepted_again(campaign, registrar_user):
    registration = _registration(campaign)
    _answer(registration)  # accepts version 1 of the handbook
    acknowledgement_save(
        campaign=campaign,
        key="handbook",
        texts={**HANDBOOK_V1, "body_en": "Attendance, behaviour, safety and phone rules."},
        required=True,
        position=1,
        actor=registrar_user,
    )

    with pytest.raises(TransitionRefused, match="accept every required document"):
        _submit(registration)
    _assert_nothing_submitted(registration)

    _answer(registration)  # the current versions, version 2 of the handbook among them
    _submit(registration)
    accepted = AcknowledgementAcceptance.objects.filter(registration=registration)
    assert sorted(accepted.values_list("acknowledgement__key", "acknowledgement__version")) == [
        ("handbook", 2),
        ("photo-day", 1),
    ]


# -- campaigns and documents ----------------------------------------------------------


def _per_household_and_child(campaign: Campaign) -> tuple[list[int], list[int]]:
    return (
        sorted(
            Registration.objects.filter(campaign=campaign).values_list("household_id", flat=True)
        ),
        sorted(
            EnrollmentDecision.objects.filter(campaign=campaign).values_list(
                "student_id", flat=True
            )
        ),
    )


def test_opening_a_campaign_twice_creates_nothing_twice(campaign, registrar_user):
    households, children = _per_household_and_child(campaign)
    assert households and children
    opened_at = campaign.opened_at

    again = campaign_open(campaign=campaign, actor=registrar_user)

    assert _per_household_and_child(campaign) == (households, children)
    assert (again.registrations, again.decisions) == (0, 0)
    campaign.refresh_from_db()
    assert campaign.opened_at == opened_at


def test_opening_a_campaign_again_adds_only_the_new_child(campaign, registrar_user):
    households, children = _per_household_and_child(campaign)
    household = Household.objects.get(sourced_id="hh-001")
    newcomer = Student.objects.create(
        sourced_id="stu-new",
        given_name="Lucía",
        family_name="García Núñez",
        grade="KG",
        school=School.objects.get(sourced_id="sch-elem"),
        birth_date=datetime.date(2022, 3, 4),
    )
    HouseholdStudent.objects.create(household=household, student=newcomer, is_primary=True)

    again = campaign_open(campaign=campaign, actor=registrar_user)

    assert (again.registrations, again.decisions) == (0, 1)
    assert _per_household_and_child(campaign) == (households, sorted([*children, newcomer.pk]))
    decision = EnrollmentDecision.objects.get(campaign=campaign, student=newcomer)
    assert decision.registration == _registration(campaign)


def test_opening_a_campaign_writes_its_rows_in_a_few_statements_whatever_the_size(
    campaign, registrar_user, django_assert_max_num_queries
):
    """Registrations and decisions are inserted by the database from the records, not
    made one by one: a million students open in the same few statements. A student
    in two households has one decision, on the primary household's registration;
    a disabled student has none."""
    from workflow.models import Campaign

    year = campaign.school_year
    year.pk = year.id = None
    year.sourced_id += "-next"
    year.save()
    Student.objects.filter(sourced_id="stu-002").update(enabled=False)
    fresh = Campaign.objects.create(
        school_year=year, opens_on=campaign.opens_on, closes_on=campaign.closes_on
    )
    with django_assert_max_num_queries(8):
        opened = campaign_open(campaign=fresh, actor=registrar_user)
    households, children = _per_household_and_child(fresh)
    assert opened.registrations == len(households) and opened.decisions == len(children)
    enabled = Student.objects.filter(enabled=True, households__isnull=False).distinct()
    assert sorted(enabled.values_list("pk", flat=True)) == children
    assert not Student.objects.get(sourced_id="stu-002").decisions.filter(campaign=fresh)
    for membership in HouseholdStudent.objects.filter(is_primary=True, student__enabled=True):
        decision = EnrollmentDecision.objects.get(campaign=fresh, student=membership.student)
        assert decision.registration.household_id == membership.household_id
        assert decision.state == "pending" and decision.registration.state == "not_started"
    fresh.refresh_from_db()
    assert fresh.opened_at is not None


def test_changing_a_documents_text_adds_a_version_and_keeps_the_first(campaign, registrar_user):
    first = Acknowledgement.objects.get(campaign=campaign, key="handbook")
    registration = _submitted(campaign)
    acceptance = AcknowledgementAcceptance.objects.get(acknowledgement=first)

    second = acknowledgement_save(
        campaign=campaign,
        key="handbook",
        texts={**HANDBOOK_V1, "body_es": "Reglas de asistencia, conducta, seguridad y teléfonos."},
        required=True,
        position=1,
        actor=registrar_user,
    )

    assert (second.version, second.is_current) == (2, True)
    first.refresh_from_db()
    assert (first.version, first.is_current) == (1, False)
    assert first.body_es == HANDBOOK_V1["body_es"]
    assert second.body_es.endswith("teléfonos.")
    assert AcknowledgementAcceptance.objects.get(pk=acceptance.pk).acknowledgement_id == first.pk
    assert AcknowledgementAcceptance.objects.filter(registration=registration).count() == 2

    same = acknowledgement_save(
        campaign=campaign,
        key="handbook",
        texts={**HANDBOOK_V1, "body_es": second.body_es},
        required=False,
        position=3,
        actor=registrar_user,
    )
    assert same.pk == second.pk
    assert Acknowledgement.objects.filter(campaign=campaign, key="handbook").count() == 2
    second.refresh_from_db()
    assert (second.required, second.position) == (False, 3)


def test_a_retired_document_brought_back_gets_the_next_version(campaign, registrar_user):
    first = Acknowledgement.objects.get(campaign=campaign, key="photo-day")
    acknowledgement_retire(acknowledgement=first, actor=registrar_user)
    assert not Acknowledgement.objects.filter(campaign=campaign, key="photo-day", is_current=True)

    back = acknowledgement_save(
        campaign=campaign,
        key="photo-day",
        texts={
            "title_en": first.title_en,
            "body_en": first.body_en,
            "title_es": first.title_es,
            "body_es": first.body_es,
            "title_zh": first.title_zh,
            "body_zh": first.body_zh,
        },
        required=False,
        position=2,
        actor=registrar_user,
    )

    assert (back.version, back.is_current) == (2, True)
    first.refresh_from_db()
    assert (first.version, first.is_current) == (1, False)


# -- state fields ------------------------------------------------------------------------


def test_a_state_field_cannot_be_assigned(campaign, registrar_user):
    registration = _registration(campaign)
    request = _move(registration)
    code, _clear = activation_code_issue(guardian=_jose(), channel="letter")
    records = [
        (Registration.objects.get(pk=registration.pk), Registration.State.APPROVED),
        (_decisions(registration)[0], EnrollmentDecision.State.CONFIRMED),
        (AddressChangeRequest.objects.get(pk=request.pk), AddressChangeRequest.State.VERIFIED),
        (ActivationCode.objects.get(pk=code.pk), ActivationCode.State.REDEEMED),
    ]
    for record, target in records:
        before = record.state
        with pytest.raises(AttributeError):
            record.state = target
        assert record.state == before
        assert type(record).objects.get(pk=record.pk).state == before
