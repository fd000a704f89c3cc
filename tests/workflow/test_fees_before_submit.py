"""A campaign that requires its fees paid first refuses to submit until they are
paid or waived, and changes nothing when it refuses."""

from __future__ import annotations

import pytest
from django.utils import translation

from payments.models import Fee
from payments.services import fee_assess, fee_waive
from registration.models import Household, HouseholdStudent
from tests.workflow.test_approval import _submitted
from workflow.models import Registration, Submission
from workflow.services import TransitionRefused


@pytest.fixture
def registration_fee(campaign):
    campaign.fees_before_submit = True
    campaign.save(update_fields=["fees_before_submit"])
    return Fee.objects.create(
        kind=Fee.Kind.REQUIRED, title="Registration fee", amount_cents=2500, campaign=campaign
    )


def test_the_amount_still_due_is_written_for_the_readers_language(campaign, registration_fee):
    with translation.override("zh-hans"), pytest.raises(TransitionRefused, match=r"US\$50\.00"):
        _submitted(campaign)


def test_unpaid_required_fees_stop_the_submission(campaign, registration_fee, registrar_user):
    with pytest.raises(TransitionRefused, match=r"\$50\.00 is still due"):
        _submitted(campaign)  # two children, 25.00 each
    registration = Registration.objects.get(campaign=campaign, household__sourced_id="hh-001")
    assert registration.state == Registration.State.IN_PROGRESS
    assert not Submission.objects.exists()

    household = Household.objects.get(sourced_id="hh-001")
    for row in HouseholdStudent.objects.filter(household=household).select_related("student"):
        fee_assess(
            household=household, student=row.student, fee=registration_fee, actor=registrar_user
        )
        fee_waive(
            household=household,
            student=row.student,
            fee=registration_fee,
            actor=registrar_user,
            note="free meals",
        )
    assert _submitted(campaign).state == Registration.State.SUBMITTED


def test_fees_do_not_stop_a_campaign_that_does_not_require_them(campaign, registrar_user):
    Fee.objects.create(
        kind=Fee.Kind.REQUIRED, title="Registration fee", amount_cents=2500, campaign=campaign
    )
    assert _submitted(campaign).state == Registration.State.SUBMITTED
