"""Field trips through the staff pages: a teacher creates a trip for a class they
teach (every student charged, eligible ones waived), sees who paid, and cancels it
before anyone paid; another teacher's class is refused; registrars and finance read.

Daniel Ramírez (``teacher_user``) teaches Math 7, where Mateo García (hh-001) is,
and Math 6. Ms. Lindqvist's Grade 3 (Sofía) is another teacher's class.
"""

from __future__ import annotations

import datetime
import logging

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from payments.models import Fee, LedgerEntry
from payments.selectors import balance_cents
from payments.services import checkout_create, field_trip_create
from registration.models import (
    ClassEnrollment,
    ClassSection,
    Household,
    School,
    Student,
)
from tests.conftest import sign_in
from tests.payments.conftest import deliver
from tests.payments.factories import StudentFactory, child_add
from workflow.models import AuditEvent

TODAY = timezone.localdate()


@pytest.fixture
def math7(sample_district) -> ClassSection:
    return ClassSection.objects.get(sourced_id="cls-math-7")


@pytest.fixture
def classmates(math7, family):
    """Math 7: Mateo (hh-001, free meals), and from hh-002 Liam's cousins: Ana
    (not eligible) and Ben (reduced-price meals); Cara, disabled; Dev, enrolled
    with no household on file."""
    other = Household.objects.get(sourced_id="hh-002")
    middle = School.objects.get(sourced_id="sch-mid")
    family.mateo.meal_eligibility = "free"
    family.mateo.save(update_fields=["meal_eligibility"])
    ana = child_add(other, section_sourced_id="cls-math-7", school=middle, given_name="Ana")
    ben = child_add(
        other,
        section_sourced_id="cls-math-7",
        school=middle,
        given_name="Ben",
        meal_eligibility="reduced",
    )
    cara = child_add(
        other, section_sourced_id="cls-math-7", school=middle, given_name="Cara", enabled=False
    )
    dev = StudentFactory(school=middle, given_name="Dev")
    ClassEnrollment.objects.create(sourced_id="enr-dev", section=math7, student=dev)
    return {"mateo": family.mateo, "ana": ana, "ben": ben, "cara": cara, "dev": dev}


def _trip_form(section: ClassSection, **changes: str) -> dict[str, str]:
    data = {
        "section": str(section.pk),
        "title": "Science museum",
        "description": "The bus leaves at 8:30.",
        "event_date": (TODAY + datetime.timedelta(days=14)).isoformat(),
        "amount": "18.50",
        "deadline": (TODAY + datetime.timedelta(days=7)).isoformat(),
        "waivable_for_free_meals": "on",
    }
    data.update(changes)
    return data


def _message(response) -> str:
    """The last message the page set (signing in sets one too)."""
    return str(list(get_messages(response.wsgi_request))[-1])


def _entries(fee: Fee) -> set[tuple[str, int, int, int]]:
    return set(
        LedgerEntry.objects.filter(fee=fee).values_list(
            "kind", "household__pk", "student__pk", "amount_cents"
        )
    )


def test_a_teacher_creates_a_trip_every_student_is_charged_and_eligible_ones_are_waived(
    client, teacher_user, math7, classmates, family
):
    sign_in(client, teacher_user)
    page = client.get(reverse("staff_field_trip_create")).content.decode()
    assert "Math 7 (Period 2)" in page and "Math 6 (Period 4)" in page
    assert "Grade 3" not in page  # another teacher's class is not offered

    response = client.post(reverse("staff_field_trip_create"), _trip_form(math7))

    fee = Fee.objects.get(kind=Fee.Kind.FIELD_TRIP)
    assert response.status_code == 302
    assert response["Location"] == reverse("staff_field_trip", kwargs={"pk": fee.pk})
    assert (fee.section, fee.amount_cents, fee.created_by) == (math7, 1850, teacher_user)
    assert fee.event_date == TODAY + datetime.timedelta(days=14)
    assert fee.waivable_for_free_meals and fee.active
    hh1, hh2 = family.household.pk, Household.objects.get(sourced_id="hh-002").pk
    mateo, ana, ben = classmates["mateo"].pk, classmates["ana"].pk, classmates["ben"].pk
    assert _entries(fee) == {
        ("assessment", hh1, mateo, 1850),
        ("waiver", hh1, mateo, -1850),
        ("assessment", hh2, ana, 1850),
        ("assessment", hh2, ben, 1850),
        ("waiver", hh2, ben, -1850),
    }
    assert balance_cents(household=family.household, fee=fee) == 0
    assert balance_cents(student=classmates["ana"], fee=fee) == 1850
    message = _message(response)
    assert "3 students were charged $18.50 each" in message
    assert "waived" not in message  # meal eligibility is not the teacher's to know
    assert "1 student has no household on file" in message
    assert AuditEvent.objects.filter(
        action="create", object_type="payments.fee", object_id=str(fee.pk), actor=teacher_user
    ).exists()

    # Twice the same trip (a double click) charges nobody twice.
    again = client.post(reverse("staff_field_trip_create"), _trip_form(math7))
    assert again.status_code == 200
    assert "already has the trip" in again.content.decode()
    assert Fee.objects.count() == 1


def test_the_trip_page_shows_names_and_amounts_only(
    client, teacher_user, math7, classmates, family, guardian_user
):
    created = field_trip_create(
        section=math7,
        title="Science museum",
        event_date=TODAY + datetime.timedelta(days=10),
        amount_cents=1850,
        deadline=TODAY + datetime.timedelta(days=5),
        actor=teacher_user,
    )
    sign_in(client, teacher_user)
    response = client.get(reverse("staff_field_trip", kwargs={"pk": created.fee.pk}))
    page = response.content.decode()
    assert response.status_code == 200
    for name in ("Mateo García Núñez", "Ana García Núñez", "Ben García Núñez"):
        assert name in page
    assert "$18.50" in page
    # No guardian contact, no health data.
    assert guardian_user.email not in page
    for contact in ("555-0130", "555-0134", "555-0135", "Alameda de las Pulgas"):
        assert contact not in page
    assert "Allerg" not in page
    event = AuditEvent.objects.get(action="view", object_type="payments.fee")
    assert set(event.detail["students"]) >= {classmates["mateo"].pk, classmates["ana"].pk}


def test_a_trip_for_another_teachers_class_is_refused_and_logged(
    client, teacher_user, sample_district, caplog
):
    grade3 = ClassSection.objects.get(sourced_id="cls-hr-3")
    sign_in(client, teacher_user)
    with caplog.at_level(logging.WARNING, logger="security"):
        response = client.post(reverse("staff_field_trip_create"), _trip_form(grade3))
    page = response.content.decode()
    assert response.status_code == 200
    assert "You can create trips only for the classes you teach." in page
    assert 'value="Science museum"' in page  # what was typed is kept
    assert not Fee.objects.exists() and not LedgerEntry.objects.exists()
    assert any(
        "refused" in r.getMessage() and "does not teach" in r.getMessage()
        for r in caplog.records
        if r.name == "security"
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("amount", "", "Please give the amount each student pays."),
        ("amount", "eighteen", "Enter an amount in dollars, for example 18.50."),
        ("amount", "0", "The amount must be more than $0.00."),
        ("amount", "-5", "Enter an amount in dollars, for example 18.50."),
        ("amount", "18.505", "Enter at most two digits after the decimal point (cents)."),
        ("amount", "6000", "The amount cannot be more than $5,000.00."),
        ("event_date", "2001-01-01", "The trip cannot be in the past."),
        ("deadline", "2001-01-01", "The last day to pay cannot be in the past."),
        (
            "deadline",
            (TODAY + datetime.timedelta(days=30)).isoformat(),
            "The last day to pay cannot be after the trip.",
        ),
        ("title", "", "Please give the trip a title."),
    ],
)
def test_bad_input_gets_a_message_next_to_the_field(
    client, teacher_user, math7, field, value, message
):
    sign_in(client, teacher_user)
    response = client.post(reverse("staff_field_trip_create"), _trip_form(math7, **{field: value}))
    page = response.content.decode()
    assert response.status_code == 200
    assert f'<p class="error" id="id_{field}_error">{message}</p>' in page
    assert f'href="#id_{field}"' in page  # the summary links to the field
    assert "The bus leaves at 8:30." in page
    assert not Fee.objects.exists()


def test_dollars_are_read_as_people_type_them(client, teacher_user, math7):
    sign_in(client, teacher_user)
    client.post(reverse("staff_field_trip_create"), _trip_form(math7, amount="$1,250.5"))
    assert Fee.objects.get().amount_cents == 125050


def test_a_teacher_cancels_a_trip_nobody_paid_for(client, teacher_user, math7, classmates):
    created = field_trip_create(
        section=math7,
        title="Science museum",
        event_date=TODAY + datetime.timedelta(days=10),
        amount_cents=1850,
        deadline=TODAY + datetime.timedelta(days=5),
        actor=teacher_user,
    )
    fee = created.fee
    sign_in(client, teacher_user)
    response = client.post(
        reverse("staff_field_trip_cancel", kwargs={"pk": fee.pk}), {"reason": "bus strike"}
    )
    assert response.status_code == 302
    fee.refresh_from_db()
    assert not fee.active
    adjustments = LedgerEntry.objects.filter(fee=fee, kind=LedgerEntry.Kind.ADJUSTMENT)
    # Ana was charged and not waived: her charge is cancelled; the waived ones owe nothing.
    assert sorted(adjustments.values_list("student_id", "amount_cents")) == [
        (classmates["ana"].pk, -1850)
    ]
    assert adjustments.get().note == "field trip cancelled: bus strike"
    assert balance_cents(fee=fee) == 0
    assert "1 open charge was cancelled" in _message(response)
    again = client.post(reverse("staff_field_trip_cancel", kwargs={"pk": fee.pk}))
    assert "already cancelled" in _message(again)
    assert adjustments.count() == 1


def test_a_trip_someone_paid_for_is_not_cancelled_finance_refunds_first(
    client, teacher_user, math7, family, guardian_user, stripe_double
):
    created = field_trip_create(
        section=math7,
        title="Science museum",
        event_date=TODAY + datetime.timedelta(days=10),
        amount_cents=1850,
        deadline=TODAY + datetime.timedelta(days=5),
        actor=teacher_user,
    )
    fee = created.fee
    checkout = checkout_create(
        household=family.household, lines=[(family.mateo, fee, None)], user=guardian_user
    )
    session = stripe_double.session_complete(checkout.stripe_session_id)
    deliver(client, stripe_double.event("checkout.session.completed", session))

    sign_in(client, teacher_user)
    page = client.get(reverse("staff_field_trip", kwargs={"pk": fee.pk})).content.decode()
    assert "Ask finance to refund them first" in page
    response = client.post(reverse("staff_field_trip_cancel", kwargs={"pk": fee.pk}))
    message = _message(response)
    assert "already paid for this trip" in message and "finance" in message
    fee.refresh_from_db()
    assert fee.active
    assert not LedgerEntry.objects.filter(fee=fee, kind=LedgerEntry.Kind.ADJUSTMENT).exists()


def test_registrars_and_finance_read_every_trip_and_office_staff_are_refused(
    client, registrar_user, finance_user, office_user, teacher_user, sample_district
):
    grade3 = ClassSection.objects.get(sourced_id="cls-hr-3")
    trip = field_trip_create(
        section=grade3,
        title="Aquarium",
        event_date=TODAY + datetime.timedelta(days=10),
        amount_cents=1200,
        deadline=TODAY + datetime.timedelta(days=5),
        actor=None,
    ).fee
    detail = reverse("staff_field_trip", kwargs={"pk": trip.pk})
    for user in (registrar_user, finance_user):
        sign_in(client, user)
        listing = client.get(reverse("staff_field_trips"))
        assert "Aquarium" in listing.content.decode()
        page = client.get(detail)
        assert page.status_code == 200
        assert "Sofía García Núñez" in page.content.decode()
        assert "Cancel the trip" not in page.content.decode()
        assert (
            client.post(reverse("staff_field_trip_cancel", kwargs={"pk": trip.pk})).status_code
            == 403
        )
        assert client.get(reverse("staff_field_trip_create")).status_code == 403
        client.logout()
    sign_in(client, office_user)
    assert client.get(reverse("staff_field_trips")).status_code == 403
    client.logout()
    # Daniel does not teach Grade 3: the trip does not exist for him.
    sign_in(client, teacher_user)
    assert "Aquarium" not in client.get(reverse("staff_field_trips")).content.decode()
    assert client.get(detail).status_code == 404
    assert (
        client.post(reverse("staff_field_trip_cancel", kwargs={"pk": trip.pk})).status_code == 404
    )
    trip.refresh_from_db()
    assert trip.active


def test_the_trip_page_reads_a_large_class_in_a_fixed_number_of_queries(
    client, teacher_user, math7, family, django_assert_max_num_queries
):
    middle = School.objects.get(sourced_id="sch-mid")
    for _ in range(30):
        child_add(family.household, section_sourced_id="cls-math-7", school=middle)
    trip = field_trip_create(
        section=math7,
        title="Science museum",
        event_date=TODAY + datetime.timedelta(days=10),
        amount_cents=1850,
        deadline=TODAY + datetime.timedelta(days=5),
        actor=teacher_user,
    )
    assert trip.assessed == 31
    sign_in(client, teacher_user)
    with django_assert_max_num_queries(14):
        response = client.get(reverse("staff_field_trip", kwargs={"pk": trip.fee.pk}))
    assert response.status_code == 200
    with django_assert_max_num_queries(12):
        assert client.get(reverse("staff_field_trips")).status_code == 200
    assert Student.objects.filter(enrollments__section=math7).count() == 31
