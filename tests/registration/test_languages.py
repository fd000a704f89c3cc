"""English, Spanish and Simplified Chinese: a household's language from the roster
finds the product's, a guardian's choice is kept and follows them, and letters,
pages, amounts and documents are written in it."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from pypdf import PdfReader

from config.languages import language_or_default, product_language
from payments.forms import MoneyField
from payments.money import money
from payments.templatetags.staff_money import dollars
from registration.models import Guardian, Household
from registration.services import guardian_language
from tests.conftest import PASSWORD, sign_in
from tests.workflow.test_wizard import _jose_answers, _registration, _walk_to
from tests.workflow.wizard_walk import WizardWalk
from workflow.models import Acknowledgement, AuditEvent

SIGN_IN_ZH = "登录"
# django-allauth's subject, translated in allauth's catalogues: named here, not written
# in gettext(), so that makemessages does not copy it into the project's catalogues.
ALLAUTH_RESET_SUBJECT = "Password Reset Email"


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
    # The Chinese is drawn in a font that has its glyphs (`make` installs WenQuanYi),
    # not in boxes: text extraction alone would not tell.
    for page in reader.pages:
        if "您的激活码" in " ".join((page.extract_text() or "").split()):
            fonts = [str(font.get_object()["/BaseFont"]) for font in _fonts_of(page)]
            assert any(name.endswith("WenQuanYi-Micro-Hei") for name in fonts), fonts
    # Every other letter is in English or Spanish.
    assert all("Your code:" in t or "Su código:" in t for t in pages if t not in chinese)


def _fonts_of(page):
    return page["/Resources"]["/Font"].values()


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


def test_a_password_reset_email_is_in_the_guardians_language(client, guardian_user):
    Guardian.objects.filter(user=guardian_user).update(language="zh-hans")
    client.post(
        reverse("account_reset_password"),
        {"email": guardian_user.email},
        HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9",
    )
    (message,) = mail.outbox
    with translation.override("zh-hans"):
        assert gettext(ALLAUTH_RESET_SUBJECT) in message.subject
    assert "Password Reset" not in message.subject


def test_a_language_code_in_any_case_finds_the_translation(campaign):
    ack = Acknowledgement.objects.get(campaign=campaign, key="handbook")
    assert ack.body_in("zh-Hans") == ack.body_zh
    with translation.override("zh-Hans"):
        assert money(100) == "US$1.00"


def test_a_document_written_before_chinese_gets_its_translation_in_place(
    client, registrar_user, campaign
):
    ack = Acknowledgement.objects.get(campaign=campaign, key="photo-day")
    Acknowledgement.objects.filter(pk=ack.pk).update(title_zh="", body_zh="")
    sign_in(client, registrar_user)
    edit = reverse("staff_acknowledgement_edit", args=[campaign.pk, ack.pk])
    fields = {
        "key": ack.key,
        "title_en": ack.title_en,
        "body_en": ack.body_en,
        "title_es": ack.title_es,
        "body_es": ack.body_es,
        "position": "5",
    }
    # Its other details change without a translation it never had...
    response = client.post(edit, fields)
    assert response.status_code == 302, response.context["form"].errors
    ack.refresh_from_db()
    assert (ack.position, ack.required, ack.version) == (5, False, 1)
    # ...and the translation written for the first time keeps the version (and every
    # acceptance of it).
    client.post(edit, {**fields, "title_zh": "拍照日", "body_zh": "班级照在九月拍摄。"})
    current = Acknowledgement.objects.get(campaign=campaign, key="photo-day", is_current=True)
    assert (current.pk, current.version, current.title_zh) == (ack.pk, 1, "拍照日")
    change = AuditEvent.objects.filter(object_id=str(ack.pk), action="change").latest("pk")
    assert change.detail == {"translated": ["title_zh", "body_zh"]}
    # Changing a translation it already had is a new version.
    client.post(edit, {**fields, "title_zh": "拍照日", "body_zh": "班级照和年鉴照在九月拍摄。"})
    current = Acknowledgement.objects.get(campaign=campaign, key="photo-day", is_current=True)
    assert current.version == 2


def test_amounts_are_read_as_the_page_writes_them():
    field = MoneyField(required=False)
    for typed in ("20", "$20.00", "US$20.00", "us$ 20", "20,00"):
        assert field.clean(typed) == 2000, typed


def test_the_cart_writes_its_total_with_the_readers_currency_sign(client, guardian_user, campaign):
    from payments.models import Fee

    Fee.objects.create(kind=Fee.Kind.OPTIONAL, title="Yearbook", title_zh="年鉴", amount_cents=3500)
    sign_in(client, guardian_user)
    client.cookies["django_language"] = "zh-hans"
    html = client.get(reverse("guardian_fees"), follow=True).content.decode()
    assert 'data-currency="US$"' in html and "US$35.00" in html
