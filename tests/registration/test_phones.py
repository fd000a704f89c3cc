"""Phone numbers as families read them, in every language."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from phonenumber_field.phonenumber import PhoneNumber

from registration.models import ContactPoint, Guardian
from registration.templatetags.phones import phone
from tests.conftest import sign_in


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("+16505550123", "(650) 555-0123"),  # the district's own country: nationally
        ("+525512345678", "+52 55 1234 5678"),  # another country: with its code
        ("+18095551234", "+1 809-555-1234"),  # another country of the +1 plan too
    ],
)
def test_a_number_is_written_nationally_only_in_the_districts_country(stored, shown):
    assert phone(PhoneNumber.from_string(stored)) == shown


def test_an_unparsable_or_missing_number_is_shown_as_stored():
    assert phone(None) == "" and phone("") == ""
    assert phone(PhoneNumber.from_string("+1555")) == "+1555"


@pytest.mark.parametrize("language", ["en", "es", "zh-hans"])
def test_the_guardian_home_writes_numbers_the_same_in_every_language(
    client, guardian_user, language
):
    guardian = Guardian.objects.get(user=guardian_user)
    ContactPoint.objects.create(
        guardian=guardian, kind="phone", label="work", phone="+525512345678", position=9
    )
    sign_in(client, guardian_user)
    client.post(reverse("set_language"), {"language": language, "next": "/"})
    html = client.get(reverse("guardian_home")).content.decode()
    assert f'<html lang="{language}">' in html
    assert "+52 55 1234 5678" in html
    us_numbers = [
        point.phone for point in guardian.contact_points.filter(kind="phone") if point.phone
    ]
    us = [n for n in us_numbers if n.country_code == 1]
    assert us and all(str(n.as_national) in html for n in us)
    assert not any(str(n.as_e164) in html or str(n.as_international) in html for n in us)


def test_the_help_line_is_written_like_every_other_number(client, settings, sample_district):
    """``DISTRICT_HELP_PHONE`` as the operator typed it, "+1 650 555 0100", reads
    "(650) 555-0100" in the footer, the letters and the emails; the footer's link dials
    it in full."""
    from documents.letters import letters_html
    from tests.documents.sample_letters import sample_letter

    settings.DISTRICT_HELP_PHONE = "+1 650 555 0100"
    for language in ("en", "es"):
        html = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE=language).content.decode()
        assert '<a href="tel:+16505550100">(650) 555-0100</a>' in html
        assert "+1 650 555 0100" not in html
    letter = letters_html([sample_letter("Ana", "es")], today=datetime.date(2026, 5, 4))
    assert "(650) 555-0100" in letter and "+1 650 555 0100" not in letter
    # A value that is no phone number is shown as set rather than lost.
    settings.DISTRICT_HELP_PHONE = "ext. 4100"
    assert "ext. 4100" in client.get(reverse("home")).content.decode()
