"""Staff and accounts: finding a guardian, a lost letter, activation rates, re-sends."""

from __future__ import annotations

import datetime
import re

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from outbox.models import OutboxMessage
from outbox.services import outbox_dispatch
from registration.models import ActivationCode, ActivationEmail, Guardian
from registration.services import activation_resend_candidates, activation_verify
from registration.tasks import activation_resend_due_task
from tests.conftest import sign_in
from tests.outbox.broker import broker_at, port_closed
from workflow.models import AuditEvent
from workflow.services import activation_code_issue

CODE = re.compile(r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}")


def jose() -> Guardian:
    return Guardian.objects.get(sourced_id="par-002")


def test_the_registrar_finds_a_guardian_by_name(registrar_user, client):
    sign_in(client, registrar_user)
    response = client.get(reverse("staff_guardians"), {"q": "josé garcía"})
    html = response.content.decode()
    assert "1 guardian found" in html
    assert f'href="{reverse("staff_guardian", args=[jose().pk])}"' in html
    assert "1450 Alameda de las Pulgas" in html
    by_email = client.get(reverse("staff_guardians"), {"q": "ngozi.okafor@example.com"})
    assert "Ngozi Okafor" in by_email.content.decode()
    assert AuditEvent.objects.filter(action="list", object_type="registration.guardian").exists()


def test_opening_a_guardian_is_audited(registrar_user, client):
    client.force_login(registrar_user)
    response = client.get(reverse("staff_guardian", args=[jose().pk]))
    assert response.status_code == 200
    assert "Not activated." in response.content.decode()
    event = AuditEvent.objects.get(action="view", object_type="registration.guardian")
    assert (event.actor, event.object_id) == (registrar_user, str(jose().pk))


def test_a_lost_letter_is_reprinted_with_a_new_code(registrar_user, client, tmp_path):
    old, old_clear = activation_code_issue(guardian=jose(), channel="letter")
    client.force_login(registrar_user)
    response = client.post(reverse("staff_guardian_letter", args=[jose().pk]))
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    assert response["Cache-Control"] == "no-store"
    path = tmp_path / "letter.pdf"
    path.write_bytes(response.content)
    pages = PdfReader(path).pages
    assert len(pages) == 1
    text = " ".join(pages[0].extract_text().split())
    assert "Estimado/a José Ángel García" in text  # the household reads Spanish
    new_clear = CODE.search(text).group(0)
    birth_date = datetime.date(2018, 3, 14)
    assert activation_verify(code_text=old_clear, birth_date=birth_date, ip_address="::1") is None
    assert activation_verify(code_text=new_clear, birth_date=birth_date, ip_address="::1")
    old.refresh_from_db()
    assert old.state == "revoked"


def test_a_new_code_is_emailed_and_logged(
    registrar_user, client, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(registrar_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("staff_guardian_email_code", args=[jose().pk]), follow=True)
    assert "A new code is on its way to jose.garcia@example.com" in response.content.decode()
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["jose.garcia@example.com"]
    assert "Su código para abrir su cuenta" in message.subject
    code = CODE.search(message.body).group(0)
    assert "/activate/" in message.body
    sent = ActivationEmail.objects.get()
    assert (sent.guardian, sent.sent_by, sent.reason) == (jose(), registrar_user, "staff")
    assert code not in str(AuditEvent.objects.values_list("detail", flat=True))
    assert activation_verify(
        code_text=code, birth_date=datetime.date(2018, 3, 14), ip_address="::1"
    )


def test_no_code_for_a_guardian_without_email(registrar_user, client, mailoutbox):
    client.force_login(registrar_user)
    maria = Guardian.objects.get(sourced_id="par-001")
    page = client.get(reverse("staff_guardian", args=[maria.pk])).content.decode()
    assert "No email address on file" in page
    response = client.post(reverse("staff_guardian_email_code", args=[maria.pk]), follow=True)
    assert "No code was sent" in response.content.decode()
    assert not mailoutbox and not ActivationCode.objects.exists()


def test_office_staff_reach_only_guardians_of_their_schools(other_school_office_user, client):
    client.force_login(other_school_office_user)
    # José's children are at the elementary and middle schools; Marco's at the high school.
    found = client.get(reverse("staff_guardians"), {"q": "García"}).content.decode()
    assert "0 guardians found" in found
    assert client.get(reverse("staff_guardian", args=[jose().pk])).status_code == 404
    assert client.post(reverse("staff_guardian_letter", args=[jose().pk])).status_code == 404
    marco = Guardian.objects.get(sourced_id="par-008")
    assert client.get(reverse("staff_guardian", args=[marco.pk])).status_code == 200


@pytest.mark.parametrize("actor", ["teacher_user", "finance_user"])
def test_teachers_and_finance_do_not_handle_codes(actor, request, client):
    client.force_login(request.getfixturevalue(actor))
    assert client.get(reverse("staff_guardians")).status_code == 403
    assert client.post(reverse("staff_guardian_letter", args=[jose().pk])).status_code == 403
    assert client.get(reverse("staff_activation")).status_code == 403


def test_office_staff_do_not_run_the_district_re_send(office_user, client):
    client.force_login(office_user)
    assert client.get(reverse("staff_activation")).status_code == 403
    assert client.post(reverse("staff_activation_resend")).status_code == 403


def test_activation_rates_per_school(
    registrar_user, guardian_user, client, django_assert_max_num_queries
):
    client.force_login(registrar_user)
    with django_assert_max_num_queries(20):  # counted, kept and shown
        html = client.get(reverse("staff_activation")).content.decode()
    with django_assert_max_num_queries(10):  # the count read back
        again = client.get(reverse("staff_activation")).content.decode()
    shown = re.compile(r"<h1>.*</table>", re.S)
    assert shown.search(again)[0] == shown.search(html)[0]
    rows = {
        match[0]: match[1:]
        for match in re.findall(
            r"<th scope=\"row\">([^<]+)</th>\s*<td class=\"number\">(\d+)</td>\s*"
            r"<td class=\"number\">(\d+) \((\d+)%\)</td>\s*<td class=\"number\">(\d+)</td>\s*"
            r"<td class=\"number\">(\d+) \((\d+)%\)</td>",
            html,
        )
    }
    # Sequoia Middle: Mateo (José and María José) and Astrid (Ingrid and Tom);
    # José has an account.
    assert rows["Sequoia Middle School"] == ("4", "1", "25", "2", "1", "50")
    assert rows["Mission Ridge High School"] == ("4", "0", "0", "4", "0", "0")


def test_re_sends_go_to_households_nobody_activated(
    registrar_user, guardian_user, client, mailoutbox, django_capture_on_commit_callbacks
):
    due = {g.sourced_id for g in activation_resend_candidates()}
    # Guardians with an email address, no account, in a household without one.
    assert due == {"par-003", "par-005", "par-006", "par-010", "par-011"}
    client.force_login(registrar_user)
    page = client.get(reverse("staff_activation")).content.decode()
    assert "5 guardians with an email address" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("staff_activation_resend"), follow=True)
    assert "New codes are being emailed to 5 guardian(s)." in response.content.decode()
    assert sorted(m.to[0] for m in mailoutbox) == sorted(
        [
            "Siobhan.OBrien@example.com",
            "ngozi.okafor@example.com",
            "adaeze@example.com",
            "ingrid.b@example.com",
            "tom.hale@example.com",
        ]
    )
    assert ActivationEmail.objects.filter(reason="resend").count() == 5
    assert ActivationCode.objects.filter(state="issued", channel="email").count() == 5
    # At most once every 14 days per guardian.
    assert activation_resend_candidates().count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("staff_activation_resend"))
    assert len(mailoutbox) == 5
    long_ago = timezone.now() - datetime.timedelta(days=settings.ACTIVATION_RESEND_DAYS + 1)
    ActivationEmail.objects.update(created_at=long_ago)
    ActivationCode.objects.update(created_at=long_ago)
    assert activation_resend_candidates().count() == 5


def test_a_fresh_letter_is_not_cancelled_by_a_re_send(sample_district):
    from registration.services import activation_letters_issue

    activation_letters_issue(guardians=[Guardian.objects.get(sourced_id="par-003")])
    due = {g.sourced_id for g in activation_resend_candidates()}
    assert "par-003" not in due and "par-006" in due


def test_a_failed_send_keeps_the_old_code_working(sample_district, monkeypatch):
    from registration import services

    guardian = Guardian.objects.get(sourced_id="par-003")
    old, _clear = activation_code_issue(guardian=guardian, channel="letter")

    def broken_mail(*args, **kwargs):
        raise ConnectionError("mail server down")

    monkeypatch.setattr(services, "send_mail", broken_mail)
    with pytest.raises(ConnectionError):
        services.activation_code_email(guardian=guardian, reason="staff")
    old.refresh_from_db()
    assert old.state == "issued"
    assert ActivationCode.objects.filter(guardian=guardian).count() == 1
    assert not ActivationEmail.objects.exists()


def test_the_daily_task_sends_the_due_codes(
    sample_district, mailoutbox, django_capture_on_commit_callbacks
):
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert any(
        entry["task"] == "registration.tasks.activation_resend_due_task"
        for entry in schedule.values()
    )
    with django_capture_on_commit_callbacks(execute=True):
        queued = activation_resend_due_task.delay().get()
    assert queued == 6 and len(mailoutbox) == 6
    event = AuditEvent.objects.get(object_type="registration.activationemail")
    assert event.actor is None and event.detail == {"queued": 6, "reason": "resend"}


def test_a_re_send_during_a_broker_outage_waits_in_the_outbox_and_goes_out_once(
    registrar_user, client, mailoutbox, django_capture_on_commit_callbacks, settings
):
    settings.OUTBOX_GRACE_SECONDS = 0
    client.force_login(registrar_user)
    with broker_at(f"redis://127.0.0.1:{port_closed()}/0"):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("staff_activation_resend"), follow=True)
        assert response.status_code == 200
        assert "New codes are being emailed to 6 guardian(s)." in response.content.decode()
        assert outbox_dispatch().broker_unreachable
    (message,) = OutboxMessage.objects.all()  # the six in one task
    assert message.dispatched_at is None and len(message.args[0]) == 6
    assert not mailoutbox and not ActivationCode.objects.filter(channel="email").exists()
    # The broker is back (here: tasks in-process again): every code goes out once.
    assert outbox_dispatch().published == 1
    assert len(mailoutbox) == 6
    message.dispatched_at = None
    message.save()
    assert outbox_dispatch().published == 1  # delivered twice by the broker: sent once
    assert len(mailoutbox) == 6
    assert ActivationCode.objects.filter(state="issued", channel="email").count() == 6


def test_a_household_stops_getting_codes_once_someone_activates(sample_district):
    before = {g.sourced_id for g in activation_resend_candidates()}
    assert {"par-006", "par-002"} <= before
    from registration.services import guardian_account_create

    guardian_account_create(
        guardian=Guardian.objects.get(sourced_id="par-007"),
        email="emeka@example.com",
        password="a-long-test-password",
    )
    after = {g.sourced_id for g in activation_resend_candidates()}
    assert "par-006" not in after and "par-002" in after


def test_activation_rates_of_many_schools_are_listed_a_page_at_a_time(registrar_user, client):
    from registration.models import School
    from registration.staff_views import DASHBOARD_SCHOOLS_PER_PAGE

    School.objects.bulk_create(
        School(sourced_id=f"sch-act-{n:03}", name=f"Zz Activation {n:03}", low_grade="12")
        for n in range(DASHBOARD_SCHOOLS_PER_PAGE)
    )
    client.force_login(registrar_user)
    first = client.get(reverse("staff_activation")).content.decode()
    second = client.get(reverse("staff_activation") + "?page=2").content.decode()
    rows = re.compile(r'<th scope="row">([^<]+)</th>')
    assert len(rows.findall(first)) == DASHBOARD_SCHOOLS_PER_PAGE
    assert len(rows.findall(second)) == School.objects.count() - DASHBOARD_SCHOOLS_PER_PAGE
    assert "Sequoia Middle School" in first + second
    assert "Page 2 of 2" in second
