"""Staff must enrol an authenticator app (TOTP) before they open any staff page, and
then sign in with it."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from django.urls import reverse

from registration.mfa import totp_code, totp_secret
from tests.conftest import PASSWORD, sign_in

STAFF = ["office_user", "teacher_user", "finance_user", "registrar_user"]


@pytest.mark.parametrize("actor", STAFF)
def test_staff_without_an_authenticator_are_sent_to_enrol(actor, request, client):
    user = request.getfixturevalue(actor)
    Authenticator.objects.filter(user=user).delete()
    sign_in(client, user)
    for url in (reverse("staff_home"), reverse("staff_guardians"), reverse("admin:index")):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("mfa_activate_totp")), url
    # Enrolling asks for the password once more, then shows the QR code to scan.
    confirm = client.get(reverse("mfa_activate_totp"))
    assert confirm.url.startswith(reverse("account_reauthenticate"))
    enrol = client.post(confirm.url, {"password": PASSWORD}, follow=True)
    assert enrol.resolver_match.url_name == "mfa_activate_totp"
    assert "<svg" in enrol.content.decode()


def test_a_superuser_without_an_authenticator_is_sent_to_enrol(db, client, django_user_model):
    admin = django_user_model.objects.create_superuser(
        "root@example.org", "root@example.org", PASSWORD
    )
    client.force_login(admin)
    response = client.get(reverse("admin:index"))
    assert response.url.startswith(reverse("mfa_activate_totp"))


@pytest.mark.parametrize("actor", STAFF)
def test_staff_sign_in_asks_for_the_code(actor, request, client):
    user = request.getfixturevalue(actor)
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.url == reverse("mfa_authenticate")
    # Not signed in yet.
    assert client.get(reverse("staff_home")).status_code == 302
    wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert wrong.status_code == 200
    right = client.post(reverse("mfa_authenticate"), {"code": totp_code(totp_secret(user))})
    assert right.status_code == 302
    assert client.get(right.url, follow=True).resolver_match.url_name == "staff_home"


def test_totp_secrets_are_stored_encrypted(registrar_user):
    authenticator = Authenticator.objects.get(user=registrar_user)
    secret = totp_secret(registrar_user)
    assert secret and secret not in str(authenticator.data)


def test_guardians_sign_in_without_a_second_factor(guardian_user, client):
    response = client.post(
        reverse("account_login"), {"login": guardian_user.email, "password": PASSWORD}
    )
    assert response.url == reverse("after_sign_in")
