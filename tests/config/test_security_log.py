"""Every authentication failure and access refusal is logged with who, from where
and when, and never with the password, code or token that was typed; sign-in and
password reset are rate limited per visitor address and per account."""

from __future__ import annotations

import logging

import pytest
from allauth.account.forms import default_token_generator
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils.http import int_to_base36

from config.security_log import path_shown
from registration.mfa import totp_code, totp_secret
from tests.conftest import PASSWORD

WRONG_PASSWORD = "Wrong-Secret-Password-42"
VISITOR = "203.0.113.7"


def logged(caplog, name: str = "security") -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name]


def test_a_failed_sign_in_names_the_account_and_address_never_the_password(
    guardian_user, client, caplog
):
    with caplog.at_level(logging.WARNING, logger="security"):
        response = client.post(
            reverse("account_login"),
            {"login": guardian_user.email, "password": WRONG_PASSWORD},
            REMOTE_ADDR=VISITOR,
        )
        client.post(
            reverse("account_login"),
            {"login": "nobody@example.org", "password": WRONG_PASSWORD},
            REMOTE_ADDR=VISITOR,
        )
    assert response.status_code == 200
    first, second = logged(caplog)
    assert first.getMessage() == (
        f"sign-in failed: account {guardian_user.pk}; ip {VISITOR}, path /accounts/login/"
    )
    assert first.created > 0  # the formatter prints it as the line's time
    assert second.getMessage().startswith("sign-in failed: account unknown; ip 203.0.113.7")
    for secret in (WRONG_PASSWORD, guardian_user.email, "nobody@example.org", "********"):
        assert secret not in caplog.text


def test_a_wrong_second_factor_is_logged_without_the_code(registrar_user, client, caplog):
    client.post(reverse("account_login"), {"login": registrar_user.email, "password": PASSWORD})
    right = totp_code(totp_secret(registrar_user))
    wrong = "135790" if right != "135790" else "246801"
    with caplog.at_level(logging.WARNING, logger="security"):
        response = client.post(reverse("mfa_authenticate"), {"code": wrong}, REMOTE_ADDR=VISITOR)
    assert response.status_code == 200
    (record,) = logged(caplog)
    assert record.getMessage() == (
        f"second factor failed: account {registrar_user.pk}, totp; ip {VISITOR}"
    )
    assert wrong not in caplog.text and right not in caplog.text


@pytest.mark.parametrize("token_sent", [False, True])
def test_a_csrf_failure_is_logged_and_explained(guardian_user, caplog, token_sent):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(guardian_user)
    data = {"next": "/"}
    if token_sent:
        browser.cookies["csrftoken"] = "A" * 32
        data["csrfmiddlewaretoken"] = "B" * 32
    with caplog.at_level(logging.WARNING, logger="security"):
        response = browser.post(reverse("account_logout"), data, REMOTE_ADDR=VISITOR)
    assert response.status_code == 403
    page = response.content.decode()
    assert "This form could not be sent" in page
    assert "Go to the start page" in page
    (record,) = [r for r in caplog.records if r.name.startswith("security")]
    message = record.getMessage()
    assert message.startswith("refused: CSRF check failed (CSRF ")
    assert f"user {guardian_user.pk}, path /accounts/logout/, ip {VISITOR}" in message
    assert "A" * 32 not in caplog.text and "B" * 32 not in caplog.text


def test_an_object_view_that_finds_nothing_is_logged(registrar_user, client, caplog):
    client.force_login(registrar_user)
    with caplog.at_level(logging.WARNING, logger="security"):
        response = client.get(
            reverse("staff_campaign", args=[987654]) + "?token=abc", REMOTE_ADDR=VISITOR
        )
    assert response.status_code == 404
    (record,) = logged(caplog, "security.refused")
    assert record.getMessage() == (
        f"refused: 404 GET /staff/campaigns/987654/; user {registrar_user.pk}, ip {VISITOR}"
    )


def test_a_refusal_the_view_logged_with_its_reason_is_logged_once(guardian_user, client, caplog):
    client.force_login(guardian_user)
    with caplog.at_level(logging.WARNING, logger="security"):
        assert client.get(reverse("staff_home"), REMOTE_ADDR=VISITOR).status_code == 403
    (record,) = [r for r in caplog.records if r.name.startswith("security")]
    assert record.getMessage() == (
        f"refused: not staff; user {guardian_user.pk}, path /staff/, ip {VISITOR}"
    )


def test_keys_in_a_path_are_masked():
    factory = RequestFactory()
    assert (
        path_shown(factory.get("/accounts/password/reset/key/3-abc-s3cret/"))
        == "/accounts/password/reset/key/…/"
    )
    assert path_shown(factory.get("/accounts/confirm-email/Mg:1t:s3cret/")) == (
        "/accounts/confirm-email/…/"
    )
    assert path_shown(factory.get("/staff/campaigns/3/?key=1")) == "/staff/campaigns/3/"


def test_password_reset_is_limited_per_account(guardian_user, client, mailoutbox, caplog):
    reset = reverse("account_reset_password")
    for _ in range(5):
        assert client.post(reset, {"email": guardian_user.email}).status_code == 302
    with caplog.at_level(logging.WARNING, logger="security"):
        blocked = client.post(reset, {"email": guardian_user.email}, REMOTE_ADDR=VISITOR)
    assert blocked.status_code == 429
    assert "Too many tries from your connection" in blocked.content.decode()
    assert len(mailoutbox) == 5
    (record,) = logged(caplog, "security.refused")
    assert record.getMessage() == (
        f"refused: 429 POST /accounts/password/reset/; user -, ip {VISITOR}"
    )
    assert guardian_user.email not in caplog.text


def test_password_reset_is_limited_per_address(sample_district, client, mailoutbox):
    reset = reverse("account_reset_password")
    for n in range(20):
        response = client.post(reset, {"email": f"family{n}@example.org"}, REMOTE_ADDR=VISITOR)
        assert response.status_code == 302
    assert (
        client.post(reset, {"email": "one.more@example.org"}, REMOTE_ADDR=VISITOR).status_code
        == 429
    )
    other = client.post(reset, {"email": "one.more@example.org"}, REMOTE_ADDR="198.51.100.4")
    assert other.status_code == 302


def test_behind_the_load_balancer_each_family_has_its_own_sign_in_limit(
    guardian_user, client, settings
):
    """allauth reads the visitor's address from X-Forwarded-For like the rest of the
    product: ten families mistyping a password through the same load balancer do not
    lock out the eleventh."""
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    for n in range(12):
        client.post(
            reverse("account_login"),
            {"login": f"family{n}@example.org", "password": WRONG_PASSWORD},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n + 1}",
        )
    response = client.post(
        reverse("account_login"),
        {"login": guardian_user.email, "password": PASSWORD},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.200",
    )
    assert response.status_code == 302


def test_a_line_break_in_a_url_cannot_write_a_line_into_the_log(db, client, caplog):
    with caplog.at_level(logging.WARNING, logger="security.refused"):
        client.get("/nope%0a2026-11-29 WARNING security sign-in failed: account 1")
    (record,) = logged(caplog, "security.refused")
    message = record.getMessage()
    assert "\n" not in message and "/nope\\n2026-11-29" in message


def test_a_refused_reset_or_confirmation_key_is_logged_without_the_key(
    guardian_user, client, caplog
):
    """Both pages answer a wrong key with 200 and a page of their own; a right key is
    not logged."""
    uidb36 = int_to_base36(guardian_user.pk)
    wrong_reset = reverse(
        "account_reset_password_from_key", kwargs={"uidb36": uidb36, "key": "cz5v-s3cret0"}
    )
    wrong_confirmation = reverse("account_confirm_email", args=["MQ:1tXyZq:s3cret-signature"])
    with caplog.at_level(logging.WARNING, logger="security"):
        answers = [
            client.get(wrong_reset, REMOTE_ADDR=VISITOR).status_code,
            client.get(wrong_confirmation, REMOTE_ADDR=VISITOR).status_code,
        ]
    assert answers == [200, 200]
    assert [r.getMessage() for r in logged(caplog)] == [
        f"key refused: password reset; user -, path /accounts/password/reset/key/…/, ip {VISITOR}",
        f"key refused: email confirmation; user -, path /accounts/confirm-email/…/, ip {VISITOR}",
    ]
    assert "s3cret" not in caplog.text

    caplog.clear()
    right_reset = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": uidb36, "key": default_token_generator.make_token(guardian_user)},
    )
    with caplog.at_level(logging.WARNING, logger="security"):
        form = client.get(right_reset, follow=True, REMOTE_ADDR=VISITOR)
    assert form.status_code == 200 and "password1" in form.content.decode()
    assert not [r for r in caplog.records if r.name.startswith("security")]
