"""PostgreSQL restarts while a guardian's signature is being saved: the guardian gets
the error page (an error id, "try again"), the wizard's drafts are intact, nothing of
the submission was written, and trying again submits once.

The restart is real (``pg_ctl restart``), in the middle of ``registration_submit``'s
transaction, on a cluster of the test's own holding a copy of the test database: the
shared test cluster serves other tests at the same time."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.urls import reverse

from documents.models import Confirmation
from outbox.models import OutboxMessage
from tests.conftest import sign_in
from tests.faults.processes import database_copy_on_own_cluster
from tests.workflow.test_submit_concurrency import SUBMITTED, _StepForm, _walk_to_review
from workflow.models import (
    AcknowledgementAcceptance,
    EnrollmentDecision,
    Registration,
    RegistrationStep,
    Submission,
    TransitionLog,
)

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


def _drafts(registration: Registration) -> list[tuple[str, object]]:
    return list(
        RegistrationStep.objects.filter(registration=registration)
        .order_by("step")
        .values_list("step", "answers")
    )


def _signed(client, review_url: str) -> dict[str, list[str] | str]:
    page = client.get(review_url)
    assert page.status_code == 200
    data: dict[str, list[str] | str] = {
        name: values for name, values in _StepForm(page.content.decode()).fields.items() if values
    }
    data["review-signed_name"] = "José Ángel García"
    data["review-attest"] = "on"
    return data


def test_a_restart_during_the_submission_shows_an_error_and_keeps_the_draft(
    client, guardian_user, campaign, caplog
):
    registration = Registration.objects.get(campaign=campaign, household__sourced_id="hh-001")
    sign_in(client, guardian_user)
    _walk_to_review(client, registration)
    review_url = reverse("registration_step", kwargs={"pk": registration.pk, "step": "review"})

    with database_copy_on_own_cluster() as restart:
        drafts = _drafts(registration)
        assert len(drafts) >= 5
        data = _signed(client, review_url)
        create = Submission.objects.create
        restarted: list[str] = []

        def restart_then_create(**fields):
            # Decisions, acceptances, log rows and the registration's state are
            # written in the open transaction by now.
            assert connection.in_atomic_block
            restart()
            restarted.append(connection.settings_dict["PORT"])
            return create(**fields)

        client.raise_request_exception = False
        with mock.patch.object(Submission.objects, "create", side_effect=restart_then_create):
            response = client.post(review_url, data)
        assert restarted, "the submission never reached its last write"

        assert response.status_code == 500
        page = response.content.decode()
        assert "Something went wrong" in page
        assert "please go back and try again in a few minutes" in page
        error_id = re.search(r"<strong>([0-9A-F]{5}-[0-9A-F]{5})</strong>", page)
        assert error_id is not None
        assert "OperationalError" not in page and "Traceback" not in page
        assert f"error {error_id.group(1)}: OperationalError on POST" in caplog.text

        # Nothing of the submission; the drafts as they were.
        registration.refresh_from_db()
        assert registration.state == Registration.State.IN_PROGRESS
        assert registration.versions == 0
        assert not Submission.objects.exists()
        assert not AcknowledgementAcceptance.objects.exists()
        assert set(
            EnrollmentDecision.objects.filter(registration=registration).values_list(
                "state", flat=True
            )
        ) == {EnrollmentDecision.State.PENDING}
        assert not TransitionLog.objects.filter(transition="submit").exists()
        assert not OutboxMessage.objects.exists()
        assert _drafts(registration) == drafts

        # The guardian goes back to the review, signs again, and it is submitted once.
        client.raise_request_exception = True
        response = client.post(review_url, _signed(client, review_url))
        assert response.status_code == 302
        assert response.url == reverse("registration_status", kwargs={"pk": registration.pk})
        assert SUBMITTED in [str(m) for m in get_messages(response.wsgi_request)]
        registration.refresh_from_db()
        assert registration.state == Registration.State.SUBMITTED
        assert Submission.objects.filter(registration=registration).count() == 1
        assert Confirmation.objects.count() == 1
