"""Defects found in review of the payments work, each through the services or HTTP:

1. a split family's trip paid by the child's other household is paid where it was
   charged;
2. a fee waived while the family was on Stripe's page is not assessed again: the
   overpayment stays visible as a credit;
3. children eligible for free meals who join a class later are waived (fees page,
   checkout, roster import);
4. a refund form posted twice makes one refund;
5. a refund of lunch, or of a fee the family no longer owes, leaves nothing owed;
6. teachers never learn who had a trip waived;
7. every child a staff payment page names is audited;
8. fees locked by checkouts, past trips refused, refunds and the catalog changed by
   finance only, the receipt and its email in one language, TEST in the subject.
"""

from __future__ import annotations

import datetime
import re
import shutil
import threading
import uuid
from typing import Any
from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.core import mail
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from payments.cart import household_cart, line_key
from payments.eligibility import EligibilityRow, meal_eligibility_import
from payments.models import Checkout, CheckoutLine, Fee, LedgerEntry, Refund
from payments.selectors import balance_cents
from payments.services import (
    CheckoutRefused,
    FeeRefused,
    RefundAlreadyRequested,
    checkout_create,
    checkout_pay,
    fee_assess,
    fee_create,
    fee_deactivate,
    field_trip_cancel,
    field_trip_create,
    refund_request,
)
from registration.models import (
    ClassSection,
    Guardian,
    Household,
    HouseholdStudent,
    School,
    Student,
)
from registration.services import roster_import
from tests.conftest import sign_in
from tests.payments.conftest import deliver
from tests.payments.factories import FeeFactory, FieldTripFactory, child_add
from workflow.models import AuditEvent

TODAY = timezone.localdate()
IN_TEN_DAYS = TODAY + datetime.timedelta(days=10)
IN_FIVE_DAYS = TODAY + datetime.timedelta(days=5)


def _entries(**filters: Any) -> list[tuple[str, int, int]]:
    """(kind, household id, amount) of the matching entries, oldest first."""
    return list(
        LedgerEntry.objects.filter(**filters)
        .order_by("created_at", "pk")
        .values_list("kind", "household_id", "amount_cents")
    )


def _pay(client: Client, stripe_double, checkout: Checkout) -> Checkout:
    """Stripe takes the money and says so through the signed webhook."""
    session = stripe_double.session_complete(checkout.stripe_session_id)
    response = deliver(client, stripe_double.event("checkout.session.completed", session))
    assert response.json()["outcome"] == "paid"
    return Checkout.objects.get(pk=checkout.pk)


def _message(response) -> str:
    return str(list(get_messages(response.wsgi_request))[-1])


def _trip(section_id: str = "cls-hr-3", **changes: Any) -> Fee:
    data = {
        "section": ClassSection.objects.get(sourced_id=section_id),
        "title": "Aquarium visit",
        "event_date": IN_TEN_DAYS,
        "amount_cents": 1850,
        "deadline": IN_FIVE_DAYS,
        "actor": None,
    }
    data.update(changes)
    return field_trip_create(**data).fee


@pytest.fixture
def split(family):
    """Sofía's primary household is hh-001 (José); she also lives with hh-002
    (Siobhan), which is not primary for her."""
    other = Household.objects.get(sourced_id="hh-002")
    HouseholdStudent.objects.create(household=other, student=family.sofia, is_primary=False)
    return other


@pytest.fixture
def finance(finance_user) -> Client:
    staff = Client()
    sign_in(staff, finance_user)
    return staff


# -- 1. a split family ------------------------------------------------------------------


def test_the_other_household_pays_the_trip_where_it_was_charged(
    client, family, split, other_guardian_user, stripe_double, finance_user
):
    trip = _trip()  # charged to Sofía's primary household, hh-001
    assert _entries(fee=trip) == [("assessment", family.household.pk, 1850)]

    checkout = checkout_create(
        household=split, lines=[(family.sofia, trip, None)], user=other_guardian_user
    )
    checkout = _pay(client, stripe_double, checkout)

    # Paid in hh-001's ledger, against hh-002's checkout; nothing charged to hh-002.
    assert _entries(fee=trip) == [
        ("assessment", family.household.pk, 1850),
        ("payment", family.household.pk, -1850),
    ]
    payment = LedgerEntry.objects.get(kind=LedgerEntry.Kind.PAYMENT)
    assert payment.checkout == checkout
    assert balance_cents(household=family.household) == 0
    assert balance_cents(household=split) == 0
    # The checkout (and so the receipt) stays the payer's.
    assert (checkout.household, checkout.created_by) == (split, other_guardian_user)
    # Neither household's page offers the trip again.
    for household in (family.household, split):
        cart = household_cart(household)
        assert cart.line(line_key(family.sofia.pk, trip.pk)) is None

    # A refund of it (owed again) goes back to where it was paid.
    refund = refund_request(
        line=checkout.lines.get(), amount_cents=1850, reason="paid twice", actor=finance_user
    )
    succeeded = stripe_double.refund_set(refund.stripe_refund_id, "succeeded")
    deliver(client, stripe_double.event("refund.updated", succeeded))
    assert balance_cents(household=family.household) == 1850
    assert balance_cents(household=split) == 0


def test_the_payers_own_charge_is_paid_in_its_own_ledger(
    client, family, split, other_guardian_user, stripe_double, finance_user
):
    """Both households were charged (finance charged hh-002 by hand): the payer's
    own charge is the one paid."""
    trip = _trip()
    fee_assess(household=split, student=family.sofia, fee=trip, actor=finance_user)
    checkout = checkout_create(
        household=split, lines=[(family.sofia, trip, None)], user=other_guardian_user
    )
    _pay(client, stripe_double, checkout)
    assert balance_cents(household=split) == 0
    assert balance_cents(household=family.household) == 1850


# -- 2. waived while on Stripe's page -----------------------------------------------------


def test_a_fee_waived_during_an_open_checkout_is_not_charged_again(
    client, family, lunch, guardian_user, stripe_double, finance_user
):
    trip = _trip()
    checkout = checkout_create(
        household=family.household,
        lines=[(family.sofia, trip, None), (family.sofia, lunch, 2500)],
        user=guardian_user,
    )
    # The nutrition office's list arrives while José is on Stripe's page.
    imported = meal_eligibility_import(
        rows=[EligibilityRow(line=2, student=family.sofia, status="free")], actor=finance_user
    )
    assert imported.waived.waivers == 1

    _pay(client, stripe_double, checkout)

    assert _entries(fee=trip) == [
        ("assessment", family.household.pk, 1850),
        ("waiver", family.household.pk, -1850),
        ("payment", family.household.pk, -1850),
    ]
    # The overpayment is a credit finance sees and can refund.
    assert balance_cents(household=family.household, fee=trip) == -1850
    # Lunch, a chosen amount, is still assessed with its payment.
    assert _entries(fee=lunch) == [
        ("assessment", family.household.pk, 2500),
        ("payment", family.household.pk, -2500),
    ]
    assert balance_cents(household=family.household) == -1850


# -- 3. eligible children who join later --------------------------------------------------


@pytest.fixture
def late_joiner(family, sample_district) -> Student:
    """Lucía, eligible for free meals, joins Sofía's class after its trip was made."""
    return child_add(
        family.household, given_name="Lucía", section_sourced_id="cls-hr-3", grade="03"
    )


def _eligible(student: Student) -> Student:
    student.meal_eligibility = "free"
    student.save(update_fields=["meal_eligibility"])
    return student


def test_the_fees_page_waives_a_child_who_joined_the_class_later(
    client, family, guardian_user, sample_district
):
    trip = _trip()
    lucia = _eligible(
        child_add(family.household, given_name="Lucía", section_sourced_id="cls-hr-3")
    )
    assert not LedgerEntry.objects.filter(student=lucia).exists()

    sign_in(client, guardian_user)
    page = client.get(reverse("guardian_fees_household", args=[family.household.pk]))

    assert page.status_code == 200
    assert _entries(student=lucia) == [
        ("assessment", family.household.pk, 1850),
        ("waiver", family.household.pk, -1850),
    ]
    assert f'name="{line_key(lucia.pk, trip.pk)}' not in page.content.decode()
    # Sofía, not eligible, still owes it; a second look writes nothing more.
    assert f"{line_key(family.sofia.pk, trip.pk)}" in page.content.decode()
    client.get(reverse("guardian_fees_household", args=[family.household.pk]))
    assert LedgerEntry.objects.filter(student=lucia).count() == 2


def test_a_checkout_waives_first_and_refuses_what_is_waived(
    family, guardian_user, stripe_double, sample_district
):
    trip = _trip()
    lucia = _eligible(
        child_add(family.household, given_name="Lucía", section_sourced_id="cls-hr-3")
    )
    # A cart posted from a page shown before Lucía joined: her trip is not payable.
    with pytest.raises(CheckoutRefused, match="Aquarium visit"):
        checkout_create(household=family.household, lines=[(lucia, trip, None)], user=guardian_user)
    assert not Checkout.objects.exists()
    assert not stripe_double.calls("POST", "/v1/checkout/sessions")
    # Paying Sofía's trip waives Lucía's on the way.
    checkout_create(
        household=family.household, lines=[(family.sofia, trip, None)], user=guardian_user
    )
    assert _entries(student=lucia) == [
        ("assessment", family.household.pk, 1850),
        ("waiver", family.household.pk, -1850),
    ]


def test_a_roster_import_waives_children_who_joined_a_class(
    family, sample_district, roster_path, tmp_path
):
    trip = _trip()
    other = _eligible(Student.objects.get(sourced_id="stu-005"))
    assert not LedgerEntry.objects.filter(student=other).exists()
    bundle = tmp_path / "roster"
    shutil.copytree(roster_path, bundle)
    with (bundle / "enrollments.csv").open("a") as enrollments:
        enrollments.write("enr-s10,,,cls-hr-3,sch-elem,stu-005,student,,2026-08-17,\n")

    report = roster_import(path=bundle)

    assert report.ok and report.written
    household = HouseholdStudent.objects.get(student=other, is_primary=True).household
    assert _entries(student=other, fee=trip) == [
        ("assessment", household.pk, 1850),
        ("waiver", household.pk, -1850),
    ]


# -- 4. a refund form posted twice --------------------------------------------------------


@pytest.fixture
def paid_checkout(client, open_checkout, stripe_double) -> Checkout:
    """José paid lunch for Sofía ($25.00) and Mateo ($40.00) and Sofía's field trip
    ($18.50)."""
    return _pay(client, stripe_double, open_checkout)


def _refund_form(page: str, line: CheckoutLine) -> dict[str, str]:
    """The refund form of a line as the page shows it, with its one-time token."""
    token = re.search(rf'name="line-{line.pk}-token" value="([0-9a-f-]+)"', page)
    assert token, "the refund form has its one-time token"
    return {f"line-{line.pk}-token": token.group(1)}


def test_a_double_click_on_a_refund_refunds_once(
    finance, paid_checkout, field_trip, stripe_double, finance_user
):
    line = paid_checkout.lines.get(fee=field_trip)
    url = reverse("staff_payment", kwargs={"pk": paid_checkout.pk})
    refund_url = reverse(
        "staff_payment_refund", kwargs={"pk": paid_checkout.pk, "line_pk": line.pk}
    )
    data = {
        **_refund_form(finance.get(url).content.decode(), line),
        f"line-{line.pk}-amount": "5.00",
        f"line-{line.pk}-reason": "Lunch was included.",
    }

    first = finance.post(refund_url, data)
    second = finance.post(refund_url, data)

    assert first.status_code == second.status_code == 302
    refund = Refund.objects.get()
    assert (refund.amount_cents, str(refund.form_token)) == (500, data[f"line-{line.pk}-token"])
    assert "already asked for" in _message(second) and "$5.00" in _message(second)
    assert len(stripe_double.calls("POST", "/v1/refunds")) == 1
    # The page after it offers a new form, with a new token.
    again = _refund_form(finance.get(url).content.decode(), line)
    assert again[f"line-{line.pk}-token"] != data[f"line-{line.pk}-token"]


def test_a_full_refund_posted_twice_says_so_rather_than_refusing_the_amount(
    finance, paid_checkout, field_trip, stripe_double
):
    line = paid_checkout.lines.get(fee=field_trip)
    refund_url = reverse(
        "staff_payment_refund", kwargs={"pk": paid_checkout.pk, "line_pk": line.pk}
    )
    data = {
        f"line-{line.pk}-token": str(uuid.uuid4()),
        f"line-{line.pk}-amount": "18.50",
        f"line-{line.pk}-reason": "Trip cancelled.",
    }
    finance.post(refund_url, data)
    second = finance.post(refund_url, data)
    assert second.status_code == 302
    assert "already asked for" in _message(second)
    assert Refund.objects.count() == 1


def test_a_refund_form_without_its_token_is_shown_again_with_what_was_typed(
    finance, paid_checkout, field_trip, stripe_double
):
    line = paid_checkout.lines.get(fee=field_trip)
    refund_url = reverse(
        "staff_payment_refund", kwargs={"pk": paid_checkout.pk, "line_pk": line.pk}
    )
    response = finance.post(
        refund_url, {f"line-{line.pk}-amount": "5.00", f"line-{line.pk}-reason": "Typed."}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "This form was out of date" in page
    assert "Typed." in page and 'value="5.00"' in page
    assert _refund_form(page, line)  # a fresh token to send it again with
    assert not Refund.objects.exists()


def test_two_requests_racing_with_one_token_make_one_refund(
    paid_checkout, field_trip, finance_user, stripe_double
):
    """The other request inserts its refund between this one's look-up and its
    insert: the unique token settles it."""
    from payments import services

    line = paid_checkout.lines.get(fee=field_trip)
    token = uuid.uuid4()
    real = services._refunded_by_line

    def meanwhile(checkout):
        if not Refund.objects.filter(form_token=token).exists():
            Refund.objects.create(checkout=checkout, line=line, amount_cents=500, form_token=token)
        return real(checkout)

    with (
        mock.patch.object(services, "_refunded_by_line", side_effect=meanwhile),
        pytest.raises(RefundAlreadyRequested) as raised,
    ):
        refund_request(
            line=line, amount_cents=500, reason="twice", actor=finance_user, form_token=token
        )
    # The other request's refund (here written in this test's own transaction, so
    # gone with its rollback) is the one answered; nothing went to Stripe.
    assert (raised.value.refund.form_token, raised.value.refund.amount_cents) == (token, 500)
    assert "already asked for" in raised.value.message
    assert not stripe_double.calls("POST", "/v1/refunds")


# -- 5. refunds that leave nothing owed ---------------------------------------------------


def _refund_through_the_page(
    finance: Client, checkout: Checkout, line: CheckoutLine, amount: str, **extra: str
) -> Refund:
    url = reverse("staff_payment", kwargs={"pk": checkout.pk})
    data = {
        **_refund_form(finance.get(url).content.decode(), line),
        f"line-{line.pk}-amount": amount,
        f"line-{line.pk}-reason": "Refund asked by the family.",
        **{f"line-{line.pk}-{name}": value for name, value in extra.items()},
    }
    response = finance.post(
        reverse("staff_payment_refund", kwargs={"pk": checkout.pk, "line_pk": line.pk}), data
    )
    assert response.status_code == 302, response.content[:500]
    return Refund.objects.get(form_token=data[f"line-{line.pk}-token"])


def _succeed(client: Client, stripe_double, refund: Refund) -> None:
    succeeded = stripe_double.refund_set(refund.stripe_refund_id, "succeeded")
    outcome = deliver(client, stripe_double.event("refund.updated", succeeded)).json()["outcome"]
    assert outcome == f"refund {refund.stripe_refund_id} recorded"


def test_lunch_money_given_back_is_not_owed(
    client, finance, family, lunch, guardian_user, stripe_double
):
    checkout = checkout_create(
        household=family.household, lines=[(family.mateo, lunch, 5000)], user=guardian_user
    )
    checkout = _pay(client, stripe_double, checkout)
    line = checkout.lines.get()
    page = finance.get(reverse("staff_payment", kwargs={"pk": checkout.pk})).content.decode()
    assert f"line-{line.pk}-fee_released" not in page  # no such choice for lunch

    refund = _refund_through_the_page(finance, checkout, line, "20.00")
    _succeed(client, stripe_double, refund)

    assert _entries(fee=lunch) == [
        ("assessment", family.household.pk, 5000),
        ("payment", family.household.pk, -5000),
        ("refund", family.household.pk, 2000),
        ("adjustment", family.household.pk, -2000),
    ]
    adjustment = LedgerEntry.objects.get(kind=LedgerEntry.Kind.ADJUSTMENT)
    assert adjustment.note.startswith("lunch money given back")
    assert adjustment.checkout == checkout and adjustment.student == family.mateo
    assert balance_cents(household=family.household) == 0
    # $30.00 stays on Mateo's account: the room left is $200.00 less that.
    cart_line = household_cart(family.household).line(line_key(family.mateo.pk, lunch.pk))
    assert cart_line.due_cents == 20000 - 3000


def test_a_fee_the_family_no_longer_owes_is_not_due_again(
    client, finance, paid_checkout, family, field_trip, guardian_user, stripe_double
):
    line = paid_checkout.lines.get(fee=field_trip)
    page = finance.get(reverse("staff_payment", kwargs={"pk": paid_checkout.pk})).content.decode()
    assert re.search(rf'name="line-{line.pk}-fee_released"[^>]*checked', page)  # by default

    refund = _refund_through_the_page(finance, paid_checkout, line, "18.50", fee_released="on")
    assert refund.fee_released
    _succeed(client, stripe_double, refund)

    assert balance_cents(household=family.household, fee=field_trip) == 0
    sofia = next(c for c in household_cart(family.household).children if c.student == family.sofia)
    assert field_trip not in [cart_line.fee for cart_line in sofia.lines]
    (settled,) = [s for s in sofia.settled if s.fee == field_trip]
    assert settled.released
    sign_in(client, guardian_user)
    html = client.get(reverse("guardian_fees_household", args=[family.household.pk]))
    assert "Aquarium visit: nothing owed" in html.content.decode()


def test_a_refund_of_a_fee_still_owed_makes_it_due_again(
    client, finance, paid_checkout, family, field_trip, stripe_double
):
    line = paid_checkout.lines.get(fee=field_trip)
    refund = _refund_through_the_page(finance, paid_checkout, line, "18.50")  # unchecked
    assert not refund.fee_released
    _succeed(client, stripe_double, refund)
    assert balance_cents(household=family.household, fee=field_trip) == 1850
    cart_line = household_cart(family.household).line(line_key(family.sofia.pk, field_trip.pk))
    assert cart_line.due_cents == 1850


def test_a_released_refund_that_fails_later_leaves_a_credit(
    client, finance, paid_checkout, family, field_trip, stripe_double
):
    line = paid_checkout.lines.get(fee=field_trip)
    refund = _refund_through_the_page(finance, paid_checkout, line, "18.50", fee_released="on")
    _succeed(client, stripe_double, refund)
    failed = stripe_double.refund_set(refund.stripe_refund_id, "failed")
    deliver(client, stripe_double.event("refund.failed", failed))
    # The money stayed with the district, which owes it to the family.
    assert balance_cents(household=family.household, fee=field_trip) == -1850
    assert household_cart(family.household).line(line_key(family.sofia.pk, field_trip.pk)) is None


# -- 6. teachers and meal eligibility -----------------------------------------------------


@pytest.fixture
def math7_trip(family, sample_district) -> Fee:
    """Math 7: Mateo (free meals) and Ana (hh-002, not eligible)."""
    _eligible(family.mateo)
    child_add(
        Household.objects.get(sourced_id="hh-002"),
        section_sourced_id="cls-math-7",
        school=School.objects.get(sourced_id="sch-mid"),
        given_name="Ana",
    )
    return _trip("cls-math-7", title="Science museum")


def test_teachers_never_see_who_had_a_trip_waived(client, teacher_user, math7_trip, family):
    sign_in(client, teacher_user)
    page = client.get(reverse("staff_field_trip", kwargs={"pk": math7_trip.pk})).content.decode()
    listing = client.get(reverse("staff_field_trips")).content.decode()

    assert "Mateo García Núñez" in page and "Ana García Núñez" in page
    assert "Nothing owed" in page  # Mateo: the same words as for a trip paid in full
    for text in (page, listing):
        assert ">Waived<" not in text
        assert "waived</" not in text.lower()
    assert "$18.50" in page  # what Ana still owes


def test_finance_and_registrars_still_see_the_waived_figures(
    client, finance_user, registrar_user, math7_trip
):
    for user in (finance_user, registrar_user):
        sign_in(client, user)
        page = client.get(reverse("staff_field_trip", kwargs={"pk": math7_trip.pk}))
        html = page.content.decode()
        assert ">Waived<" in html and "$18.50" in html
        assert ">Waived<" in client.get(reverse("staff_field_trips")).content.decode()
        client.logout()


# -- 7. one audit row per child shown -----------------------------------------------------


def _children_read(actor, via: str) -> set[int]:
    return {
        int(pk)
        for pk in AuditEvent.objects.filter(
            actor=actor, action="view", object_type="registration.student", detail__via=via
        ).values_list("object_id", flat=True)
    }


def test_the_payment_pages_audit_each_child_they_name(finance, finance_user, paid_checkout, family):
    finance.get(reverse("staff_payment", kwargs={"pk": paid_checkout.pk}))
    finance.get(reverse("staff_household_payments", kwargs={"pk": family.household.pk}))
    children = {family.sofia.pk, family.mateo.pk}
    assert _children_read(finance_user, "payments.checkout") == children
    assert _children_read(finance_user, "payments.household") == children


def test_the_trip_page_audits_each_child_in_one_insert(
    client, teacher_user, family, sample_district, django_assert_max_num_queries
):
    middle = School.objects.get(sourced_id="sch-mid")
    for _ in range(30):
        child_add(family.household, section_sourced_id="cls-math-7", school=middle)
    trip = _trip("cls-math-7", title="Science museum")
    sign_in(client, teacher_user)
    with django_assert_max_num_queries(14):
        assert client.get(reverse("staff_field_trip", kwargs={"pk": trip.pk})).status_code == 200
    assert len(_children_read(teacher_user, "payments.field_trip")) == 31


def test_audit_records_bulk_writes_one_row_per_record(rf, finance_user, family):
    from workflow.services import audit_records_bulk

    request = rf.get("/staff/", REMOTE_ADDR="192.0.2.7")
    request.user = finance_user
    rows = audit_records_bulk(
        action="view", objs=[family.sofia, family.mateo], request=request, detail={"via": "x"}
    )
    assert len(rows) == 2
    assert sorted(
        AuditEvent.objects.filter(detail__via="x").values_list(
            "object_type", "object_id", "actor_id", "ip_address"
        )
    ) == sorted(
        [
            ("registration.student", str(family.sofia.pk), finance_user.pk, "192.0.2.7"),
            ("registration.student", str(family.mateo.pk), finance_user.pk, "192.0.2.7"),
        ]
    )


# -- 8a. fees locked by checkouts ---------------------------------------------------------


def test_a_fee_being_paid_is_not_deactivated(family, guardian_user, stripe_double, finance_user):
    fee = FeeFactory(kind=Fee.Kind.OPTIONAL, title="Yearbook", amount_cents=3500)
    checkout_create(
        household=family.household, lines=[(family.sofia, fee, None)], user=guardian_user
    )
    with pytest.raises(FeeRefused, match="paying this fee right now"):
        fee_deactivate(fee=fee, actor=finance_user)
    fee.refresh_from_db()
    assert fee.active


def test_a_cancelled_trip_cannot_be_paid(family, guardian_user, stripe_double):
    trip = _trip()
    field_trip_cancel(fee=trip, actor=None, reason="bus strike")
    with pytest.raises(CheckoutRefused, match="cannot be paid"):
        checkout_create(
            household=family.household, lines=[(family.sofia, trip, None)], user=guardian_user
        )


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_cancellation_racing_checkouts_never_leaves_a_cancelled_trip_being_paid(
    family, guardian_user, stripe_double
):
    """However the race goes, a cancelled trip has no open checkout: the checkout and
    the cancellation take the same fee lock."""
    for _ in range(5):
        trip = _trip(title=f"Trip {uuid.uuid4().hex[:6]}")
        barrier = threading.Barrier(2)
        results: list[Any] = []

        def run(work, trip=trip, barrier=barrier, results=results) -> None:
            try:
                barrier.wait()
                results.append(work(trip))
            except Exception as error:  # reported below
                results.append(error)
            finally:
                connections.close_all()

        def pay(trip: Fee) -> Any:
            return checkout_create(
                household=family.household, lines=[(family.sofia, trip, None)], user=guardian_user
            )

        def cancel(trip: Fee) -> Any:
            return field_trip_cancel(fee=trip, actor=None)

        threads = [threading.Thread(target=run, args=(work,)) for work in (pay, cancel)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(isinstance(r, int | Checkout | CheckoutRefused | FeeRefused) for r in results), (
            results
        )
        trip.refresh_from_db()
        open_lines = CheckoutLine.objects.filter(fee=trip, checkout__state=Checkout.State.OPEN)
        assert trip.active or not open_lines.exists(), results


# -- 8b. a trip whose day has passed ------------------------------------------------------


def test_a_trip_whose_day_has_passed_is_refused_as_the_cart_leaves_it_out(
    family, guardian_user, stripe_double, sample_district
):
    past = FieldTripFactory(title="Zoo", event_date=TODAY - datetime.timedelta(days=1))
    assert household_cart(family.household).line(line_key(family.sofia.pk, past.pk)) is None
    with pytest.raises(CheckoutRefused, match="cannot be paid"):
        checkout_create(
            household=family.household, lines=[(family.sofia, past, None)], user=guardian_user
        )
    assert not Checkout.objects.exists()


# -- 8c. finance changes money, registrars read ---------------------------------------------


def test_registrars_read_but_do_not_refund_or_change_the_catalog(
    client, registrar_user, paid_checkout, field_trip, stripe_double, caplog
):
    fee, _waived = fee_create(
        kind=Fee.Kind.OPTIONAL, title="Yearbook", amount_cents=3500, gl_code="4300", actor=None
    )
    line = paid_checkout.lines.get(fee=field_trip)
    fees_before = Fee.objects.count()
    sign_in(client, registrar_user)

    payment = client.get(reverse("staff_payment", kwargs={"pk": paid_checkout.pk}))
    assert payment.status_code == 200
    assert "Refund through Stripe" not in payment.content.decode()
    assert "Only finance makes refunds" in payment.content.decode()
    edit = client.get(reverse("staff_fee_edit", kwargs={"pk": fee.pk}))
    assert edit.status_code == 200 and "Deactivate this fee" not in edit.content.decode()
    assert "disabled" in edit.content.decode()
    assert client.get(reverse("staff_meal_eligibility")).status_code == 200
    assert "New: " not in client.get(reverse("staff_fees")).content.decode()

    posts = [
        (
            reverse("staff_payment_refund", kwargs={"pk": paid_checkout.pk, "line_pk": line.pk}),
            {
                f"line-{line.pk}-token": str(uuid.uuid4()),
                f"line-{line.pk}-amount": "5.00",
                f"line-{line.pk}-reason": "Asked by the family.",
            },
        ),
        (reverse("staff_fee_create", kwargs={"kind": "optional"}), {"title": "Club"}),
        (reverse("staff_fee_edit", kwargs={"pk": fee.pk}), {"title": "Renamed"}),
        (reverse("staff_fee_deactivate", kwargs={"pk": fee.pk}), {}),
        (reverse("staff_meal_eligibility"), {}),
    ]
    with caplog.at_level("WARNING", logger="security"):
        for url, data in posts:
            assert client.post(url, data).status_code == 403, url
    assert sum("only finance" in r.getMessage() for r in caplog.records) == len(posts)
    refund = Refund.objects.create(checkout=paid_checkout, line=line, amount_cents=100)
    send = reverse("staff_payment_refund_send", kwargs={"pk": refund.pk})
    assert client.post(send).status_code == 403
    fee.refresh_from_db()
    assert (fee.title, fee.active) == ("Yearbook", True)
    assert Fee.objects.count() == fees_before and Refund.objects.count() == 1
    assert not stripe_double.calls("POST", "/v1/refunds")


# -- 8d, 8e. the receipt's language and the TEST subject ------------------------------------


@pytest.fixture
def local_mode(settings):
    from tests.payments.test_local_checkout import use_local_stripe

    use_local_stripe(settings)
    return settings


def _paid_locally(checkout: Checkout, capture) -> Checkout:
    from payments import local_stripe

    with capture(execute=True):
        assert local_stripe.checkout_paid_deliver(checkout=checkout) == "paid"
    return Checkout.objects.get(pk=checkout.pk)


def test_the_receipt_and_its_email_are_in_the_paying_guardians_language(
    local_mode, family, lunch, guardian_user, django_capture_on_commit_callbacks
):
    """José chose English; his household reads Spanish."""
    Guardian.objects.filter(user=guardian_user).update(language="en")
    assert family.household.language == "es"
    checkout = checkout_create(
        household=family.household, lines=[(family.sofia, lunch, 2500)], user=guardian_user
    )
    checkout = _paid_locally(checkout, django_capture_on_commit_callbacks)
    assert checkout.receipt.language == "en"
    (message,) = mail.outbox
    assert message.subject.startswith("TEST — no real money: Receipt R-")
    assert "Thank you. We received your payment:" in message.body
    assert message.attachments[0][0].startswith("receipt-")


def test_without_a_choice_the_households_language_is_used_for_both(
    local_mode, family, lunch, guardian_user, django_capture_on_commit_callbacks
):
    Guardian.objects.filter(user=guardian_user).update(language="")
    checkout = checkout_create(
        household=family.household, lines=[(family.sofia, lunch, 2500)], user=guardian_user
    )
    checkout = _paid_locally(checkout, django_capture_on_commit_callbacks)
    assert checkout.receipt.language == "es"
    (message,) = mail.outbox
    assert message.subject.startswith("PRUEBA — sin dinero real: ")
    assert message.attachments[0][0].startswith("recibo-")


def test_a_receipt_paid_on_stripe_has_no_test_in_its_subject(
    client, family, lunch, guardian_user, stripe_double, django_capture_on_commit_callbacks
):
    Guardian.objects.filter(user=guardian_user).update(language="en")
    checkout = checkout_create(
        household=family.household, lines=[(family.sofia, lunch, 2500)], user=guardian_user
    )
    with django_capture_on_commit_callbacks(execute=True):
        checkout_pay(checkout=checkout, payment_intent="pi_3MtwBwLkdIwHu7ix28a3tqPa")
    (message,) = mail.outbox
    assert message.subject.startswith("Receipt R-")
    assert "TEST" not in message.subject
