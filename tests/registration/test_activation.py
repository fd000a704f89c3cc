"""Activation codes and the /activate/ pages, through HTTP."""

from __future__ import annotations

import datetime
import logging
import math
import re

from django.urls import reverse
from django.utils import timezone

from registration import activation
from registration.models import (
    ActivationAttempt,
    ActivationCode,
    Guardian,
    Student,
    User,
)
from tests.conftest import PASSWORD
from workflow.models import AuditEvent, TransitionLog
from workflow.services import activation_code_issue

GENERIC = "We could not open an account with this code and date of birth."


def issue(sourced_id: str) -> tuple[ActivationCode, str]:
    guardian = Guardian.objects.filter(sourced_id=sourced_id).first()
    if guardian is not None:
        return activation_code_issue(guardian=guardian, channel="letter")
    return activation_code_issue(
        student=Student.objects.get(sourced_id=sourced_id), channel="letter"
    )


def try_code(client, code: str, birth_date: str, ip: str = "203.0.113.7"):
    return client.post(
        reverse("activate"), {"code": code, "birth_date": birth_date}, REMOTE_ADDR=ip
    )


def open_account(client, code: str, birth_date: str, email: str, language: str = "en"):
    response = try_code(client, code, birth_date)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response.url == reverse("activate_account")
    return client.post(
        reverse("activate_account"),
        {
            "email": email,
            "password1": "correct horse battery",
            "password2": "correct horse battery",
            "language": language,
        },
    )


def confirm_email(client, mailoutbox):
    link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", mailoutbox[-1].body).group(0)
    page = client.get(link)
    assert page.status_code == 200
    return client.post(link, follow=True)


# -- the code itself -----------------------------------------------------------------


def test_codes_are_long_random_and_free_of_look_alikes():
    assert len(activation.ALPHABET) == 31
    assert not set("0O1IL") & set(activation.ALPHABET)
    assert activation.LENGTH * math.log2(len(activation.ALPHABET)) >= 64
    codes = {activation.code_generate() for _ in range(500)}
    assert len(codes) == 500
    code = codes.pop()
    shown = activation.code_display(code)
    assert re.fullmatch(r"[2-9A-HJKMNP-Z]{4}(-[2-9A-HJKMNP-Z]{4}){3}", shown)
    assert activation.code_normalise(shown.lower().replace("-", " ")) == code
    assert activation.code_normalise("0000-OOOO-1111-IIII") is None
    assert activation.code_normalise(code[:-1]) is None


def test_a_code_is_stored_only_as_hashes(sample_district):
    code, clear = issue("par-002")
    for model in (ActivationCode, TransitionLog, AuditEvent):
        for row in model.objects.values():
            for value in row.values():
                assert clear not in str(value), model
    assert code.lookup != clear and code.code_hash != clear
    assert activation.code_matches(clear, code.salt, code.code_hash)
    other, _ = issue("par-001")
    assert other.salt != code.salt


def test_issuing_a_new_code_revokes_the_old_one(sample_district, client):
    old, old_clear = issue("par-002")
    new, new_clear = issue("par-002")
    old.refresh_from_db()
    assert (old.state, new.state) == ("revoked", "issued")
    log = TransitionLog.objects.filter(
        object_type="registration.activationcode", object_id=str(old.pk)
    )
    assert list(log.values_list("source", "target")) == [("", "issued"), ("issued", "revoked")]
    assert GENERIC in try_code(client, old_clear, "2018-03-14").content.decode()
    assert try_code(client, new_clear, "2018-03-14").status_code == 302


# -- activating ------------------------------------------------------------------------


def test_a_guardian_activates_and_lands_on_their_family(sample_district, client, mailoutbox):
    code, clear = issue("par-002")
    page = client.get(reverse("activate"))
    assert '<label for="id_code"' in page.content.decode()
    response = try_code(client, clear.lower(), "2014-11-02")  # Mateo's birth date
    assert response.url == reverse("activate_account")
    form = client.get(reverse("activate_account")).content.decode()
    assert "Welcome, José Ángel" in form
    assert 'value="jose.garcia@example.com"' in form  # the address on file, offered
    assert re.search(r'value="es"[^>]* checked', form)  # the household reads Spanish
    assert ">Español</label>" in form
    response = client.post(
        reverse("activate_account"),
        {
            "email": "jose.garcia@example.com",
            "password1": "correct horse battery",
            "password2": "correct horse battery",
            "language": "es",
        },
    )
    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")

    user = User.objects.get(email="jose.garcia@example.com")
    guardian = Guardian.objects.get(sourced_id="par-002")
    assert guardian.user == user and guardian.language == "es"
    code.refresh_from_db()
    assert code.state == "redeemed" and code.redeemed_at is not None
    # The account opens once the address is confirmed.
    assert client.get(reverse("guardian_home")).status_code == 302
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["jose.garcia@example.com"]
    landing = confirm_email(client, mailoutbox)
    assert landing.resolver_match.url_name == "guardian_home"
    assert "Sofía García Núñez" in landing.content.decode()
    assert client.cookies["django_language"].value == "es"


def test_a_code_works_only_once(sample_district, client, mailoutbox):
    _code, clear = issue("par-002")
    assert open_account(client, clear, "2018-03-14", "jose.garcia@example.com").status_code == 302
    client.logout()
    again = try_code(client, clear, "2018-03-14")
    assert again.status_code == 200
    assert GENERIC in again.content.decode()


def test_an_expired_code_is_refused_with_the_same_message(sample_district, client):
    code, clear = issue("par-002")
    ActivationCode.objects.filter(pk=code.pk).update(
        expires_at=timezone.now() - datetime.timedelta(minutes=1)
    )
    assert GENERIC in try_code(client, clear, "2018-03-14").content.decode()


def test_a_wrong_code_and_a_wrong_date_get_the_same_message(sample_district, client):
    _code, clear = issue("par-002")
    wrong_code = try_code(client, activation.code_generate(), "2018-03-14").content.decode()
    wrong_date = try_code(client, clear, "2018-03-15").content.decode()
    for html in (wrong_code, wrong_date):
        assert GENERIC in html
        assert 'role="alert"' in html
    # Nothing typed is lost.
    assert f'value="{clear}"' in wrong_date and 'value="2018-03-15"' in wrong_date


def test_a_mistyped_code_is_explained_next_to_its_field(sample_district, client):
    response = try_code(client, "ABCD-EFGH", "2018-03-14")
    html = response.content.decode()
    assert 'id="id_code_error"' in html
    assert "An activation code has 16 letters and numbers" in html
    assert 'aria-describedby="id_code_helptext id_code_error"' in html
    assert 'aria-invalid="true"' in html


def test_five_failures_lock_the_code_for_thirty_minutes(sample_district, client):
    code, clear = issue("par-002")
    for day in range(1, 6):
        try_code(client, clear, f"2001-01-0{day}")
    code.refresh_from_db()
    assert code.locked_until is not None
    # The right date no longer opens it, and says nothing about the lock.
    refused = try_code(client, clear, "2018-03-14")
    assert GENERIC in refused.content.decode()
    assert ActivationAttempt.objects.filter(code=code, outcome="locked").count() == 1
    # Thirty minutes later it works again.
    ActivationCode.objects.filter(pk=code.pk).update(
        locked_until=timezone.now() - datetime.timedelta(seconds=1)
    )
    ActivationAttempt.objects.filter(code=code).update(
        created_at=timezone.now() - datetime.timedelta(minutes=31)
    )
    assert try_code(client, clear, "2018-03-14").status_code == 302


def test_four_failures_do_not_lock(sample_district, client):
    _code, clear = issue("par-002")
    for day in range(1, 5):
        try_code(client, clear, f"2001-01-0{day}")
    assert try_code(client, clear, "2018-03-14").status_code == 302


def test_one_address_trying_many_codes_is_throttled(sample_district, client):
    for _ in range(10):
        assert try_code(client, activation.code_generate(), "2018-03-14").status_code == 200
    throttled = try_code(client, activation.code_generate(), "2018-03-14")
    assert throttled.status_code == 429
    assert "Too many tries from your connection" in throttled.content.decode()
    # Another address is not affected.
    _code, clear = issue("par-002")
    assert try_code(client, clear, "2018-03-14", ip="198.51.100.4").status_code == 302


def test_failures_are_logged_with_address_and_never_the_code(sample_district, client, caplog):
    _code, clear = issue("par-002")
    typed = activation.code_generate()
    with caplog.at_level(logging.WARNING, logger="security"):
        try_code(client, typed, "2018-03-14")
        try_code(client, clear, "1999-01-01")
    messages = [r.getMessage() for r in caplog.records if r.name == "security"]
    assert len(messages) == 2
    assert all("203.0.113.7" in message for message in messages)
    for secret in (typed, clear, activation.code_display(clear)):
        assert all(secret not in message for message in messages)
    attempts = ActivationAttempt.objects.order_by("pk")
    assert [a.outcome for a in attempts] == ["unknown_code", "wrong_fact"]
    assert all(a.ip_address == "203.0.113.7" for a in attempts)


def test_the_account_step_needs_an_accepted_code(sample_district, client):
    response = client.get(reverse("activate_account"))
    assert response.status_code == 302 and response.url == reverse("activate")


def test_an_email_of_another_account_is_refused_next_to_the_field(
    sample_district, guardian_user, client
):
    _code, clear = issue("par-001")  # María José, José Ángel's wife
    try_code(client, clear, "2018-03-14")
    response = client.post(
        reverse("activate_account"),
        {
            "email": "JOSE.GARCIA@example.com",
            "password1": "correct horse battery",
            "password2": "correct horse battery",
            "language": "es",
        },
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="id_email_error"' in html
    assert "Each parent or guardian needs their own address" in html
    assert 'value="JOSE.GARCIA@example.com"' in html
    assert Guardian.objects.get(sourced_id="par-001").user is None


def test_weak_or_mismatched_passwords_are_explained(sample_district, client):
    _code, clear = issue("par-002")
    try_code(client, clear, "2018-03-14")
    weak = client.post(
        reverse("activate_account"),
        {
            "email": "jose.garcia@example.com",
            "password1": "12345678901",
            "password2": "12345678901",
            "language": "es",
        },
    ).content.decode()
    assert 'id="id_password1_error"' in weak
    different = client.post(
        reverse("activate_account"),
        {
            "email": "jose.garcia@example.com",
            "password1": "correct horse battery",
            "password2": "correct horse staple",
            "language": "es",
        },
    ).content.decode()
    assert "The two passwords are not the same." in different


def test_a_guardian_in_two_households_activates_with_either_childs_birth_date(
    sample_district, client, mailoutbox
):
    _code, clear = issue("par-005")  # Ngozi: raises Chidi, grandmother of Amara elsewhere
    assert open_account(client, clear, "2020-02-29", "ngozi.okafor@example.com").status_code == 302
    landing = confirm_email(client, mailoutbox)
    html = landing.content.decode()
    assert "780 El Dorado Ave" in html and "781 El Dorado Ave" in html
    assert "Chidi Okafor" in html and "Amara Okafor" in html


def test_a_secondary_student_activates_into_a_read_only_home(sample_district, client, mailoutbox):
    _code, clear = issue("stu-002")  # Mateo, grade 7
    # A parent's birth date is not the student's fact.
    assert GENERIC in try_code(client, clear, "2018-03-14").content.decode()
    form = try_code(client, clear, "2014-11-02")
    assert form.status_code == 302
    response = client.post(
        reverse("activate_account"),
        {
            "email": "mateo.garcia@example.com",
            "password1": "correct horse battery",
            "password2": "correct horse battery",
            "language": "en",
        },
    )
    assert response.status_code == 302
    landing = confirm_email(client, mailoutbox)
    assert landing.resolver_match.url_name == "student_home"
    html = landing.content.decode()
    assert "Sequoia Middle School" in html and "Grade 7" in html
    assert "jose.garcia@example.com" in html  # the contacts on file
    assert "<form" not in html.split('id="main"')[1].split("</main>")[0]  # read-only
    # A student's account reaches no guardian page and no staff page.
    assert client.get(reverse("guardian_home")).status_code == 403
    assert client.get(reverse("staff_home")).status_code == 403
    assert client.get(reverse("staff_guardians")).status_code == 403


def test_a_guardian_cannot_open_the_student_home(guardian_user, client):
    client.force_login(guardian_user)
    assert client.get(reverse("student_home")).status_code == 403


def test_signed_in_people_skip_activation(guardian_user, client):
    client.force_login(guardian_user)
    assert client.get(reverse("activate")).url == reverse("after_sign_in")


def test_the_sign_in_page_throttles_failed_passwords(guardian_user, client):
    for _ in range(5):
        client.post(
            reverse("account_login"), {"login": guardian_user.email, "password": "not the password"}
        )
    blocked = client.post(
        reverse("account_login"), {"login": guardian_user.email, "password": PASSWORD}
    )
    assert blocked.status_code != 302
    assert "Too many failed login attempts" in blocked.content.decode()


def test_behind_a_load_balancer_the_visitors_address_counts(sample_district, client, settings):
    settings.TRUSTED_PROXY_HOPS = 1
    for _ in range(10):
        client.post(
            reverse("activate"),
            {"code": activation.code_generate(), "birth_date": "2018-03-14"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR="spoofed, 203.0.113.9",
        )
    _code, clear = issue("par-002")
    # Another visitor behind the same balancer is not throttled.
    other = client.post(
        reverse("activate"),
        {"code": clear, "birth_date": "2018-03-14"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.20",
    )
    assert other.status_code == 302
    assert ActivationAttempt.objects.filter(ip_address="203.0.113.9").count() == 10
