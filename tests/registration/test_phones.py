"""Phone numbers as families read them, in every language."""

from __future__ import annotations

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
