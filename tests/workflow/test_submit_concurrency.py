"""Ten devices sign the same registration at the same moment: exactly one submission
is kept, logged, confirmed and emailed; the others are refused and change nothing.

PostgreSQL only. ``registration_submit`` relies on ``select_for_update``, which is a
no-op on SQLite; SQLite also lets one writer at a time into the whole database, so
the race this test looks for cannot happen there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection, connections
from django.test import Client
from django.urls import reverse

from documents.models import Confirmation
from registration.models import Guardian
from tests.conftest import sign_in
from workflow.models import (
    AcknowledgementAcceptance,
    EnrollmentDecision,
    Registration,
    Submission,
    TransitionLog,
)
from workflow.services import RegistrationClosed, Signature, TransitionRefused, registration_submit

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.django_db(transaction=True),
]

DEVICES = 10
SUBMITTED = "Thank you. Your registration is submitted; we have emailed you a confirmation."
ALREADY_SUBMITTED = "This registration has already been submitted."
# A device that loaded the household after the winner committed sees the decisions it
# wrote, so the page it reviewed no longer matches: it is sent back to the review.
CHANGED_SINCE = "Your answers changed since this page was opened"


class _StepForm(HTMLParser):
    """The wizard step's main form (the multipart one) as a browser would post it,
    and whether the page offers "This is all still correct"."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: dict[str, list[str]] = {}
        self.offers_unchanged = False
        self._in_form = False
        self._select: str | None = None
        self._textarea: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs_list: list[tuple[str, str | None]]) -> None:
        attrs = {k: v or "" for k, v in attrs_list}
        if tag == "button" and attrs.get("name") == "unchanged":
            self.offers_unchanged = True
        if tag == "form":
            self._in_form = attrs.get("enctype") == "multipart/form-data"
        name = attrs.get("name")
        if not self._in_form or not name:
            return
        kind = attrs.get("type", "text")
        if tag == "input" and kind in ("checkbox", "radio"):
            values = self.fields.setdefault(name, [])
            if "checked" in attrs:
                values.append(attrs.get("value", "on"))
        elif tag == "input" and kind not in ("submit", "button", "file"):
            self.fields.setdefault(name, []).append(attrs.get("value", ""))
        elif tag == "textarea":
            self._textarea = name
            self.fields[name] = [""]
        elif tag == "select":
            self._select = name
            self.fields[name] = []
        elif tag == "option" and self._select and "selected" in attrs:
            self.fields[self._select].append(attrs.get("value", ""))

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea][0] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def _step_of(response: Any) -> str:
    """The step a followed response shows (a form shown again has no redirects)."""
    return response.wsgi_request.path.rstrip("/").rsplit("/", 1)[1]


def _walk_to_review(client: Client, registration: Registration) -> None:
    """Every step but the review, as a family with nothing new would answer: "all
    still correct" where offered, an email for the guardian with no contact on file,
    every document accepted."""
    prefix = f"registration_{registration.pk}"
    response = client.get(
        reverse("registration_resume", kwargs={"pk": registration.pk}), follow=True
    )
    for _ in range(20):
        step = _step_of(response)
        if step == "review":
            return
        page = _StepForm(response.content.decode())
        if page.offers_unchanged and step != "contacts":
            data: dict[str, Any] = {"unchanged": "1"}
        else:
            data = {name: values for name, values in page.fields.items() if values}
        data[f"{prefix}-current_step"] = step
        if step == "contacts":
            for name in [n for n in page.fields if n.endswith("_email")]:
                group = name.removesuffix("email")
                if not any(v for n, vs in page.fields.items() if n.startswith(group) for v in vs):
                    data[name] = f"{group.split('-')[1].strip('_')}@example.com"
        if step == "acknowledgements":
            data.update({name: "on" for name in page.fields if "-ack_" in name})
        response = client.post(response.wsgi_request.path, data, follow=True)
        shown = response.content.decode()
        assert _step_of(response) != step, shown[shown.find("<main") :][:3000]
    raise AssertionError("the wizard never reached the review")


def _race(attempt: Callable[[int], Any]) -> list[Any]:
    """Run ``attempt(0..DEVICES-1)`` in as many threads, released together; each
    returns its result or the exception it raised."""
    barrier = threading.Barrier(DEVICES)
    outcomes: list[Any] = [None] * DEVICES

    def run(index: int) -> None:
        try:
            connection.ensure_connection()  # connect before the start, not in the race
            barrier.wait(timeout=60)
            outcomes[index] = attempt(index)
        except BaseException as error:  # the outcome to check, whatever it is
            outcomes[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(DEVICES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a submission never finished"
    return outcomes


def _assert_submitted_once(registration: Registration, mailoutbox: list[Any]) -> None:
    registration.refresh_from_db()
    assert registration.state == Registration.State.SUBMITTED
    logs = TransitionLog.objects.filter(
        object_type="workflow.registration", object_id=str(registration.pk)
    )
    assert list(logs.values_list("transition", flat=True)) == ["start", "submit"]
    submission = Submission.objects.get(registration=registration)
    assert submission.version == 1
    assert Confirmation.objects.filter(submission__registration=registration).count() == 1
    decisions = EnrollmentDecision.objects.filter(registration=registration)
    assert decisions and all(d.state == EnrollmentDecision.State.RETURNING for d in decisions)
    for decision in decisions:
        decided = TransitionLog.objects.filter(
            object_type="workflow.enrollmentdecision", object_id=str(decision.pk)
        )
        assert decided.count() == 1
    assert AcknowledgementAcceptance.objects.filter(registration=registration).count() == 2
    assert len(mailoutbox) == 1, [m.to for m in mailoutbox]
    assert mailoutbox[0].to == ["jose.garcia@example.com"]
    assert [a[2] for a in mailoutbox[0].attachments] == ["application/pdf"]


def test_ten_submissions_at_once_keep_exactly_one(client, guardian_user, campaign, mailoutbox):
    registration = Registration.objects.get(campaign=campaign, household__sourced_id="hh-001")
    sign_in(client, guardian_user)
    _walk_to_review(client, registration)
    guardian = Guardian.objects.get(user=guardian_user)

    def submit(index: int) -> Submission:
        return registration_submit(
            registration=Registration.objects.get(pk=registration.pk),
            signature=Signature(
                guardian=guardian,
                signed_name=guardian.full_name,
                ip_address=f"203.0.113.{index + 1}",
                user_agent=f"device {index}",
                language="en",
            ),
            content={"sections": [], "device": index},
            user=guardian_user,
        )

    outcomes = _race(submit)

    submitted = [o for o in outcomes if isinstance(o, Submission)]
    refused = [o for o in outcomes if isinstance(o, TransitionRefused)]
    assert len(submitted) == 1 and len(refused) == DEVICES - 1, outcomes
    assert all(isinstance(o, RegistrationClosed) for o in refused), refused
    assert all(str(o) == ALREADY_SUBMITTED for o in refused)
    _assert_submitted_once(registration, mailoutbox)
    assert Submission.objects.get(registration=registration).pk == submitted[0].pk


def test_ten_devices_signing_at_once_submit_once(client, guardian_user, campaign, mailoutbox):
    """The same guardian signs on ten devices (a double tap, a phone and a laptop):
    one submission, and every other device is sent to the status page or back to
    the review, never shown an error page."""
    registration = Registration.objects.get(campaign=campaign, household__sourced_id="hh-001")
    sign_in(client, guardian_user)
    _walk_to_review(client, registration)
    review_url = reverse("registration_step", kwargs={"pk": registration.pk, "step": "review"})
    devices = [client, *(Client() for _ in range(DEVICES - 1))]
    posts = []
    for device in devices:
        if device is not client:
            sign_in(device, guardian_user)
        page = device.get(review_url)
        assert page.status_code == 200
        data = {n: v for n, v in _StepForm(page.content.decode()).fields.items() if v}
        data["review-signed_name"] = "José Ángel García"
        data["review-attest"] = "on"
        posts.append(data)

    responses = _race(lambda index: devices[index].post(review_url, posts[index]))

    status_url = reverse("registration_status", kwargs={"pk": registration.pk})
    shown = []
    for response in responses:
        assert not isinstance(response, BaseException), response
        assert response.status_code == 302
        assert response.url in (status_url, review_url)
        shown.append([str(m) for m in get_messages(response.wsgi_request)])
    assert sum(SUBMITTED in messages for messages in shown) == 1, shown
    for messages in shown:
        assert all(
            m in (SUBMITTED, ALREADY_SUBMITTED) or m.startswith(CHANGED_SINCE) for m in messages
        ), messages
    _assert_submitted_once(registration, mailoutbox)
