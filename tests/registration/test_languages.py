"""English, Spanish and Simplified Chinese: a household's language from the roster
finds the product's, a guardian's choice is kept and follows them, and letters,
pages, amounts and documents are written in it."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation
from pypdf import PdfReader

from config.languages import language_or_default, product_language
from payments.money import money
from payments.templatetags.staff_money import dollars
from registration.models import Guardian, Household
from registration.services import guardian_language
from tests.conftest import PASSWORD, sign_in
from tests.workflow.test_wizard import _jose_answers, _registration, _walk_to
from tests.workflow.wizard_walk import WizardWalk
from workflow.models import Acknowledgement, AuditEvent

SIGN_IN_ZH = "登录"


@pytest.mark.parametrize(
    "code, expected",
    [
        ("zh", "zh-hans"),
        ("ZH", "zh-hans"),
        ("zh-tw", "zh-hans"),  # read in Simplified rather than in English
        ("zh-hans", "zh-hans"),
        ("es", "es"),
        ("en", "en"),
        ("vi", None),
        ("", None),
        (None, None),
    ],
)
def test_a_roster_language_finds_the_product_language(code, expected):
    assert product_language(code) == expected


def test_the_first_language_spoken_wins_else_the_districts():
    assert language_or_default("vi", "zh", "es") == "zh-hans"
    assert language_or_default("vi", None) == "en"


def test_amounts_are_written_for_the_reader():
    with translation.override("en"):
        assert money(123450) == "$1,234.50"
        assert money(-5) == "-$0.05"
    with translation.override("es"):
        assert money(123450) == "$1,234.50"  # the Spanish of the United States
    with translation.override("zh-hans"):
        assert money(123450) == "US$1,234.50"
    with translation.override("en"):
        assert dollars(-1850) == "−$18.50" and dollars(None) == "—"


@pytest.mark.django_db
def test_the_site_speaks_chinese_from_the_switch(client):
    home = client.get(reverse("home")).content.decode()
    assert 'value="zh-hans"' in home and ">简体中文<" in home
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    html = client.get(reverse("home")).content.decode()
    assert '<html lang="zh-hans">' in html
    assert SIGN_IN_ZH in html
    assert ">English<" in html and ">Español<" in html


@pytest.mark.django_db
def test_a_switch_without_a_record_changes_nothing(client, sample_district):
    client.post(reverse("set_language"), {"language": "es", "next": "/"})
    assert not AuditEvent.objects.filter(object_type="registration.guardian").exists()


def test_a_guardians_switch_is_kept_and_opens_their_next_sign_in(client, guardian_user):
    sign_in(client, guardian_user)
    guardian = Guardian.objects.get(user=guardian_user)
    assert guardian.language != "zh-hans"
    response = client.post(
        reverse("set_language"), {"language": "zh-hans", "next": reverse("guardian_home")}
    )
    assert response.status_code == 302
    guardian.refresh_from_db()
    assert guardian.language == "zh-hans"
    change = AuditEvent.objects.get(object_type="registration.guardian", object_id=guardian.pk)
    assert change.actor == guardian_user and change.detail["language"][1] == "zh-hans"
    assert guardian_language(guardian) == "zh-hans"

    # Another device, whose browser asks for English: the site opens in Chinese.
    phone = Client(HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    signed_in = phone.post(
        reverse("account_login"), {"login": guardian_user.email, "password": PASSWORD}
    )
    assert phone.cookies["django_language"].value == "zh-hans"
    html = phone.get(signed_in.url, follow=True).content.decode()
    assert '<html lang="zh-hans">' in html

    # Choosing the same language again writes nothing more.
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    assert AuditEvent.objects.filter(object_type="registration.guardian").count() == 1


@pytest.fixture
def chinese_household(sample_district):
    household = Household.objects.get(sourced_id="hh-002")
    household.language = "zh"  # as the roster gives it (ISO 639-1)
    household.save(update_fields=["language"])
    return household


def test_a_chinese_household_gets_chinese_letters(
    chinese_household, transactional_db, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    household_people = [g.full_name for g in chinese_household.guardians.all()] + [
        s.full_name for s in chinese_household.students.all()
    ]
    guardians = [g.full_name for g in chinese_household.guardians.all()]
    out, letters = tmp_path / "codes.csv", tmp_path / "letters.pdf"
    call_command("issue_activation_codes", "--out", str(out), "--letters", str(letters))
    reader = PdfReader(letters)
    pages = [" ".join((page.extract_text() or "").split()) for page in reader.pages]
    chinese = [text for text in pages if "您的激活码" in text]
    assert chinese
    assert all(any(name in text for name in household_people) for text in chinese)
    for name in guardians:
        assert any(name in text for text in chinese), name
    assert all(re.search(r"\d{4}年\d{1,2}月\d{1,2}日", text) for text in chinese)
    # Every other letter is in English or Spanish.
    assert all("Your code:" in t or "Su código:" in t for t in pages if t not in chinese)


def test_a_chinese_household_is_offered_chinese_at_activation(chinese_household):
    guardian = chinese_household.guardians.first()
    assert guardian_language(guardian) == "zh-hans"


def test_the_acknowledgements_step_shows_the_chinese_text(client, guardian_user, campaign):
    sign_in(client, guardian_user)
    client.post(reverse("set_language"), {"language": "zh-hans", "next": "/"})
    wizard = WizardWalk(client, _registration("hh-001"))
    page = _walk_to(wizard, "acknowledgements", _jose_answers())
    assert "出勤、行为和安全规定。" in page.html and "Attendance, behaviour" not in page.html
    assert "家庭手册" in page.html and "Family handbook" not in page.html


@pytest.mark.django_db
def test_a_document_without_chinese_text_is_shown_in_english(campaign):
    ack = Acknowledgement.objects.get(campaign=campaign, key="handbook")
    assert ack.body_in("zh-hans") == "出勤、行为和安全规定。"
    ack.title_zh = ack.body_zh = ""
    assert ack.title_in("zh-hans") == "Family handbook"
    assert ack.body_in("zh-hans") == ack.body_en
    assert ack.body_in("es") == ack.body_es
