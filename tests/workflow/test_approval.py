"""Approval writes the family's answers into the records; an address changes only
when staff verify it in person."""

from __future__ import annotations

import pytest

from registration.models import Consent, ContactPoint, EmergencyContact, Guardian, Household
from workflow.models import (
    AddressChangeRequest,
    EnrollmentDecision,
    Registration,
    TransitionLog,
)
from workflow.services import (
    Signature,
    TransitionRefused,
    address_change_reject,
    address_change_save,
    address_change_verify,
    address_visit_record,
    registration_approve,
    registration_step_save,
    registration_submit,
)


def _submitted(campaign, *, moved: bool = False):
    registration = Registration.objects.get(campaign=campaign, household__sourced_id="hh-001")
    guardian = Guardian.objects.get(sourced_id="par-002")
    maria = Guardian.objects.get(sourced_id="par-001")
    user = guardian.user

    def save(step, answers):
        registration_step_save(
            registration=registration,
            step=step,
            data={},
            answers=answers,
            unchanged=False,
            user=user,
        )

    save(
        "contacts",
        {
            "guardians": {
                str(maria.pk): {
                    "email": "maria.nunez@example.com",
                    "mobile": "+16505550199",
                    "home_phone": "",
                    "work_phone": "",
                }
            }
        },
    )
    save(
        "emergency",
        {"contacts": [{"name": "Tía Rosa", "relationship": "aunt", "phone": "+16505550111"}]},
    )
    if moved:
        address_change_save(
            registration=registration,
            guardian=guardian,
            data={},
            answers={
                "moved": True,
                "street1": "5 New Rd",
                "street2": "",
                "city": "Riverside",
                "state": "CA",
                "postal_code": "95210",
            },
            unchanged=False,
            uploads=[],
            remove_proof_ids=[],
            user=user,
        )
    for decision in EnrollmentDecision.objects.filter(registration=registration):
        save(
            f"child-{decision.student_id}",
            {
                "student": decision.student_id,
                "read_only": False,
                "returning": True,
                "next_school": decision.student.school_id,
                "next_grade": "05",
                "leaving_reason": "",
                "leaving_destination": "",
                "health": {"allergies": "Peanuts", "medications": "", "conditions": ""},
                "consents": {"media": False, "directory": True},
            },
        )
    save(
        "acknowledgements",
        {"accepted": list(campaign.acknowledgements.values_list("pk", flat=True))},
    )
    registration_submit(
        registration=registration,
        signature=Signature(
            guardian=guardian,
            signed_name=guardian.full_name,
            ip_address="127.0.0.1",
            user_agent="test",
            language="en",
        ),
        content={"sections": []},
        user=user,
    )
    return Registration.objects.get(pk=registration.pk)


def test_approval_confirms_decisions_and_writes_the_answers(campaign, registrar_user):
    registration = _submitted(campaign)
    registration_approve(registration=registration, actor=registrar_user)

    registration.refresh_from_db()
    assert registration.state == Registration.State.APPROVED
    decisions = EnrollmentDecision.objects.filter(registration=registration)
    assert decisions and all(d.state == EnrollmentDecision.State.CONFIRMED for d in decisions)
    maria = Guardian.objects.get(sourced_id="par-001")
    assert set(maria.contact_points.values_list("kind", "email")) >= {
        (ContactPoint.Kind.EMAIL, "maria.nunez@example.com")
    }
    assert [
        str(c.phone) for c in EmergencyContact.objects.filter(household=registration.household)
    ] == ["+16505550111"]
    for decision in decisions:
        assert decision.student.health.allergies == "Peanuts"
        assert Consent.objects.get(student=decision.student, kind="media").granted is False
    logs = TransitionLog.objects.filter(
        object_type="workflow.registration", object_id=str(registration.pk)
    )
    assert list(logs.values_list("transition", flat=True)) == ["start", "submit", "approve"]


def test_an_open_address_change_blocks_approval_until_verified(campaign, registrar_user):
    registration = _submitted(campaign, moved=True)
    household = Household.objects.get(pk=registration.household_id)
    before = household.street1
    request = AddressChangeRequest.objects.get(household=household)
    assert request.state == AddressChangeRequest.State.AWAITING_VISIT
    assert household.street1 == before  # not until the visit

    with pytest.raises(TransitionRefused):
        registration_approve(registration=registration, actor=registrar_user)
    assert Registration.objects.get(pk=registration.pk).state == Registration.State.SUBMITTED

    with pytest.raises(TransitionRefused):
        address_change_verify(request=request, actor=registrar_user)  # no visit recorded
    with pytest.raises(TransitionRefused):
        address_visit_record(request=request, actor=registrar_user, proofs_seen=["lease"])
    household.refresh_from_db()
    assert household.street1 == before

    address_visit_record(request=request, actor=registrar_user, proofs_seen=["lease", "utility"])
    household.refresh_from_db()
    assert household.street1 == before  # not until verified
    address_change_verify(request=request, actor=registrar_user)
    household.refresh_from_db()
    assert household.street1 == "5 New Rd" and household.postal_code == "95210"
    registration_approve(registration=registration, actor=registrar_user)
    assert Registration.objects.get(pk=registration.pk).state == Registration.State.APPROVED


def test_a_rejected_address_change_leaves_the_address(campaign, registrar_user):
    registration = _submitted(campaign, moved=True)
    household = Household.objects.get(pk=registration.household_id)
    request = AddressChangeRequest.objects.get(household=household)
    with pytest.raises(TransitionRefused):
        address_change_reject(request=request, actor=registrar_user, reason=" ")
    address_change_reject(request=request, actor=registrar_user, reason="The lease is not signed.")
    request.refresh_from_db()
    household.refresh_from_db()
    assert request.state == AddressChangeRequest.State.REJECTED
    assert request.reason == "The lease is not signed."
    assert household.street1 == "1450 Alameda de las Pulgas"
