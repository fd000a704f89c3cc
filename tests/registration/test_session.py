"""Idle sign-out after 30 minutes, with a warning and a way to stay signed in."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from tests.conftest import sign_in


def expiry(client):
    return Session.objects.get(session_key=client.session.session_key).expire_date


def test_sessions_end_after_thirty_idle_minutes_and_each_request_restarts_them(
    guardian_user, client
):
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    sign_in(client, guardian_user)
    client.get(reverse("guardian_home"))
    first = expiry(client)
    assert first - timezone.now() <= datetime.timedelta(minutes=30)
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() + datetime.timedelta(minutes=5)
    )
    client.get(reverse("guardian_home"))
    assert expiry(client) - timezone.now() > datetime.timedelta(minutes=29)


def test_signed_in_pages_carry_the_warning(guardian_user, client):
    sign_in(client, guardian_user)
    html = client.get(reverse("guardian_home")).content.decode()
    assert 'id="session-warning" hidden role="alertdialog"' in html
    assert 'data-idle-seconds="1800"' in html and 'data-warning-seconds="120"' in html
    assert "Stay signed in" in html
    assert f'action="{reverse("session_extend")}"' in html
    assert '<script src="/static/js/session.js" defer></script>' in html
    assert "<script>" not in html  # no inline script


def test_anonymous_pages_have_no_warning(db, client):
    assert "session-warning" not in client.get(reverse("home")).content.decode()


def test_stay_signed_in_restarts_the_timer(guardian_user, client):
    sign_in(client, guardian_user)
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() + datetime.timedelta(minutes=1)
    )
    response = client.post(reverse("session_extend"), HTTP_X_REQUESTED_WITH="fetch")
    assert response.status_code == 204
    assert expiry(client) - timezone.now() > datetime.timedelta(minutes=29)
    plain = client.post(reverse("session_extend"), {"next": reverse("guardian_home")})
    assert plain.url == reverse("guardian_home")
    elsewhere = client.post(reverse("session_extend"), {"next": "https://evil.example/"})
    assert elsewhere.url == reverse("after_sign_in")


def test_an_expired_session_signs_the_guardian_out(guardian_user, client):
    sign_in(client, guardian_user)
    Session.objects.filter(session_key=client.session.session_key).update(
        expire_date=timezone.now() - datetime.timedelta(seconds=1)
    )
    response = client.get(reverse("guardian_home"))
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))
    page = client.get(reverse("account_login") + "?timeout=1").content.decode()
    assert "You were signed out after 30 minutes without activity." in page


def test_the_script_is_served(db, client):
    from django.contrib.staticfiles import finders

    script = finders.find("js/session.js")
    assert script is not None
    with open(script, encoding="utf-8") as handle:
        text = handle.read()
    assert "session-warning" in text and "X-Requested-With" in text
