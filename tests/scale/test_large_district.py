"""A district of many schools: summaries, pages of schools and long lists keep working."""

from __future__ import annotations

import re
import threading
import time

import pytest
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from registration.models import School
from tests.conftest import sign_in
from tests.workflow.test_dashboard import _rows, _Tables, spread  # noqa: F401
from workflow.models import Summary
from workflow.selectors import REMINDER_STATES
from workflow.summaries import summary_count


def _extra_schools(count: int, low_grade: str = "KG") -> None:
    School.objects.bulk_create(
        School(sourced_id=f"sch-extra-{n:03}", name=f"Zz Extra School {n:03}", low_grade=low_grade)
        for n in range(count)
    )


def test_a_chosen_school_stays_in_the_list_of_its_own_page(
    spread,  # noqa: F811
    registrar_user,
    client,
    settings,
):
    """Choosing a school of the page shown adds its grades below; its row in the
    page's list of schools stays where it was."""
    from registration.staff_views import DASHBOARD_SCHOOLS_PER_PAGE

    settings.DASHBOARD_MAX_AGE_SECONDS = 0
    _extra_schools(DASHBOARD_SCHOOLS_PER_PAGE)
    sign_in(client, registrar_user)
    caption = "Households by registration status, per school"
    html = client.get(reverse("staff_home") + "?page=1").content.decode()
    first = _rows(_Tables(html).tables[caption])
    chosen = School.objects.get(name="Zz Extra School 000")
    assert chosen.name in first
    html = client.get(reverse("staff_home") + f"?page=1&school={chosen.pk}").content.decode()
    again = _rows(_Tables(html).tables[caption])
    assert f'id="school-{chosen.pk}"' in html  # its grades
    assert chosen.name in again
    assert list(again) == list(first)


def test_reminders_to_many_schools_offer_them_in_one_select(campaign, registrar_user, client):
    """Over 20 schools the school filter is one <select multiple>; its options are
    inside it, not loose <option> tags next to labels."""
    _extra_schools(21)
    sign_in(client, registrar_user)
    response = client.get(reverse("staff_reminders"), {"states": list(REMINDER_STATES)})
    html = response.content.decode()
    select = re.search(r'<select[^>]*name="schools"[^>]*>(.*?)</select>', html, re.S)
    assert select is not None, "no <select> for the schools"
    assert "Zz Extra School 020" in select[1]
    outside = html.replace(select[0], "")
    assert "Zz Extra School 020" not in outside


def test_after_emailing_new_codes_the_page_no_longer_offers_the_same_send(
    registrar_user, guardian_user, client, settings, django_capture_on_commit_callbacks
):
    """The activation page reads its counts as last counted; the send itself makes
    those counted as due no longer due, and the page must say so."""
    settings.SUMMARY_MAX_AGE_SECONDS = 300
    client.force_login(registrar_user)
    page = client.get(reverse("staff_activation")).content.decode()
    assert "5 guardians with an email address" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("staff_activation_resend"), follow=True)
    html = " ".join(response.content.decode().split())
    assert "New codes are being emailed to 5 guardian(s)." in html
    assert "0 guardians with an email address" in html
    assert re.search(r"<button[^>]*disabled[^>]*>Email new codes now", html)


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_summary_counted_twice_at_once_is_kept_without_an_error(settings):
    """Two counts of one summary at once (two staff on a page never counted, a worker's
    recount while a campaign is opened): the second waits for the first's row and
    keeps its own count; neither fails."""
    settings.SUMMARY_MAX_AGE_SECONDS = 300
    inserted, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def first_count() -> None:
        try:
            with transaction.atomic():
                Summary.objects.create(key="campaigns", taken_at=timezone.now(), data={})
                inserted.set()
                release.wait(60)
        finally:
            connection.close()

    def second_count() -> None:
        try:
            outcome["summary"] = summary_count("campaigns")
        except Exception as exc:  # the failure this test looks for
            outcome["error"] = exc
        finally:
            connection.close()

    first = threading.Thread(target=first_count)
    first.start()
    assert inserted.wait(60)
    second = threading.Thread(target=second_count)
    second.start()
    waiting = False
    for _attempt in range(1200):  # until the second count waits on the first one's row
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            waiting = cursor.fetchone()[0] > 0
        if waiting or not second.is_alive():
            break
        time.sleep(0.05)
    release.set()
    first.join(60)
    second.join(60)
    assert waiting, "the second count never waited for the first"
    assert "error" not in outcome, outcome.get("error")
    assert Summary.objects.filter(key="campaigns").count() == 1
