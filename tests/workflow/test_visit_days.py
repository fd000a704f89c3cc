"""The day of a visit to the school office, as each language writes a date with its
weekday: "Monday, May 4, 2026" in English, "lunes, 4 de mayo de 2026" in Spanish,
"2026年5月4日 星期一" in Chinese (the weekday after the date, no comma), in the
address step's list of times, the review and the emails.

José's household (hh-001) visits Las Lomas Elementary.
"""

from __future__ import annotations

import datetime
import re

import pytest
from django.conf import settings
from django.utils import timezone, translation

from tests.conftest import sign_in
from tests.workflow.test_wizard import _jose_answers, _registration, _walk_to
from tests.workflow.wizard_walk import WizardWalk
from workflow.services import visit_schedule_save
from workflow.visits import slot_day_label, slot_label

# A Monday afternoon, in the district's time zone.
MONDAY = datetime.datetime(2026, 5, 4, 16, 30)


@pytest.mark.parametrize(
    ("language", "day", "day_and_time"),
    [
        ("en", "Monday, May 4, 2026", "Monday, May 4, 2026, 4:30 PM"),
        ("es", "lunes, 4 de mayo de 2026", "lunes, 4 de mayo de 2026 a las 16:30"),
        ("zh-hans", "2026年5月4日 星期一", "2026年5月4日 星期一 16:30"),
    ],
)
def test_a_visit_day_is_written_as_each_language_writes_it(language, day, day_and_time):
    starts_at = timezone.make_aware(MONDAY)
    with translation.override(language):
        assert slot_day_label(starts_at) == day
        assert slot_label(starts_at) == day_and_time


def test_english_writes_the_month_as_its_dates_do():
    starts_at = timezone.make_aware(datetime.datetime(2026, 11, 30, 9, 0))
    with translation.override("en"):
        assert slot_label(starts_at) == "Monday, Nov. 30, 2026, 9:00 AM"


@pytest.fixture
def office_hours(sample_district, registrar_user):
    from registration.models import School

    school = School.objects.get(sourced_id="sch-elem")
    visit_schedule_save(
        school=school,
        hours=[(day, datetime.time(14), datetime.time(15)) for day in range(7)],
        slot_minutes=30,
        capacity=1,
        actor=registrar_user,
    )
    return school


def test_the_address_step_lists_the_days_in_chinese_order(
    client, guardian_user, campaign, office_hours
):
    sign_in(client, guardian_user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    page = _walk_to(WizardWalk(client, _registration("hh-001")), "address", _jose_answers())
    days = re.findall(r'<optgroup label="([^"]+)">', page.html)
    assert len(days) >= 13, days  # today's too, if its hours are still ahead
    for day in days:
        assert re.fullmatch(r"\d{4}年\d{1,2}月\d{1,2}日 星期[一二三四五六日]", day), day
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    weekday = "一二三四五六日"[tomorrow.weekday()]
    assert f"{tomorrow.year}年{tomorrow.month}月{tomorrow.day}日 星期{weekday}" in days
