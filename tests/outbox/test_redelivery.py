"""Celery delivers a task at least once: a worker that dies before acknowledging it,
or a publish repeated by the outbox, runs it again. Each task that renders a
document or sends an email does it once however often it runs."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core import mail

from documents.models import Confirmation
from documents.services import _recipients
from documents.tasks import confirmation_send_task
from outbox.models import DeliveryClaim
from registration.models import School
from tests.workflow.test_approval import _submitted
from workflow.models import AddressChangeRequest, AddressVisit, Submission
from workflow.services import (
    REVIEW_APPROVED,
    address_change_reject,
    address_change_verify,
    address_visit_book,
    address_visit_record,
    registration_approve,
)
from workflow.tasks import (
    address_decision_email_task,
    address_visit_email_task,
    registration_review_email_task,
)
from workflow.visits import VisitChoice

pytestmark = pytest.mark.usefixtures("guardian_user")


def _deliver(task, *args):
    """One delivery of ``task``, as a worker runs it; its result."""
    return task.apply(args=args, throw=True).get()


@pytest.fixture
def submission(campaign):
    registration = _submitted(campaign)
    return Submission.objects.get(registration=registration)


def test_a_confirmation_delivered_twice_is_rendered_once_and_emailed_once(submission):
    recipients = [email for _guardian, email in _recipients(submission)]
    assert recipients == ["jose.garcia@example.com"]

    assert _deliver(confirmation_send_task, submission.pk) is True
    assert _deliver(confirmation_send_task, submission.pk) is False

    confirmation = Confirmation.objects.get(submission=submission)
    assert confirmation.emailed_at is not None
    assert [message.to for message in mail.outbox] == [recipients]
    assert [a[2] for a in mail.outbox[0].attachments] == ["application/pdf"]
    assert len(_files(confirmation)) == 1


def _files(confirmation: Confirmation) -> list[str]:
    """The confirmation PDFs in private storage."""
    storage = confirmation.pdf.storage
    folder = confirmation.pdf.name.rsplit("/", 1)[0]
    return storage.listdir(folder)[1]


def test_a_worker_that_died_while_rendering_leaves_nothing_and_the_redelivery_sends_once(
    submission,
):
    from documents import services

    real = services.pdf_from_html

    def rendered_then_killed(html: str) -> bytes:
        real(html)
        raise SystemExit("the worker was killed")

    with (
        mock.patch.object(services, "pdf_from_html", rendered_then_killed),
        pytest.raises(SystemExit),
    ):
        services.confirmation_send(submission_id=submission.pk)
    assert not Confirmation.objects.exists()
    assert mail.outbox == []

    assert _deliver(confirmation_send_task, submission.pk) is True
    confirmation = Confirmation.objects.get(submission=submission)
    assert _files(confirmation) == [confirmation.pdf.name.rsplit("/", 1)[1]]
    assert len(mail.outbox) == 1


def test_a_worker_that_died_after_sending_sends_nothing_again(submission):
    """The message was claimed and sent, the worker died before recording
    ``emailed_at``: the redelivery finds the claim."""
    assert _deliver(confirmation_send_task, submission.pk) is True
    Confirmation.objects.update(emailed_at=None)
    assert _deliver(confirmation_send_task, submission.pk) is False
    assert len(mail.outbox) == 1
    assert Confirmation.objects.get().emailed_at is not None


def test_a_delivery_that_failed_sends_on_retry_though_another_marked_it_emailed(submission):
    """Delivery A's send failed (its claim released) while a duplicate delivery B,
    seeing the claim, recorded ``emailed_at``: A's retry still sends."""
    from documents import services

    services.confirmation_render(submission=services.Submission.objects.get(pk=submission.pk))
    Confirmation.objects.update(emailed_at=services.timezone.now())  # B's mark
    assert not DeliveryClaim.objects.exists()  # A released its claim
    assert _deliver(confirmation_send_task, submission.pk) is True
    assert len(mail.outbox) == 1


@pytest.fixture
def approved(campaign, registrar_user):
    """hh-001 approved: its two guardians have an email now (María's from the
    contacts step)."""
    registration = _submitted(campaign)
    registration_approve(registration=registration, actor=registrar_user)
    mail.outbox.clear()
    return registration


def test_the_approval_email_is_sent_once_to_each_guardian_however_often_it_runs(approved):
    assert _deliver(registration_review_email_task, approved.pk, REVIEW_APPROVED) == 2
    assert _deliver(registration_review_email_task, approved.pk, REVIEW_APPROVED) == 0
    assert sorted(m.to[0] for m in mail.outbox) == [
        "jose.garcia@example.com",
        "maria.nunez@example.com",
    ]


def test_a_send_that_failed_halfway_is_retried_for_the_guardian_who_missed_it(approved):
    from django.core.mail.backends.locmem import EmailBackend

    real_send = EmailBackend.send_messages
    refused: list[str] = []

    def second_refused(self, messages):
        if messages[0].to == ["maria.nunez@example.com"] and not refused:
            refused.append(messages[0].to[0])
            raise ConnectionRefusedError("the mail server is restarting")
        return real_send(self, messages)

    with mock.patch.object(EmailBackend, "send_messages", second_refused):
        # The task retries by itself (here in-process, at once); the retry writes to
        # María only.
        delivery = registration_review_email_task.apply(
            args=[approved.pk, REVIEW_APPROVED], throw=False
        )
        assert delivery.get() == 1
    assert refused == ["maria.nunez@example.com"]
    assert sorted(m.to[0] for m in mail.outbox) == [
        "jose.garcia@example.com",
        "maria.nunez@example.com",
    ]
    assert DeliveryClaim.objects.count() == 2


def test_the_visit_and_decision_emails_are_sent_once_however_often_they_run(
    campaign, registrar_user, office_user
):
    registration = _submitted(campaign, moved=True)
    request = AddressChangeRequest.objects.get(household_id=registration.household_id)
    school = School.objects.get(sourced_id="sch-elem")  # Sofía's, where Carmen works
    address_visit_book(request=request, choice=VisitChoice(school=school), guardian=None)
    visit = AddressVisit.objects.get(request=request)
    mail.outbox.clear()

    sent = _deliver(address_visit_email_task, visit.pk)
    assert sent == 2  # José, and the school office
    assert _deliver(address_visit_email_task, visit.pk) == 0
    assert len(mail.outbox) == 2

    address_visit_record(request=request, actor=registrar_user, proofs_seen=["lease", "utility"])
    address_change_verify(request=request, actor=registrar_user)
    mail.outbox.clear()
    assert _deliver(address_decision_email_task, request.pk) == 1
    assert _deliver(address_decision_email_task, request.pk) == 0
    assert [m.to for m in mail.outbox] == [["jose.garcia@example.com"]]


def test_a_rejection_is_a_decision_of_its_own(campaign, registrar_user):
    registration = _submitted(campaign, moved=True)
    request = AddressChangeRequest.objects.get(household_id=registration.household_id)
    address_change_reject(request=request, actor=registrar_user, reason="The lease is unsigned.")
    assert _deliver(address_decision_email_task, request.pk) == 1
    assert _deliver(address_decision_email_task, request.pk) == 0
    assert len(mail.outbox) == 1
    assert "lease is unsigned" in mail.outbox[0].body
