"""The front door, sign-in, and the first page of each area, through HTTP."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD, sign_in


@pytest.mark.django_db
def test_the_home_page_names_the_district_and_offers_sign_in(client, settings):
    settings.DISTRICT_NAME = "Escondido Valley Unified"
    response = client.get(reverse("home"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Escondido Valley Unified" in html
    assert '<html lang="en">' in html
    assert 'href="#main"' in html and 'id="main"' in html
    assert f'href="{reverse("account_login")}"' in html
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in html


def test_the_home_page_names_next_school_year(sample_district, client, settings):
    html = client.get(reverse("home")).content.decode()
    assert re.search(r"Register your children for the 20\d\d–\d\d school year", html)


@pytest.mark.django_db
def test_the_language_switch_turns_the_site_spanish(client):
    home = client.get(reverse("home")).content.decode()
    assert 'value="es"' in home and ">Español<" in home
    response = client.post(reverse("set_language"), {"language": "es", "next": "/"})
    assert response.status_code == 302
    html = client.get(reverse("home")).content.decode()
    assert '<html lang="es">' in html
    assert "Iniciar sesión" in html
    assert "Lo que necesitará" in html
    assert ">English<" in html
    login = client.get(reverse("account_login")).content.decode()
    assert "¿Ha olvidado su contraseña?" in login
    assert "Actívela con el código de su carta" in login


@pytest.mark.django_db
def test_a_browser_asking_for_spanish_gets_spanish(client):
    html = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="es-MX,es;q=0.9").content.decode()
    assert '<html lang="es">' in html


@pytest.mark.django_db
def test_the_sign_in_form_labels_every_field(client):
    html = client.get(reverse("account_login")).content.decode()
    for field_id in ("id_login", "id_password"):
        assert f'<label for="{field_id}"' in html
        assert f'id="{field_id}"' in html


def test_a_wrong_password_is_explained_next_to_the_form(guardian_user, client):
    response = client.post(
        reverse("account_login"), {"login": guardian_user.email, "password": "wrong password"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'role="alert"' in html
    assert "The email address and/or password you specified are not correct." in html
    assert f'value="{guardian_user.email}"' in html


def test_sign_up_is_closed(db, client):
    response = client.get(reverse("account_signup"))
    assert "Sign Up Closed" in response.content.decode() or response.status_code == 403


def test_a_guardian_lands_on_their_family(guardian_user, client, django_assert_max_num_queries):
    landing = sign_in(client, guardian_user)
    assert landing.url == reverse("after_sign_in")
    response = client.get(landing.url)
    assert response.url == reverse("guardian_home")
    with django_assert_max_num_queries(15):
        response = client.get(reverse("guardian_home"))
    html = response.content.decode()
    assert "Hello, José Ángel" in html
    for expected in (
        "Sofía García Núñez",
        "Mateo García Núñez",
        "Las Lomas Elementary",
        "Sequoia Middle School",
        "1450 Alameda de las Pulgas",
        "Apt 4, Building B",
        "María José Núñez-Peña",
        "jose.garcia@example.com",
        "(650) 555-0134",
        "Carmen Núñez",
        "Rubén Peña",
    ):
        assert expected in html, expected
    # Nobody else's family.
    for other in ("O'Brien", "Okafor", "D'Angelo"):
        assert other not in html


def test_the_guardian_page_does_not_grow_with_the_family(
    other_guardian_user, client, django_assert_max_num_queries
):
    sign_in(client, other_guardian_user)
    with django_assert_max_num_queries(15):
        html = client.get(reverse("guardian_home")).content.decode()
    assert "Liam O&#x27;Brien" in html and "Zoë O&#x27;Brien" in html
    assert "García" not in html


def test_a_guardian_without_rights_for_a_child_is_told_so(sample_district, client):
    from registration.models import Guardian
    from registration.services import guardian_account_create

    grandmother = Guardian.objects.get(sourced_id="par-005")
    user = guardian_account_create(
        guardian=grandmother, email="ngozi.okafor@example.com", password=PASSWORD
    )
    sign_in(client, user)
    html = client.get(reverse("guardian_home")).content.decode()
    assert "Chidi Okafor" in html and "Amara Okafor" in html
    assert html.count("You can see this child's details but cannot register them.") == 1


def test_a_guardian_cannot_open_the_staff_area(guardian_user, client):
    sign_in(client, guardian_user)
    assert client.get(reverse("staff_home")).status_code == 403
    assert client.get(reverse("admin:index")).status_code == 302


def test_staff_cannot_open_a_guardian_home(office_user, client):
    sign_in(client, office_user)
    assert client.get(reverse("guardian_home")).status_code == 403


def test_signed_out_visitors_are_sent_to_sign_in(db, client):
    for name in ("guardian_home", "staff_home", "after_sign_in"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response.url.startswith(reverse("account_login"))


def test_office_staff_see_only_their_school(office_user, client, django_assert_max_num_queries):
    landing = sign_in(client, office_user)
    assert client.get(landing.url).url == reverse("staff_home")
    with django_assert_max_num_queries(12):
        response = client.get(reverse("staff_home"))
    html = response.content.decode()
    assert "Las Lomas Elementary" in html
    assert "Sequoia Middle School" not in html and "Mission Ridge High School" not in html
    # Sofía, Liam, Chidi and Amara; Liam lives in two households.
    assert "4 students · 5 households" in html


def test_other_school_office_staff_see_only_theirs(other_school_office_user, client):
    sign_in(client, other_school_office_user)
    html = client.get(reverse("staff_home")).content.decode()
    assert "Mission Ridge High School" in html
    assert "Las Lomas Elementary" not in html
    assert "3 students · 4 households" in html


def test_the_registrar_sees_every_school(registrar_user, client, django_assert_max_num_queries):
    sign_in(client, registrar_user)
    with django_assert_max_num_queries(12):
        html = client.get(reverse("staff_home")).content.decode()
    for school in ("Las Lomas Elementary", "Sequoia Middle School", "Mission Ridge High School"):
        assert school in html
    assert 'href="/admin/"' in html


def test_finance_sees_counts_but_no_admin(finance_user, client):
    sign_in(client, finance_user)
    html = client.get(reverse("staff_home")).content.decode()
    assert "Mission Ridge High School" in html
    assert 'href="/admin/"' not in html
    assert client.get(reverse("admin:index")).status_code == 302


def test_sign_out_is_a_post(guardian_user, client):
    sign_in(client, guardian_user)
    html = client.get(reverse("guardian_home")).content.decode()
    assert f'action="{reverse("account_logout")}" method="post"' in html
    client.post(reverse("account_logout"))
    assert client.get(reverse("guardian_home")).status_code == 302


def test_a_user_with_no_household_is_told_whom_to_contact(db, client):
    from registration.models import User

    user = User.objects.create_user("nobody@example.com", "nobody@example.com", PASSWORD)
    client.force_login(user)
    response = client.get(reverse("after_sign_in"), follow=True)
    assert "not linked to a household" in response.content.decode()


def test_a_guardian_can_reset_a_forgotten_password(guardian_user, client, mailoutbox):
    page = client.get(reverse("account_reset_password"))
    assert page.status_code == 200
    assert '<label for="id_email"' in page.content.decode()
    response = client.post(reverse("account_reset_password"), {"email": guardian_user.email})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [guardian_user.email]
    link = re.search(r"https?://\S+/accounts/password/reset/key/\S+", mailoutbox[0].body).group(0)
    form = client.get(link, follow=True)
    assert form.status_code == 200
    done = client.post(
        form.redirect_chain[-1][0] if form.redirect_chain else link,
        {"password1": "a-brand-new-password-9", "password2": "a-brand-new-password-9"},
    )
    assert done.status_code == 302
    assert client.login(username=guardian_user.username, password="a-brand-new-password-9")


def test_a_reset_for_an_unknown_address_reveals_nothing(db, client, mailoutbox):
    response = client.post(reverse("account_reset_password"), {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert all("password/reset/key" not in m.body for m in mailoutbox)
