"""Attacks on sessions and sign-in, each of which must fail: a session fixed before
sign-in (or before an activation code or a second factor is accepted), a session
cookie replayed after sign-out, a form posted without its CSRF token, a guessed
activation code, guessed passwords and a flood of password-reset requests.
"""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.http import int_to_base36

from registration import activation, throttle
from registration.mfa import totp_code, totp_secret
from registration.models import ActivationAttempt, ActivationCode, Guardian, User
from tests.conftest import PASSWORD, sign_in
from workflow.services import activation_code_issue

MATEO_BORN = "2014-11-02"  # a child's birth date: José's fact for his activation code
STAFF_HOME = "/staff/"


def _planted(client: Client) -> str:
    """An attacker's session, planted in the victim's browser before sign-in."""
    session = SessionStore()
    session["planted"] = True
    session.create()
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    return str(session.session_key)


def _with_cookie(session_key: str) -> Client:
    """The attacker's own browser, holding a copy of the session cookie."""
    attacker = Client()
    attacker.cookies[settings.SESSION_COOKIE_NAME] = session_key
    return attacker


def _signed_in(session_key: str) -> bool:
    session = SessionStore(session_key=session_key)
    return SESSION_KEY in session.load()


def _key(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _is_sign_in_redirect(response: Any) -> bool:
    return response.status_code == 302 and response.url.startswith(reverse("account_login"))


# -- session fixation -------------------------------------------------------------------------


def test_signing_in_starts_a_new_session(guardian_user, client):
    planted = _planted(client)
    sign_in(client, guardian_user)
    assert _key(client) != planted
    assert not _signed_in(planted)
    assert _is_sign_in_redirect(_with_cookie(planted).get(reverse("guardian_home")))
    assert client.get(reverse("guardian_home")).status_code == 200


def test_the_second_factor_step_starts_a_new_session(registrar_user, client):
    planted = _planted(client)
    response = client.post(
        reverse("account_login"), {"login": registrar_user.email, "password": PASSWORD}
    )
    assert response.url == reverse("mfa_authenticate")
    halfway = _key(client)
    # The password alone opens nothing, in either browser.
    for browser in (client, _with_cookie(planted), _with_cookie(halfway)):
        assert _is_sign_in_redirect(browser.get(STAFF_HOME))
    # The attacker holding a copy of the cookie does not know the code.
    _with_cookie(halfway).post(reverse("mfa_authenticate"), {"code": "000000"})
    assert not _signed_in(halfway)
    code = totp_code(totp_secret(registrar_user))
    assert client.post(reverse("mfa_authenticate"), {"code": code}).status_code == 302
    assert client.get(STAFF_HOME).status_code == 200
    assert _key(client) not in (planted, halfway)
    for key in (planted, halfway):
        assert not _signed_in(key)
        assert _is_sign_in_redirect(_with_cookie(key).get(STAFF_HOME))


def test_an_accepted_activation_code_starts_a_new_session(sample_district, client, mailoutbox):
    guardian = Guardian.objects.get(sourced_id="par-002")
    code, clear = activation_code_issue(guardian=guardian, channel="letter")
    planted = _planted(client)
    accepted = client.post(reverse("activate"), {"code": clear, "birth_date": MATEO_BORN})
    assert accepted.url == reverse("activate_account")
    assert _key(client) != planted
    # The attacker's copy of the old cookie does not carry the accepted code: no
    # account of theirs can be opened with it.
    attacker = _with_cookie(planted)
    assert attacker.get(reverse("activate_account")).url == reverse("activate")
    taken = attacker.post(
        reverse("activate_account"),
        {
            "email": "intruder@example.com",
            "password1": "correct horse battery",
            "password2": "correct horse battery",
            "language": "en",
        },
    )
    assert taken.url == reverse("activate")
    assert not User.objects.filter(email="intruder@example.com").exists()
    code.refresh_from_db()
    assert code.state == ActivationCode.State.ISSUED

    created = client.post(
        reverse("activate_account"),
        {
            "email": "jose.garcia@example.com",
            "password1": "correct horse battery",
            "password2": "correct horse battery",
            "language": "en",
        },
    )
    assert created.status_code == 302
    before_confirming = _key(client)
    link = re.search(r"https?://\S+(/accounts/confirm-email/\S+/)", mailoutbox[-1].body).group(1)
    client.post(link)
    assert client.get(reverse("guardian_home")).status_code == 200
    assert _key(client) not in (planted, before_confirming)
    assert not _signed_in(planted) and not _signed_in(before_confirming)


# -- cookie replay after sign-out ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "page"),
    [("guardian_user", "guardian_home"), ("registrar_user", "staff_home")],
)
def test_a_session_cookie_is_worthless_after_sign_out(request, actor, page, client):
    user = request.getfixturevalue(actor)
    sign_in(client, user)
    assert client.get(reverse(page)).status_code == 200
    stolen = _key(client)
    client.post(reverse("account_logout"))
    assert not Session.objects.filter(session_key=stolen).exists()
    replay = _with_cookie(stolen)
    assert _is_sign_in_redirect(replay.get(reverse(page)))
    assert replay.post(reverse("session_extend"), {"next": "/"}).status_code == 401


def test_the_old_cookie_stays_dead_when_the_person_signs_in_again(guardian_user, client):
    sign_in(client, guardian_user)
    stolen = _key(client)
    client.post(reverse("account_logout"))
    sign_in(client, guardian_user)
    assert _key(client) != stolen
    assert _is_sign_in_redirect(_with_cookie(stolen).get(reverse("guardian_home")))


# -- CSRF -----------------------------------------------------------------------------------------

# The one view that takes posts without a token: Stripe signs its deliveries.
CSRF_EXEMPT = {"stripe_webhook"}
SAMPLE_VALUES = {"app_label": "registration", "uidb36": "2", "step": "contacts", "kind": "optional"}


def _routes(patterns: list[Any], prefix: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern).lstrip("^")
        if isinstance(pattern, URLResolver):
            found += _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            found.append((route, pattern.name or route))
    return found


def _url(route: str) -> str:
    """The route with its arguments filled in (any value the pattern accepts: the
    token is checked before any view runs)."""
    url = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: SAMPLE_VALUES.get(m.group(1), "x1"), route)
    url = re.sub(
        r"<(?:(\w+):)?(\w+)>",
        lambda m: SAMPLE_VALUES.get(m.group(2), "1" if m.group(1) in (None, "int") else "x1"),
        url,
    )
    return "/" + url.rstrip("$")


def test_every_post_without_a_csrf_token_is_refused(guardian_user, caplog):
    """Every URL the project has, posted to by a signed-in guardian and by a visitor
    whose browser holds a CSRF cookie but whose form has no token."""
    signed_in = Client(enforce_csrf_checks=True)
    signed_in.force_login(guardian_user)
    visitor = Client(enforce_csrf_checks=True)
    for browser, page in ((signed_in, "guardian_home"), (visitor, "account_login")):
        browser.get(reverse(page))  # a page with a form: the CSRF cookie is set
        assert settings.CSRF_COOKIE_NAME in browser.cookies
    wrong = []
    routes = _routes(get_resolver().url_patterns)
    assert len(routes) > 100
    for route, name in routes:
        url = _url(route)
        for who, browser in (("guardian", signed_in), ("visitor", visitor)):
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="django.security.csrf"):
                response = browser.post(url, {"email": "jose.garcia@example.com"})
            refused = response.status_code == 403 and any(
                r.name == "django.security.csrf" for r in caplog.records
            )
            if name in CSRF_EXEMPT:
                if refused:
                    wrong.append(f"{url} ({name}) refuses Stripe's posts")
            elif not refused:
                wrong.append(f"{url} ({name}) as {who}: {response.status_code}")
    assert not wrong, "\n".join(wrong)


def test_a_form_with_its_token_is_accepted_by_the_same_checks(guardian_user):
    """The control: the same client, with the token the page gave, gets through."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(guardian_user)
    browser.get(reverse("guardian_home"))
    token = browser.cookies[settings.CSRF_COOKIE_NAME].value
    response = browser.post(
        reverse("session_extend"), {"csrfmiddlewaretoken": token, "next": "/home/"}
    )
    assert response.status_code == 302 and response.url == "/home/"


def test_the_csrf_refusal_page_says_what_to_do(guardian_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(guardian_user)
    response = browser.post(reverse("session_extend"))
    assert response.status_code == 403
    assert "This form could not be sent" in response.content.decode()


# -- guessing activation codes --------------------------------------------------------------------


def _try(client: Client, code: str, birth_date: str, ip: str, **headers: str) -> Any:
    return client.post(
        reverse("activate"), {"code": code, "birth_date": birth_date}, REMOTE_ADDR=ip, **headers
    )


def test_guessing_a_familys_birth_date_from_many_addresses_locks_the_code(sample_district):
    """The lock is the code's, wherever the guesses come from."""
    guardian = Guardian.objects.get(sourced_id="par-002")
    code, clear = activation_code_issue(guardian=guardian, channel="letter")
    for attempt in range(1, settings.ACTIVATION_LOCKOUT_FAILURES + 1):
        refused = _try(Client(), clear, f"2001-01-0{attempt}", f"198.51.100.{attempt}")
        assert refused.status_code == 200
    code.refresh_from_db()
    assert code.locked_until is not None
    # The right birth date, from yet another address and a fresh browser: refused.
    late = _try(Client(), clear, MATEO_BORN, "203.0.113.200")
    assert late.status_code == 200 and "activate/account" not in late.get("Location", "")
    code.refresh_from_db()
    assert code.state == ActivationCode.State.ISSUED and guardian.user_id is None
    assert ActivationAttempt.objects.filter(code=code, outcome="locked").exists()


def test_guessing_codes_from_one_address_is_throttled_whatever_the_headers_say(
    sample_district, monkeypatch
):
    """Ten tries a minute per address; a forged X-Forwarded-For does not make a new
    address (no proxy is trusted here)."""
    # One instant for every try: the per-minute window cannot end halfway through.
    monkeypatch.setattr(throttle, "time", SimpleNamespace(time=lambda: 1_900_000_000.0))
    assert settings.TRUSTED_PROXY_HOPS == 0
    guesser = Client()
    limit = settings.ACTIVATION_IP_LIMITS[0][0]
    for index in range(limit):
        response = _try(
            guesser,
            activation.code_generate(),
            MATEO_BORN,
            "203.0.113.50",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{index}",
        )
        assert response.status_code == 200
    guardian = Guardian.objects.get(sourced_id="par-002")
    _code, clear = activation_code_issue(guardian=guardian, channel="letter")
    # Even the right code is refused from that address now, and says why.
    throttled = _try(guesser, clear, MATEO_BORN, "203.0.113.50", HTTP_X_FORWARDED_FOR="192.0.2.250")
    assert throttled.status_code == 429
    assert "Too many tries from your connection" in throttled.content.decode()
    assert ActivationAttempt.objects.filter(outcome="throttled").count() == 1


def test_guessing_a_second_factor_code_is_stopped_after_five_tries(registrar_user, client):
    """A stolen password and a pending sign-in: five wrong codes, and then even the
    right one is refused for a while."""
    response = client.post(
        reverse("account_login"), {"login": registrar_user.email, "password": PASSWORD}
    )
    assert response.url == reverse("mfa_authenticate")
    for guess in range(5):
        wrong = client.post(reverse("mfa_authenticate"), {"code": f"{guess:06d}"})
        assert wrong.status_code == 200
    right = client.post(
        reverse("mfa_authenticate"), {"code": totp_code(totp_secret(registrar_user))}
    )
    assert right.status_code == 200
    assert "Too many failed login attempts" in right.content.decode()
    assert _is_sign_in_redirect(client.get(STAFF_HOME))


# -- guessing passwords, flooding password resets ---------------------------------------------


def _sign_in_attempt(client: Client, email: str, password: str, ip: str) -> Any:
    return client.post(
        reverse("account_login"), {"login": email, "password": password}, REMOTE_ADDR=ip
    )


def test_guessing_passwords_of_many_accounts_from_one_address_is_stopped(
    guardian_user, other_guardian_user
):
    """Ten failures a minute per address, across accounts; other addresses sign in."""
    attacker = Client()
    for index in range(10):
        _sign_in_attempt(attacker, f"someone{index}@example.com", "guess-123456", "203.0.113.9")
    blocked = _sign_in_attempt(attacker, guardian_user.email, PASSWORD, "203.0.113.9")
    assert blocked.status_code != 302
    assert "Too many failed login attempts" in blocked.content.decode()
    allowed = _sign_in_attempt(Client(), other_guardian_user.email, PASSWORD, "198.51.100.9")
    assert allowed.status_code == 302


def test_guessing_one_accounts_password_from_many_addresses_is_stopped(guardian_user):
    """Five failures per account, whichever addresses they come from."""
    for index in range(5):
        _sign_in_attempt(Client(), guardian_user.email, "guess-123456", f"198.51.100.{index}")
    blocked = _sign_in_attempt(Client(), guardian_user.email, PASSWORD, "192.0.2.77")
    assert blocked.status_code != 302
    assert "Too many failed login attempts" in blocked.content.decode()


def test_password_reset_requests_are_limited_per_address_and_per_account(guardian_user, mailoutbox):
    for _ in range(5):
        response = Client().post(
            reverse("account_reset_password"),
            {"email": guardian_user.email},
            REMOTE_ADDR="198.51.100.30",
        )
        assert response.status_code == 302
    flooded = Client().post(
        reverse("account_reset_password"), {"email": guardian_user.email}, REMOTE_ADDR="192.0.2.3"
    )
    assert flooded.status_code == 429
    assert len(mailoutbox) == 5

    for index in range(15):
        Client().post(
            reverse("account_reset_password"),
            {"email": f"nobody{index}@example.com"},
            REMOTE_ADDR="198.51.100.30",
        )
    from_that_address = Client().post(
        reverse("account_reset_password"),
        {"email": "someone.else@example.com"},
        REMOTE_ADDR="198.51.100.30",
    )
    assert from_that_address.status_code == 429


def test_guessing_password_reset_keys_is_throttled(guardian_user):
    uidb36 = int_to_base36(guardian_user.pk)
    url_of = lambda n: reverse(  # noqa: E731
        "account_reset_password_from_key", kwargs={"uidb36": uidb36, "key": f"guess-{n}"}
    )
    guesser = Client()
    password = {"password1": "taken-over-9876", "password2": "taken-over-9876"}
    answers = [
        guesser.post(url_of(n), password, REMOTE_ADDR="203.0.113.77").status_code for n in range(21)
    ]
    assert answers[:20] == [200] * 20
    assert answers[20] == 429
    guardian_user.refresh_from_db()
    assert guardian_user.check_password(PASSWORD)
