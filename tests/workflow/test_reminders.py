"""Reminders at /staff/reminders/: the registrar chooses schools, grades and statuses,
sees how many households would be written to, and queues the emails; each household
is written to at most once in REMINDER_MIN_DAYS days, each guardian in their language,
and a task delivered twice sends nothing twice."""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
from pathlib import Path
from smtplib import SMTPException

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.urls import reverse
from django.utils import timezone

from registration.models import Guardian, Household, School
from registration.selectors import email_on_file
from registration.services import guardian_language
from tests.conftest import sign_in
from workflow.models import AuditEvent, Registration, Reminder
from workflow.selectors import reminder_preview
from workflow.services import _reminder_recipients, reminders_requeue, reminders_send
from workflow.tasks import reminders_send_task

ROOT = Path(__file__).resolve().parents[2]

# The sample district's households, all not started, and who has an email on file:
# hh-001 José (Spanish household), hh-002 Siobhan, hh-004 Ngozi, hh-005 Adaeze and
# Ngozi (a grandparent there too), hh-008 Ingrid and Tom (Spanish household). hh-003
# (Declan), hh-006 (Marco, whose address in the roster is not one) and hh-007 (Thị
# Hoa) have none.
WITH_EMAIL = {"hh-001", "hh-002", "hh-004", "hh-005", "hh-008"}


@pytest.fixture
def registrar(client, registrar_user):
    sign_in(client, registrar_user)
    return client


def _page(client, **query) -> str:
    response = client.get(reverse("staff_reminders"), query)
    assert response.status_code == 200
    return " ".join(response.content.decode().split())


def _send(client, django_capture_on_commit_callbacks, **data):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(reverse("staff_reminders"), data)


def _state(household: str, state: str) -> None:
    # Set directly: the transitions are tested in test_state_machines.py.
    Registration.objects.filter(household__sourced_id=household).update(state=state)


def _reminded() -> set[str]:
    return set(
        Reminder.objects.values_list("registration__household__sourced_id", flat=True).distinct()
    )


def test_the_registrar_sees_how_many_households_would_be_emailed(campaign, registrar):
    html = _page(registrar)
    assert "5 households would be emailed" in html
    assert "8 households match your choice." in html
    assert "0 of them were sent a reminder" in html
    assert "3 of them have no guardian with an email address on file" in html
    assert "Email 5 households now" in html
    assert not Reminder.objects.exists()


def test_schools_grades_and_statuses_narrow_the_choice(campaign, registrar):
    las_lomas = School.objects.get(sourced_id="sch-elem").pk
    # Sofía (hh-001), Liam (hh-002 and hh-003), Chidi (hh-004), Amara (hh-005).
    html = _page(registrar, schools=las_lomas, states=["not_started", "in_progress"])
    assert "5 households match your choice." in html
    assert "4 households would be emailed" in html
    html = _page(registrar, schools=las_lomas, grades="KG", states="not_started")
    assert "2 households match your choice." in html
    assert "1 household would be emailed" in html
    _state("hh-002", "in_progress")
    html = _page(registrar, schools=las_lomas, grades="KG", states="not_started")
    assert "1 household matches your choice." in html
    assert "0 households would be emailed" in html
    html = _page(registrar, states="in_progress")
    assert "1 household would be emailed" in html


def test_a_status_must_be_chosen(campaign, registrar):
    html = _page(registrar, grades="KG")
    assert "Choose at least one status." in html
    assert "would be emailed" not in html
    response = registrar.post(reverse("staff_reminders"), {"grades": "KG"})
    assert response.status_code == 200
    assert not Reminder.objects.exists()


def test_sending_emails_each_guardian_in_their_language(
    campaign, registrar, registrar_user, django_capture_on_commit_callbacks, settings
):
    settings.SITE_URL = "https://register.riverside.example.org"
    _state("hh-002", "in_progress")
    _state("hh-006", "submitted")

    response = _send(
        registrar, django_capture_on_commit_callbacks, states=["not_started", "in_progress"]
    )

    assert response.status_code == 302
    assert response.url == reverse("staff_reminders") + "?states=not_started&states=in_progress"
    page = " ".join(registrar.get(response.url).content.decode().split())
    assert "Reminders are on their way to 5 households." in page
    assert _reminded() == WITH_EMAIL
    reminders = {r.registration.household.sourced_id: r for r in Reminder.objects.all()}
    assert all(r.sent_at is not None and r.sent_by == registrar_user for r in reminders.values())
    assert {r["email"] for r in reminders["hh-005"].recipients} == {
        "adaeze@example.com",
        "ngozi.okafor@example.com",
    }
    assert reminders["hh-001"].language == "es" and reminders["hh-008"].language == "es"
    assert reminders["hh-002"].language == "en"

    # One message per guardian with an address, in their language, with the link.
    by_address = {message.to[0].lower(): message for message in mail.outbox}
    assert len(mail.outbox) == 7
    assert set(by_address) == {
        "jose.garcia@example.com",
        "siobhan.obrien@example.com",
        "ngozi.okafor@example.com",
        "adaeze@example.com",
        "ingrid.b@example.com",
        "tom.hale@example.com",
    }
    jose = by_address["jose.garcia@example.com"]
    assert jose.body.startswith("Estimado/a José Ángel García:")  # his household reads Spanish
    assert "https://register.riverside.example.org/register/" in jose.body
    closes = campaign.closes_on
    spanish_months = ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio")
    spanish_months += ("agosto", "septiembre", "octubre", "noviembre", "diciembre")
    assert f"{closes.day} de {spanish_months[closes.month - 1]} de {closes.year}" in jose.body
    siobhan = by_address["siobhan.obrien@example.com"]
    assert siobhan.body.startswith("Dear Siobhan O'Brien,")
    assert siobhan.subject == f"Please finish your registration for {campaign.school_year.label}"
    assert "Everything you entered so far is saved" in siobhan.body
    assert by_address["adaeze@example.com"].subject.startswith("Please register your children")

    events = AuditEvent.objects.filter(object_type="workflow.reminder")
    assert events.count() == 1
    event = events.get()
    assert event.actor == registrar_user
    assert event.detail["reminders"] == 5
    assert event.detail["states"] == ["in_progress", "not_started"]


def test_no_household_is_reminded_twice_within_the_minimum_days(
    campaign, registrar, django_capture_on_commit_callbacks
):
    _send(registrar, django_capture_on_commit_callbacks, states="not_started")
    assert Reminder.objects.count() == 5 and len(mail.outbox) == 7

    html = _page(registrar, states="not_started")
    assert "5 of them were sent a reminder in the last 3 days and are left out." in html
    assert "0 households would be emailed" in html
    response = _send(registrar, django_capture_on_commit_callbacks, states="not_started")
    assert "No household was due a reminder" in registrar.get(response.url).content.decode()
    assert Reminder.objects.count() == 5 and len(mail.outbox) == 7

    # Four days later they are due again.
    Reminder.objects.update(created_at=timezone.now() - datetime.timedelta(days=4))
    assert "5 households would be emailed" in _page(registrar, states="not_started")


def test_the_minimum_days_are_a_setting(campaign, registrar, settings):
    reminders_send(campaign=campaign, school_ids=[], grades=[], states=["not_started"], actor=None)
    Reminder.objects.update(created_at=timezone.now() - datetime.timedelta(days=4))
    settings.REMINDER_MIN_DAYS = 7
    assert "0 households would be emailed" in _page(registrar, states="not_started")


def test_a_redelivered_task_sends_nothing_twice(campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        reminders_send(
            campaign=campaign, school_ids=[], grades=[], states=["not_started"], actor=None
        )
    assert len(mail.outbox) == 7
    ids = list(Reminder.objects.values_list("pk", flat=True))
    sent_at = dict(Reminder.objects.values_list("pk", "sent_at"))

    assert reminders_send_task.delay(ids).get() == 0

    assert len(mail.outbox) == 7
    assert dict(Reminder.objects.values_list("pk", "sent_at")) == sent_at


class FailingOnceBackend(EmailBackend):
    """The mail server refuses the first message, then accepts."""

    failed = False

    def send_messages(self, messages):
        if not FailingOnceBackend.failed:
            FailingOnceBackend.failed = True
            raise SMTPException("try again later")
        return super().send_messages(messages)


def test_a_failed_send_is_sent_by_the_retry(campaign, settings):
    settings.EMAIL_BACKEND = f"{__name__}.FailingOnceBackend"
    FailingOnceBackend.failed = False
    reminders_send(campaign=campaign, school_ids=[], grades=[], states=["not_started"], actor=None)
    ids = sorted(Reminder.objects.values_list("pk", flat=True))

    with pytest.raises(SMTPException):
        reminders_send_task.apply(args=[ids], throw=True, retries=reminders_send_task.max_retries)

    assert Reminder.objects.filter(sent_at__isnull=True).count() == 5
    assert reminders_send_task.delay(ids).get() == 5
    assert len(mail.outbox) == 7
    assert not Reminder.objects.filter(sent_at__isnull=True).exists()


def test_a_household_that_finished_meanwhile_is_not_written_to(
    campaign, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reminders_send(
            campaign=campaign, school_ids=[], grades=[], states=["not_started"], actor=None
        )
    _state("hh-008", "submitted")
    for callback in callbacks:
        callback()
    assert len(mail.outbox) == 5
    assert "ingrid.b@example.com" not in {m.to[0] for m in mail.outbox}
    assert Reminder.objects.get(registration__household__sourced_id="hh-008").sent_at is None


def test_reminders_whose_task_never_ran_are_queued_again(
    campaign, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):  # the broker was down
        reminders_send(
            campaign=campaign, school_ids=[], grades=[], states=["not_started"], actor=None
        )
    assert reminders_requeue() == 0  # too recent: their task may only be late
    assert reminders_requeue(older_than=datetime.timedelta(0)) == 5
    assert len(mail.outbox) == 7
    assert reminders_requeue(older_than=datetime.timedelta(0)) == 0


def test_recipients_are_the_addresses_and_languages_on_file(campaign):
    households = list(Household.objects.order_by("pk"))
    recipients = _reminder_recipients([h.pk for h in households])
    for household in households:
        expected = []
        for guardian in Guardian.objects.filter(householdguardian__household=household).order_by(
            "given_name", "pk"
        ):
            email = email_on_file(guardian)
            if email:
                expected.append((guardian.pk, email, guardian_language(guardian)))
        found = [(r["guardian"], r["email"], r["language"]) for r in recipients[household.pk]]
        assert found == expected, household.sourced_id


@pytest.mark.parametrize("actor", ["office_user", "finance_user", "teacher_user", "guardian_user"])
def test_only_the_registrar_sends_reminders(request, client, campaign, actor):
    sign_in(client, request.getfixturevalue(actor))
    assert client.get(reverse("staff_reminders")).status_code == 403
    assert client.post(reverse("staff_reminders"), {"states": "not_started"}).status_code == 403
    assert not Reminder.objects.exists()
    if actor != "guardian_user":
        home = client.get(reverse("staff_home")).content.decode()
        assert reverse("staff_reminders") not in home


def test_the_registrar_finds_reminders_in_the_staff_menu(campaign, registrar):
    home = registrar.get(reverse("staff_home")).content.decode()
    assert f'href="{reverse("staff_reminders")}"' in home
    page = registrar.get(reverse("staff_reminders")).content.decode()
    assert f'<a href="{reverse("staff_reminders")}" aria-current="page">' in page


def test_without_a_running_campaign_nothing_is_sent(registrar, sample_district):
    html = _page(registrar)
    assert "No campaign is running" in html
    response = registrar.post(reverse("staff_reminders"), {"states": "not_started"})
    assert response.status_code == 302
    assert not Reminder.objects.exists()


def test_the_recent_sends_are_listed(campaign, registrar, django_capture_on_commit_callbacks):
    _send(registrar, django_capture_on_commit_callbacks, states="not_started")
    html = _page(registrar)
    assert "Recent reminders" in html
    assert re.search(r"registrar@riverside\.example\.org</td><td class=\"number\">5<", html)


def test_a_minimum_below_one_day_stops_start_up():
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings", "REMINDER_MIN_DAYS": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "REMINDER_MIN_DAYS must be at least 1" in result.stderr


def test_the_whole_district_is_previewed_as_last_counted(
    campaign, registrar, django_capture_on_commit_callbacks
):
    """Every school and grade (the first choice) reads the count a worker keeps, and
    says when it was made; a narrower choice counts at once; a send counts again."""
    assert "5 households would be emailed" in _page(registrar)
    _state("hh-005", "submitted")
    _state("hh-001", "submitted")
    live = reminder_preview(
        campaign=campaign, school_ids=[], grades=[], states=["not_started", "in_progress"]
    )
    assert live.due < 5
    html = _page(registrar)
    assert "5 households would be emailed" in html  # as counted a moment ago
    assert "Counted on" in html
    las_lomas = School.objects.get(sourced_id="sch-elem").pk
    narrowed = _page(registrar, schools=las_lomas, states=["not_started", "in_progress"])
    assert "Counted on" not in narrowed  # counted now
    _send(
        client=registrar,
        django_capture_on_commit_callbacks=django_capture_on_commit_callbacks,
        states=["not_started", "in_progress"],
    )
    html = _page(registrar)
    assert "0 households would be emailed" in html  # counted again after the send
