"""python manage.py purge_expired: proofs of residence, wizard drafts and activation
codes go once kept past their retention period, and nothing younger does."""

from __future__ import annotations

import datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from registration.models import ActivationCode, Guardian, Household
from tests.workflow.test_addresses import _add_proof, _request_of
from workflow.models import AddressChangeRequest, AddressProof, AuditEvent, RegistrationStep
from workflow.services import activation_code_issue


def _closed(request: AddressChangeRequest, state: str, days_ago: int) -> None:
    AddressChangeRequest.objects.filter(pk=request.pk).update(
        state=state, decided_at=timezone.now() - datetime.timedelta(days=days_ago)
    )


@pytest.fixture
def old_and_new(campaign, private_files, settings):
    """Two closed address changes with proofs (one decided long ago, one last
    week), an open one with an old proof, drafts of the running campaign, and codes
    spent long ago and lately."""
    settings.RETENTION_PROOF_DAYS = 30
    settings.RETENTION_DRAFT_DAYS = 90
    settings.RETENTION_CODE_DAYS = 30
    hh1 = Household.objects.get(sourced_id="hh-001")
    hh2 = Household.objects.get(sourced_id="hh-002")
    hh4 = Household.objects.get(sourced_id="hh-004")
    long_ago = _request_of(hh1)
    lately = _request_of(hh2)
    still_open = _request_of(hh4, days_old=200)
    old_proofs = [_add_proof(long_ago, "lease.pdf"), _add_proof(long_ago, "bill.pdf")]
    _add_proof(lately)
    _add_proof(still_open)
    _closed(long_ago, AddressChangeRequest.State.VERIFIED, days_ago=31)
    _closed(lately, AddressChangeRequest.State.REJECTED, days_ago=7)

    registration = hh1.registrations.get(campaign=campaign)
    RegistrationStep.objects.create(
        registration=registration, step="contacts", data={}, answers={"note": "asthma"}
    )
    jose, siobhan = (
        Guardian.objects.get(sourced_id="par-002"),
        Guardian.objects.get(sourced_id="par-003"),
    )
    old_code, _ = activation_code_issue(guardian=jose, channel="letter")
    activation_code_issue(guardian=jose, channel="email")  # revokes the letter's code
    ActivationCode.objects.filter(pk=old_code.pk).update(
        updated_at=timezone.now() - datetime.timedelta(days=45)
    )
    expired, _ = activation_code_issue(guardian=siobhan, channel="letter")
    ActivationCode.objects.filter(pk=expired.pk).update(
        expires_at=timezone.now() - datetime.timedelta(days=40)
    )
    return {
        "old_files": [Path(p.file.path) for p in old_proofs],
        "long_ago": long_ago,
        "campaign": campaign,
        "codes": {old_code.pk, expired.pk},
    }


def test_only_what_was_kept_past_its_period_goes(old_and_new, django_capture_on_commit_callbacks):
    assert all(path.exists() for path in old_and_new["old_files"])
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_expired", stdout=out)

    assert (
        "Removed 2 proofs of residence (1 address changes), 0 wizard drafts, 2 activation codes"
        in (out.getvalue())
    )
    # The old request's proofs and files are gone; the decision stays.
    assert not AddressProof.objects.filter(request=old_and_new["long_ago"]).exists()
    assert not any(path.exists() for path in old_and_new["old_files"])
    old_and_new["long_ago"].refresh_from_db()
    assert old_and_new["long_ago"].state == AddressChangeRequest.State.VERIFIED
    # Last week's decision and the open request keep theirs.
    assert AddressProof.objects.count() == 2
    # The running campaign's drafts stay; the spent and long-expired codes go.
    assert RegistrationStep.objects.count() == 1
    assert not ActivationCode.objects.filter(pk__in=old_and_new["codes"]).exists()
    assert ActivationCode.objects.filter(state=ActivationCode.State.ISSUED).count() == 1

    rows = AuditEvent.objects.filter(actor_label="purge_expired", action="delete")
    assert {(row.object_type, row.detail["removed"]) for row in rows} == {
        ("workflow.addressproof", 2),
        ("registration.activationcode", 2),
    }

    # Again: nothing more goes, nothing more is logged.
    out = StringIO()
    call_command("purge_expired", stdout=out)
    assert "Removed 0 proofs of residence (0 address changes), 0 wizard drafts, 0 activation" in (
        out.getvalue()
    )
    assert rows.count() == 2


def test_drafts_go_once_their_campaign_closed_long_enough(old_and_new):
    campaign = old_and_new["campaign"]
    campaign.opens_on = timezone.localdate() - datetime.timedelta(days=120)
    campaign.closes_on = timezone.localdate() - datetime.timedelta(days=91)
    campaign.save(update_fields=["opens_on", "closes_on"])
    call_command("purge_expired", stdout=StringIO())
    assert not RegistrationStep.objects.exists()
    assert AuditEvent.objects.filter(
        object_type="workflow.registrationstep", detail__removed=1
    ).exists()


def test_a_dry_run_counts_and_removes_nothing(old_and_new):
    out = StringIO()
    call_command("purge_expired", "--dry-run", stdout=out)
    assert "Would remove 2 proofs of residence" in out.getvalue()
    assert AddressProof.objects.count() == 4
    assert all(path.exists() for path in old_and_new["old_files"])
    assert ActivationCode.objects.filter(pk__in=old_and_new["codes"]).count() == 2
    assert not AuditEvent.objects.filter(actor_label="purge_expired").exists()
