"""Finance's fee catalog and the import of meal eligibility, through the staff pages:
creating lunch, required and optional fees (amounts typed in dollars), refusing bad
input next to the field, refusing a new amount for a fee families paid, deactivating,
filtering the list, and the nutrition office's CSV file (good, a bad row, malformed),
also through the management command. Office staff, teachers and guardians are
refused."""

from __future__ import annotations

import datetime
import logging
import re

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from payments.models import Fee, LedgerEntry
from payments.selectors import balance_cents
from payments.services import checkout_create, fee_create
from registration.models import School, Student
from tests.conftest import sign_in
from tests.payments.conftest import deliver
from tests.payments.factories import FeeFactory
from workflow.models import AuditEvent

TODAY = timezone.localdate()


def _message(response) -> str:
    return str(list(get_messages(response.wsgi_request))[-1])


@pytest.fixture
def finance(client, finance_user):
    sign_in(client, finance_user)
    return client


# -- the catalog ---------------------------------------------------------------------------


def test_finance_creates_a_lunch_prepayment_in_dollars(finance, finance_user):
    response = finance.post(
        reverse("staff_fee_create", kwargs={"kind": "lunch_prepay"}),
        {
            "title": "Lunch account",
            "description": "Meals at school.",
            "min_amount": "5",
            "max_amount": "$200.00",
            "gl_code": "5300-NUTRITION",
        },
    )
    assert response.status_code == 302
    fee = Fee.objects.get()
    assert (fee.kind, fee.min_amount_cents, fee.max_amount_cents, fee.amount_cents) == (
        "lunch_prepay",
        500,
        20000,
        None,
    )
    assert (fee.gl_code, fee.created_by, fee.school, fee.active) == (
        "5300-NUTRITION",
        finance_user,
        None,
        True,
    )
    assert not fee.waivable_for_free_meals
    assert "was added to the catalog" in _message(response)
    assert AuditEvent.objects.filter(
        action="create", object_type="payments.fee", object_id=str(fee.pk), actor=finance_user
    ).exists()


def test_a_required_fee_of_a_campaign_is_waived_at_once_for_eligible_children(
    finance, campaign, family
):
    family.sofia.meal_eligibility = "reduced"
    family.sofia.save(update_fields=["meal_eligibility"])
    page = finance.get(reverse("staff_fee_create", kwargs={"kind": "required"}))
    checkbox = re.search(
        r"<input[^>]*name=\"waivable_for_free_meals\"[^>]*>", page.content.decode()
    )
    assert checkbox and "checked" in checkbox.group(0)  # waived by default
    response = finance.post(
        reverse("staff_fee_create", kwargs={"kind": "required"}),
        {
            "title": "Registration fee",
            "amount": "25.00",
            "campaign": str(campaign.pk),
            "gl_code": "4100-FEES",
            "waivable_for_free_meals": "on",
        },
    )
    assert response.status_code == 302
    fee = Fee.objects.get()
    assert (fee.kind, fee.amount_cents, fee.campaign) == ("required", 2500, campaign)
    assert sorted(
        LedgerEntry.objects.filter(fee=fee).values_list("kind", "student_id", "amount_cents")
    ) == [("assessment", family.sofia.pk, 2500), ("waiver", family.sofia.pk, -2500)]
    assert "waived for 1 student" in _message(response)


def test_an_optional_item_limited_to_one_school(finance, sample_district):
    middle = School.objects.get(sourced_id="sch-mid")
    finance.post(
        reverse("staff_fee_create", kwargs={"kind": "optional"}),
        {
            "title": "Yearbook",
            "amount": "35",
            "school": str(middle.pk),
            "gl_code": "4300-YEARBOOK",
            "deadline": (TODAY + datetime.timedelta(days=60)).isoformat(),
        },
    )
    fee = Fee.objects.get()
    assert (fee.kind, fee.amount_cents, fee.school, fee.campaign) == (
        "optional",
        3500,
        middle,
        None,
    )
    assert not fee.waivable_for_free_meals


def test_with_many_schools_the_fees_school_is_typed(
    finance, registrar_user, sample_district, monkeypatch
):
    monkeypatch.setattr("config.school_field.SCHOOL_SELECT_MAX", 2)
    middle = School.objects.get(sourced_id="sch-mid")
    url = reverse("staff_fee_create", kwargs={"kind": "optional"})
    form = finance.get(url).content.decode()
    assert (
        '<input type="search" name="school"' in form and f'<option value="{middle.pk}"' not in form
    )
    assert (
        "Only the students of this school are asked to pay it. Type the school's name or number."
    ) in form
    data = {"title": "Yearbook", "amount": "35", "gl_code": "4300-YEARBOOK"}

    refused = finance.post(url, {**data, "school": "Ridge School of Music"})
    page = refused.content.decode()
    assert (
        '<p class="error" id="id_school_error">'
        "No school of yours is named “Ridge School of Music”.</p>"
    ) in page
    assert 'value="Ridge School of Music"' in page
    assert not Fee.objects.exists()

    assert finance.post(url, {**data, "school": "sequoia"}).status_code == 302
    fee = Fee.objects.get()
    assert fee.school == middle
    edit = finance.get(reverse("staff_fee_edit", kwargs={"pk": fee.pk})).content.decode()
    assert 'value="Sequoia Middle School"' in edit
    registrar = Client()
    sign_in(registrar, registrar_user)  # reads the catalog; the field is shown disabled
    shown = registrar.get(reverse("staff_fee_edit", kwargs={"pk": fee.pk})).content.decode()
    (box,) = re.findall(r'<input type="search" name="school"[^>]*>', shown)
    assert 'value="Sequoia Middle School"' in box and " disabled" in box

    listed = finance.get(reverse("staff_fees"), {"school": "SEQUOIA middle"}).content.decode()
    assert "Yearbook" in listed and 'value="Sequoia Middle School"' in listed
    other = finance.get(reverse("staff_fees"), {"school": "Mission Ridge"}).content.decode()
    assert "Yearbook" not in other


@pytest.mark.parametrize(
    ("kind", "changes", "field", "message"),
    [
        ("optional", {"amount": "abc"}, "amount", "Enter an amount in dollars, for example 18.50."),
        ("optional", {"amount": "0.00"}, "amount", "The amount must be more than $0.00."),
        ("optional", {"amount": ""}, "amount", "Please give the amount of the fee."),
        ("optional", {"gl_code": ""}, "gl_code", "Please give the GL code this fee is posted to."),
        (
            "optional",
            {"gl_code": "41 00/FEES"},
            "gl_code",
            "Use letters, digits, hyphens and dots only, for example 4100-FEES.",
        ),
        (
            "required",
            {"campaign": ""},
            "campaign",
            "Please choose the campaign this fee is required for.",
        ),
        (
            "lunch_prepay",
            {"min_amount": "50", "max_amount": "20"},
            "max_amount",
            "The largest amount must be at least the smallest amount.",
        ),
        (
            "optional",
            {"deadline": "2001-02-03"},
            "deadline",
            "The last day to pay cannot be in the past.",
        ),
    ],
)
def test_bad_input_gets_a_message_next_to_the_field(
    finance, campaign, kind, changes, field, message
):
    data = {
        "title": "Typed title",
        "amount": "10",
        "min_amount": "5",
        "max_amount": "100",
        "campaign": str(campaign.pk),
        "gl_code": "4100-FEES",
        **changes,
    }
    response = finance.post(reverse("staff_fee_create", kwargs={"kind": kind}), data)
    page = response.content.decode()
    assert response.status_code == 200
    assert f'<p class="error" id="id_{field}_error">{message}</p>' in page
    assert 'value="Typed title"' in page
    assert not Fee.objects.exists()


def test_the_gl_code_says_why_it_is_needed(finance, sample_district):
    page = finance.get(reverse("staff_fee_create", kwargs={"kind": "optional"})).content.decode()
    assert "posted to" in page and "accounting export" in page


def test_an_unpaid_fee_is_changed_and_the_change_audited(finance, finance_user, sample_district):
    fee = FeeFactory(kind=Fee.Kind.OPTIONAL, title="Yearbook", amount_cents=3500)
    response = finance.post(
        reverse("staff_fee_edit", kwargs={"pk": fee.pk}),
        {"title": "Yearbook 2028", "amount": "40.00", "gl_code": "4300-YEARBOOK"},
    )
    assert response.status_code == 302
    fee.refresh_from_db()
    assert (fee.title, fee.amount_cents, fee.gl_code) == ("Yearbook 2028", 4000, "4300-YEARBOOK")
    event = AuditEvent.objects.get(action="change", object_id=str(fee.pk))
    assert event.detail["changes"]["amount_cents"] == [3500, 4000]
    assert event.actor == finance_user


def test_the_amount_of_a_fee_families_paid_does_not_change(
    finance, client, family, guardian_user, stripe_double
):
    fee = FeeFactory(kind=Fee.Kind.OPTIONAL, title="Yearbook", amount_cents=3500)
    checkout = checkout_create(
        household=family.household, lines=[(family.sofia, fee, None)], user=guardian_user
    )
    session = stripe_double.session_complete(checkout.stripe_session_id)
    deliver(client, stripe_double.event("checkout.session.completed", session))

    page = finance.get(reverse("staff_fee_edit", kwargs={"pk": fee.pk})).content.decode()
    assert "its amount cannot change" in page
    response = finance.post(
        reverse("staff_fee_edit", kwargs={"pk": fee.pk}),
        {"title": "Yearbook", "amount": "45.00", "gl_code": "4100-FEES"},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert '<p class="error" id="id_amount_error">' in page
    assert "Create a new fee with the new amount" in page
    assert 'value="45.00"' in page  # what was typed is kept
    fee.refresh_from_db()
    assert fee.amount_cents == 3500
    # Other details still change.
    finance.post(
        reverse("staff_fee_edit", kwargs={"pk": fee.pk}),
        {"title": "Yearbook (hardcover)", "amount": "35.00", "gl_code": "4300-YEARBOOK"},
    )
    fee.refresh_from_db()
    assert (fee.title, fee.gl_code, fee.amount_cents) == (
        "Yearbook (hardcover)",
        "4300-YEARBOOK",
        3500,
    )


def test_deactivating_a_fee_cancels_what_is_still_owed(finance, family, registrar_user):
    from payments.services import fee_assess

    fee = FeeFactory(kind=Fee.Kind.REQUIRED, amount_cents=2000)
    fee_assess(household=family.household, student=family.mateo, fee=fee, actor=registrar_user)
    response = finance.post(reverse("staff_fee_deactivate", kwargs={"pk": fee.pk}))
    assert response.status_code == 302
    fee.refresh_from_db()
    assert not fee.active
    assert balance_cents(fee=fee) == 0
    assert LedgerEntry.objects.get(kind="adjustment").note == "fee deactivated"
    assert "1 open charge was cancelled" in _message(response)


def test_a_field_trip_gets_only_its_gl_code_from_finance(finance, field_trip):
    field_trip.gl_code = ""
    field_trip.save(update_fields=["gl_code"])
    page = finance.get(reverse("staff_fee_edit", kwargs={"pk": field_trip.pk})).content.decode()
    assert 'name="gl_code"' in page and 'name="amount"' not in page
    assert "Deactivate this fee" not in page
    finance.post(
        reverse("staff_fee_edit", kwargs={"pk": field_trip.pk}),
        {"gl_code": "4200-TRIPS", "amount": "1.00"},
    )
    field_trip.refresh_from_db()
    assert (field_trip.gl_code, field_trip.amount_cents) == ("4200-TRIPS", 1850)
    response = finance.post(reverse("staff_fee_deactivate", kwargs={"pk": field_trip.pk}))
    assert "cancelled by its teacher" in _message(response)
    field_trip.refresh_from_db()
    assert field_trip.active


def test_the_list_filters_and_reads_many_fees_in_a_fixed_number_of_queries(
    finance, campaign, django_assert_max_num_queries
):
    middle = School.objects.get(sourced_id="sch-mid")
    for n in range(30):
        FeeFactory(title=f"Club {n:02d}", kind=Fee.Kind.OPTIONAL, school=middle)
    FeeFactory(title="Registration fee", campaign=campaign)
    FeeFactory(title="Old fee", active=False, gl_code="")
    with django_assert_max_num_queries(12):
        response = finance.get(reverse("staff_fees"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "32 fees" in page and "Page 1 of 1" not in page

    def titles(**query) -> str:
        return finance.get(reverse("staff_fees"), query).content.decode()

    assert "Registration fee" in titles(campaign=campaign.pk)
    assert "Club 01" not in titles(campaign=campaign.pk)
    assert "Club 01" in titles(school=middle.pk)
    assert "Old fee" in titles(active="no") and "Club 01" not in titles(active="no")
    assert "Old fee" in titles(without_gl_code="on")
    assert "Registration fee" in titles(kind="required")
    assert "Club 01" not in titles(kind="required")


# -- meal eligibility ------------------------------------------------------------------------


def _upload(client, content: bytes, name: str = "eligibility.csv"):
    return client.post(
        reverse("staff_meal_eligibility"),
        {"file": SimpleUploadedFile(name, content, content_type="text/csv")},
    )


def test_a_good_file_sets_eligibility_and_waives_fees(finance, finance_user, family):
    FeeFactory(waivable_for_free_meals=True, amount_cents=3000)
    liam = Student.objects.get(sourced_id="stu-003")
    liam.meal_eligibility = "free"
    liam.save(update_fields=["meal_eligibility"])
    content = (
        "\ufeffStudent,Status\r\n"
        "stu-001,FREE\r\n"
        "1000000002,reduced\r\n"  # Mateo, by his state id
        "stu-003,none\r\n"
        "\r\n"
    ).encode()

    response = _upload(finance, content)

    assert response.status_code == 302
    family.sofia.refresh_from_db()
    family.mateo.refresh_from_db()
    liam.refresh_from_db()
    assert (family.sofia.meal_eligibility, family.mateo.meal_eligibility) == ("free", "reduced")
    assert liam.meal_eligibility == ""
    assert sorted(
        LedgerEntry.objects.filter(kind="waiver").values_list("student_id", "amount_cents")
    ) == sorted([(family.sofia.pk, -3000), (family.mateo.pk, -3000)])
    assert balance_cents(household=family.household) == 0
    message = _message(response)
    assert "3 students read; eligibility changed for 3" in message
    assert "2 fees were waived ($60.00)" in message
    latest = family.sofia.history.latest()
    assert (latest.meal_eligibility, latest.history_user) == ("free", finance_user)
    event = AuditEvent.objects.get(action="import", object_type="registration.student")
    assert event.detail["changed"] == 3 and event.detail["waivers"] == 2

    # The same file again changes nothing and waives nothing more.
    again = _upload(finance, content)
    assert "eligibility changed for 0. 0 fees were waived" in _message(again)
    assert LedgerEntry.objects.filter(kind="waiver").count() == 2


def test_a_file_with_a_bad_row_changes_nothing(finance, family):
    FeeFactory(waivable_for_free_meals=True)
    content = (
        b"student,status\nstu-001,free\nstu-999,free\nstu-002,maybe\n,reduced\nstu-001,reduced\n"
    )
    response = _upload(finance, content)
    page = response.content.decode()
    assert response.status_code == 200
    assert "4 lines have problems, so nothing was changed." in page
    assert "Line 3: no student has the roster id or state id “stu-999”" in page
    assert "Line 4: the status “maybe” is not free, reduced or none" in page
    assert "Line 5: the student id is missing" in page
    assert "Line 6: this student is also on line 2" in page
    family.sofia.refresh_from_db()
    assert family.sofia.meal_eligibility == ""
    assert not LedgerEntry.objects.exists()
    assert not AuditEvent.objects.filter(
        action="import", object_type="registration.student"
    ).exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "This file is empty."),
        (b"name,grade\nSofia,3\n", "The first line must name the columns"),
        (b"student,status\n", "This file has a header but no students."),
        (b"student,status\nstu-001,libre \xe9t\xe9\n", "Line 2 is not UTF-8 text."),
        (b"PK\x03\x04\x00\x00binary", "This is not a CSV file."),
    ],
)
def test_a_malformed_file_is_refused_and_logged(finance, family, caplog, content, message):
    with caplog.at_level(logging.WARNING, logger="security"):
        response = _upload(finance, content)
    page = response.content.decode()
    assert response.status_code == 200
    assert '<p class="error" id="id_file_error">' in page
    assert message in page
    family.sofia.refresh_from_db()
    assert family.sofia.meal_eligibility == ""
    assert any(
        "malformed meal eligibility file" in r.getMessage()
        for r in caplog.records
        if r.name == "security"
    )


def test_the_command_imports_the_same_way(tmp_path, family):
    FeeFactory(waivable_for_free_meals=True, amount_cents=1000)
    good = tmp_path / "good.csv"
    good.write_text("student,status\nstu-001,free\n")
    call_command("import_meal_eligibility", str(good))
    family.sofia.refresh_from_db()
    assert family.sofia.meal_eligibility == "free"
    assert LedgerEntry.objects.filter(kind="waiver", student=family.sofia).count() == 1
    event = AuditEvent.objects.get(action="import", object_type="registration.student")
    assert event.actor is None and event.actor_label.startswith("import_meal_eligibility run by")

    bad = tmp_path / "bad.csv"
    bad.write_text("student,status\nstu-002,free\nnobody,free\n")
    with pytest.raises(CommandError, match="1 bad line"):
        call_command("import_meal_eligibility", str(bad))
    family.mateo.refresh_from_db()
    assert family.mateo.meal_eligibility == ""


# -- who may --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["office_user", "teacher_user", "guardian_user"])
def test_only_finance_and_registrars_use_the_catalog(request, client, who, sample_district):
    fee, _waived = fee_create(
        kind=Fee.Kind.OPTIONAL, title="Yearbook", amount_cents=3500, gl_code="4300", actor=None
    )
    sign_in(client, request.getfixturevalue(who))
    for url in (
        reverse("staff_fees"),
        reverse("staff_fee_create", kwargs={"kind": "optional"}),
        reverse("staff_fee_edit", kwargs={"pk": fee.pk}),
        reverse("staff_meal_eligibility"),
    ):
        assert client.get(url).status_code == 403, url
    assert client.post(reverse("staff_fee_deactivate", kwargs={"pk": fee.pk})).status_code == 403
    response = _upload(client, b"student,status\nstu-001,free\n")
    assert response.status_code == 403
    fee.refresh_from_db()
    assert fee.active
    assert Student.objects.get(sourced_id="stu-001").meal_eligibility == ""


def test_registrars_use_the_catalog_too(client, registrar_user, sample_district):
    sign_in(client, registrar_user)
    assert client.get(reverse("staff_fees")).status_code == 200
    assert client.get(reverse("staff_meal_eligibility")).status_code == 200


def test_a_fee_is_titled_in_each_language_families_read(finance, family, guardian_user):
    finance.post(
        reverse("staff_fee_create", kwargs={"kind": "optional"}),
        {
            "title": "Yearbook",
            "title_es": "Anuario",
            "title_zh": "年鉴",
            "description": "The year in photos.",
            "description_es": "El año en fotos.",
            "amount": "35",
            "gl_code": "4300-YEARBOOK",
        },
    )
    fee = Fee.objects.get()
    assert (fee.title_es, fee.title_zh, fee.description_zh) == ("Anuario", "年鉴", "")
    fees = reverse("guardian_fees_household", args=[family.household.pk])
    client = Client()
    sign_in(client, guardian_user)
    for language, title, description in (
        ("es", "Anuario", "El año en fotos."),
        ("zh-hans", "年鉴", "The year in photos."),  # no Chinese description: the English
        ("en", "Yearbook", "The year in photos."),
    ):
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        html = client.get(fees).content.decode()
        assert f"<strong>{title}</strong>" in html, language
        assert description in html, language
    # Staff pages name the fee in English.
    assert "Yearbook" in finance.get(reverse("staff_fees")).content.decode()


def test_finance_adds_the_translations_of_a_teachers_trip(finance, field_trip):
    finance.post(
        reverse("staff_fee_edit", kwargs={"pk": field_trip.pk}),
        {"gl_code": "4200-TRIPS", "title_es": "Visita al acuario", "title_zh": "参观水族馆"},
    )
    field_trip.refresh_from_db()
    assert (field_trip.title_es, field_trip.title_zh) == ("Visita al acuario", "参观水族馆")
    change = AuditEvent.objects.filter(object_id=str(field_trip.pk), action="change").last()
    assert change.detail["changes"]["title_zh"] == ["", "参观水族馆"]
