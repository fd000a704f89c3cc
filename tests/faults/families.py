"""Families of the sample district who answer the wizard (through the services, as the
wizard's steps save them) and sign."""

from __future__ import annotations

from registration.models import Guardian
from registration.services import guardian_account_create
from tests.conftest import PASSWORD
from workflow.models import Campaign, EnrollmentDecision, Registration, Submission
from workflow.services import Signature, registration_step_save, registration_submit


def household_answered(campaign: Campaign, sourced_id: str) -> tuple[Registration, Guardian]:
    """The household's registration with every step a submission needs saved as a
    draft (each child returning, every document accepted), and the guardian who
    signs: one with an account, given one when nobody has."""
    registration = Registration.objects.get(campaign=campaign, household__sourced_id=sourced_id)
    guardians = Guardian.objects.filter(householdguardian__household_id=registration.household_id)
    guardian = guardians.filter(user__isnull=False).order_by("pk").first()
    if guardian is None:
        guardian = guardians.order_by("pk").first()
        assert guardian is not None, sourced_id
        guardian_account_create(
            guardian=guardian, email=f"{sourced_id}@example.com", password=PASSWORD
        )
        guardian.refresh_from_db()
    for decision in EnrollmentDecision.objects.filter(registration=registration):
        registration_step_save(
            registration=registration,
            step=f"child-{decision.student_id}",
            data={},
            answers={
                "student": decision.student_id,
                "read_only": False,
                "returning": True,
                "next_school": decision.student.school_id,
                "next_grade": decision.student.grade,
                "leaving_reason": "",
                "leaving_destination": "",
                "health": {"allergies": "", "medications": "", "conditions": ""},
                "consents": {"media": False, "directory": True},
            },
            unchanged=False,
            user=guardian.user,
        )
    registration_step_save(
        registration=registration,
        step="acknowledgements",
        data={},
        answers={"accepted": list(campaign.acknowledgements.values_list("pk", flat=True))},
        unchanged=False,
        user=guardian.user,
    )
    return Registration.objects.get(pk=registration.pk), guardian


def household_submit(registration: Registration, guardian: Guardian) -> Submission:
    return registration_submit(
        registration=registration,
        signature=Signature(
            guardian=guardian,
            signed_name=guardian.full_name,
            ip_address="203.0.113.9",
            user_agent="fault test",
            language="en",
        ),
        content={"sections": []},
        user=guardian.user,
    )
