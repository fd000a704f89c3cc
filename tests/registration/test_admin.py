"""The district's records in the admin: every model listed, searchable and filtered,
every read and change by staff in the audit log, and only registrars let in."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from registration import models as m
from tests.conftest import PASSWORD
from workflow.models import AuditEvent

RECORDS = (
    m.District,
    m.School,
    m.AcademicSession,
    m.Course,
    m.ClassSection,
    m.TeachingAssignment,
    m.ClassEnrollment,
    m.Household,
    m.Guardian,
    m.Student,
    m.HouseholdGuardian,
    m.HouseholdStudent,
    m.StudentGuardian,
    m.ContactPoint,
    m.ContactPreference,
    m.EmergencyContact,
    m.StudentHealth,
    m.Consent,
    m.StaffProfile,
)


@pytest.fixture
def registrar_client(registrar_user, client):
    assert client.login(username=registrar_user.username, password=PASSWORD)
    return client


def test_every_record_is_in_the_admin_with_search_and_filters():
    for model in RECORDS:
        model_admin = admin.site._registry[model]
        assert model_admin.search_fields, model
    for model in (
        m.School,
        m.Student,
        m.Guardian,
        m.Household,
        m.StaffProfile,
        m.ClassSection,
        m.StudentGuardian,
        m.ContactPoint,
        m.Consent,
    ):
        assert admin.site._registry[model].list_filter, model


def test_the_registrar_can_open_every_list_and_form(registrar_client, sample_district):
    for model in RECORDS:
        info = (model._meta.app_label, model._meta.model_name)
        changelist = registrar_client.get(reverse("admin:{}_{}_changelist".format(*info)))
        assert changelist.status_code == 200, model
        obj = model.objects.first()
        if obj is not None:
            change = registrar_client.get(
                reverse("admin:{}_{}_change".format(*info), args=[obj.pk])
            )
            assert change.status_code == 200, model


def test_searching_students_finds_names_with_apostrophes(registrar_client, sample_district):
    response = registrar_client.get(
        reverse("admin:registration_student_changelist"), {"q": "O'Brien"}
    )
    html = response.content.decode()
    assert "Liam O&#x27;Brien" in html and "Zoë O&#x27;Brien" in html
    assert "Okafor" not in html
    filtered = registrar_client.get(
        reverse("admin:registration_student_changelist"), {"grade__exact": "12"}
    ).content.decode()
    assert "Minh Nguyễn" in filtered and "Okafor" not in filtered


def test_opening_a_student_record_is_audited(registrar_client, registrar_user, sample_district):
    student = m.Student.objects.get(sourced_id="stu-004")
    registrar_client.get(reverse("admin:registration_student_change", args=[student.pk]))
    event = AuditEvent.objects.get(action="view", object_type="registration.student")
    assert (event.actor, event.object_id) == (registrar_user, str(student.pk))
    assert event.ip_address == "127.0.0.1"
    registrar_client.get(reverse("admin:registration_student_changelist"), {"q": "Okafor"})
    listed = AuditEvent.objects.get(action="list", object_type="registration.student")
    assert listed.detail == {"query": "q=Okafor"}


def test_a_change_in_the_admin_is_audited_and_kept_in_history(
    registrar_client, registrar_user, sample_district
):
    household = m.Household.objects.get(sourced_id="hh-002")
    url = reverse("admin:registration_household_change", args=[household.pk])
    form = registrar_client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.update({"street1": "24 Waverley St", "phone": "", "language": "en"})
    # ...and the aunt's new phone number in the emergency contacts inline.
    # The inline formsets as the page sends them.
    for prefix, rows in (
        ("householdguardian_set", household.householdguardian_set.all()),
        ("householdstudent_set", household.householdstudent_set.all()),
        ("emergency_contacts", household.emergency_contacts.all()),
    ):
        data[f"{prefix}-TOTAL_FORMS"] = str(len(rows))
        data[f"{prefix}-INITIAL_FORMS"] = str(len(rows))
        for index, row in enumerate(rows):
            data[f"{prefix}-{index}-id"] = str(row.pk)
            data[f"{prefix}-{index}-household"] = str(household.pk)
            for field in (
                "guardian",
                "student",
                "is_primary",
                "priority",
                "name",
                "relationship",
                "phone",
            ):
                if hasattr(row, f"{field}_id"):
                    data[f"{prefix}-{index}-{field}"] = str(getattr(row, f"{field}_id"))
                elif hasattr(row, field):
                    value = getattr(row, field)
                    if value is True:
                        data[f"{prefix}-{index}-{field}"] = "on"
                    elif value is not False:
                        data[f"{prefix}-{index}-{field}"] = str(value)
    data["emergency_contacts-0-phone"] = "+14155550999"
    response = registrar_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    household.refresh_from_db()
    assert household.street1 == "24 Waverley St"
    event = AuditEvent.objects.get(action="change", object_type="registration.household")
    assert event.actor == registrar_user
    assert "street1" in event.detail["fields"]
    latest = household.history.latest("history_id")
    assert (latest.street1, latest.history_user) == ("24 Waverley St", registrar_user)
    contact = household.emergency_contacts.get()
    assert str(contact.phone) == "+14155550999"
    inline_event = AuditEvent.objects.get(
        action="change", object_type="registration.emergencycontact"
    )
    assert inline_event.detail == {"fields": ["phone"]}
    assert contact.history.latest("history_id").history_user == registrar_user


def test_the_audit_log_cannot_be_edited(registrar_client, sample_district):
    assert registrar_client.get(reverse("admin:workflow_auditevent_changelist")).status_code == 200
    assert registrar_client.get(reverse("admin:workflow_auditevent_add")).status_code == 403


@pytest.mark.parametrize("actor", ["office_user", "teacher_user", "finance_user", "guardian_user"])
def test_only_registrars_reach_the_admin(actor, request, client):
    user = request.getfixturevalue(actor)
    client.force_login(user)
    response = client.get(reverse("admin:registration_student_changelist"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))
