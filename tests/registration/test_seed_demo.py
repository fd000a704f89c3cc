"""The demo district: deterministic, imported through the real importer, with a
working sign-in for every role."""

from __future__ import annotations

import datetime
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from payments.models import Fee
from registration import models as m
from registration.mfa import totp_code
from registration.roster.synthetic import generate_district
from registration.selectors import school_year_next
from workflow.models import AuditEvent, Campaign, EnrollmentDecision, Registration


def _files(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_the_same_seed_gives_the_same_district(tmp_path):
    for name in ("a", "b"):
        generate_district(
            tmp_path / name, households=60, seed=11, school_year=2027, district_name="Test District"
        )
    generate_district(
        tmp_path / "c", households=60, seed=12, school_year=2027, district_name="Test District"
    )
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a")["users.csv"] != _files(tmp_path / "c")["users.csv"]


@pytest.fixture
def demo(db, capsys):
    call_command("seed_demo", "--households", "80", "--seed", "5")
    return capsys.readouterr().out


def test_the_demo_has_the_families_the_product_must_handle(demo):
    assert m.School.objects.filter(low_grade="KG").count() >= 2
    assert m.School.objects.filter(low_grade="06").exists()
    assert m.School.objects.filter(low_grade="09").exists()
    assert m.Household.objects.filter(language="es").exists()
    # Children in two households, one of them primary.
    assert m.HouseholdStudent.objects.filter(is_primary=False).exists()
    # Guardians without email.
    with_email = m.ContactPoint.objects.filter(kind="email").values("guardian_id")
    assert m.Guardian.objects.exclude(pk__in=with_email).exists()
    # Siblings.
    assert any(len(h.students.all()) > 1 for h in m.Household.objects.prefetch_related("students"))
    # Classes with teachers, and students in them.
    assert m.TeachingAssignment.objects.exists()
    assert m.ClassEnrollment.objects.count() >= m.Student.objects.count()
    assert AuditEvent.objects.filter(action="import", actor_label="seed_demo").exists()


def _campaign_rows():
    return (
        Campaign.objects.count(),
        sorted(Campaign.objects.get().acknowledgements.values_list("key", "version", "is_current")),
        Registration.objects.count(),
        EnrollmentDecision.objects.count(),
    )


def test_the_demo_has_a_running_campaign_for_next_year(demo):
    campaign = Campaign.objects.get()
    assert campaign.school_year == school_year_next()
    assert campaign.is_running()
    assert campaign.closes_on - campaign.opens_on == datetime.timedelta(days=61)
    documents = {a.key: a for a in campaign.acknowledgements.filter(is_current=True, version=1)}
    assert set(documents) == {"family-handbook", "photo-day"}
    assert documents["family-handbook"].required
    assert not documents["photo-day"].required
    assert all(a.title_es and a.body_es and a.title_zh and a.body_zh for a in documents.values())
    fees = list(Fee.objects.all())
    assert fees and all(fee.title_es and fee.title_zh for fee in fees)
    households = (
        m.HouseholdStudent.objects.filter(student__enabled=True)
        .values("household_id")
        .distinct()
        .count()
    )
    assert households > 0
    assert Registration.objects.filter(campaign=campaign).count() == households
    assert EnrollmentDecision.objects.filter(campaign=campaign).count() == (
        m.Student.objects.filter(enabled=True, households__isnull=False).distinct().count()
    )
    label = campaign.school_year.label
    assert f"Re-registration for {label} is open" in demo
    assert f"{households} household registrations" in demo
    assert "Family handbook (required), Photo day (optional)" in demo


def test_running_it_again_changes_nothing(demo, capsys):
    campaign_before = _campaign_rows()
    call_command("seed_demo", "--households", "80", "--seed", "5")
    out = capsys.readouterr().out
    total = next(line for line in out.splitlines() if line.startswith("total"))
    read, created, updated, unchanged, _skipped, removed = map(int, total.split()[1:])
    assert (created, updated, removed) == (0, 0, 0)
    assert unchanged == read
    assert _campaign_rows() == campaign_before
    assert "Re-registration for" in out


def test_running_it_again_moves_a_closed_campaign_and_keeps_retired_documents(demo):
    from workflow.services import acknowledgement_retire, campaign_save

    campaign = Campaign.objects.get()
    registrar = m.User.objects.get(email="registrar@example.org")
    last_year = campaign.opens_on - datetime.timedelta(days=365)
    campaign_save(
        campaign=campaign,
        school_year=campaign.school_year,
        opens_on=last_year,
        closes_on=last_year + datetime.timedelta(days=30),
        fees_before_submit=True,
        approve_with_open_address_request=False,
        actor=registrar,
    )
    acknowledgement_retire(
        acknowledgement=campaign.acknowledgements.get(key="photo-day"), actor=registrar
    )

    call_command("seed_demo", "--households", "80", "--seed", "5")

    campaign.refresh_from_db()
    assert campaign.is_running()
    assert campaign.fees_before_submit  # the registrar's rules stay
    assert list(
        campaign.acknowledgements.filter(is_current=True).values_list("key", flat=True)
    ) == ["family-handbook"]
    assert campaign.acknowledgements.count() == 2


def test_every_printed_sign_in_works_and_lands_in_its_area(demo, client):
    password = re.search(r"password: (\S+)\)", demo).group(1)
    sign_ins = re.findall(
        r"^  (\S.*?)\s{2,}(\S+@\S+)(?:  authenticator secret ([A-Z2-7]+))?$",
        demo.split("Demo sign-ins", 1)[1],
        re.MULTILINE,
    )
    roles = " ".join(role for role, _email, _secret in sign_ins)
    for role in (
        "registrar",
        "finance",
        "office staff",
        "teacher",
        "guardian",
        "district administrator",
    ):
        assert role in roles
    for role, email, secret in sign_ins:
        is_guardian = role.startswith("guardian")
        assert bool(secret) is not is_guardian, role
        response = client.post(reverse("account_login"), {"login": email, "password": password})
        assert response.status_code == 302, (role, response.content[:500])
        if secret:
            # Staff answer the second factor with the printed secret's current code.
            assert response.url == reverse("mfa_authenticate")
            response = client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
            assert response.status_code == 302
        landing = client.get(response.url, follow=True)
        expected = "guardian_home" if is_guardian else "staff_home"
        assert landing.resolver_match.url_name == expected, role
        assert landing.status_code == 200
        client.logout()


def test_the_code_helper_prints_the_current_code(demo, capsys):
    secret = re.search(r"registrar@example.org  authenticator secret (\S+)", demo).group(1)
    call_command("totp_code", "registrar@example.org")
    assert capsys.readouterr().out.strip() == totp_code(secret)


def test_it_never_runs_in_production(db, settings):
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="never runs in production"):
        call_command("seed_demo", "--households", "5")
    assert not m.Household.objects.exists()
