"""The guardian's cart (``payments.cart``): which fees each child of a household may
pay now, with what is left of each, in a fixed number of queries however many
children and fees there are.

The actors are the shared ones: José's household hh-001 (Sofía, Grade 3 at Las
Lomas; Mateo, Math 7 at Sequoia) and Siobhan's hh-002 (Liam, Kindergarten).
"""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from payments.cart import cart_keys_foreign, household_cart, line_key
from payments.models import Fee
from payments.services import checkout_create, checkout_pay, fee_assess, fee_waive
from registration.models import AcademicSession, Household, HouseholdStudent, School, Student
from tests.payments.factories import FeeFactory, FieldTripFactory, LunchFactory, child_add
from workflow.models import Campaign


def _lines(cart) -> dict[str, tuple[str, int]]:
    """{child's given name + fee title: (kind, due)} for every open line."""
    return {
        f"{line.student.given_name}: {line.fee.title}": (line.kind, line.due_cents)
        for line in cart.lines
    }


@pytest.fixture
def old_campaign(sample_district):
    """Last year's campaign, never opened: its fees are not this year's."""
    return Campaign.objects.create(
        school_year=AcademicSession.objects.get(sourced_id="sy-2027"),
        opens_on=datetime.date(2026, 3, 1),
        closes_on=datetime.date(2026, 4, 1),
    )


def test_the_cart_lists_each_childs_open_fees(
    family, campaign, old_campaign, lunch, field_trip, finance_user, guardian_user, stripe_double
):
    today = timezone.localdate()
    registration_fee = FeeFactory(title="Registration fee", amount_cents=2500, campaign=campaign)
    FeeFactory(title="Last year's fee", amount_cents=900, campaign=old_campaign)
    FeeFactory(kind=Fee.Kind.OPTIONAL, title="Yearbook", amount_cents=3000)
    FeeFactory(kind=Fee.Kind.OPTIONAL, title="Retired item", amount_cents=100, active=False)
    FeeFactory(
        kind=Fee.Kind.OPTIONAL,
        title="Middle school club",
        amount_cents=1500,
        school=family.mateo.school,
    )
    FieldTripFactory(title="Trip gone by", event_date=today - datetime.timedelta(days=1))
    FieldTripFactory(title="Too late to pay", deadline=today - datetime.timedelta(days=1))
    FieldTripFactory(
        title="Science museum",
        section=family.mateo.enrollments.get().section,
        event_date=today + datetime.timedelta(days=20),
        deadline=today + datetime.timedelta(days=10),
    )
    FieldTripFactory(  # Liam's kindergarten class, not José's children's
        title="Pumpkin patch",
        section=Student.objects.get(sourced_id="stu-003").enrollments.get().section,
    )
    household = family.household
    # Sofía's registration fee is waived (free meals); Mateo put $150.00 on his
    # lunch account earlier.
    fee_assess(household=household, student=family.sofia, fee=registration_fee, actor=finance_user)
    fee_waive(
        household=household,
        student=family.sofia,
        fee=registration_fee,
        actor=finance_user,
        note="free meals",
    )
    paid = checkout_create(
        household=household, lines=[(family.mateo, lunch, 15_000)], user=guardian_user
    )
    checkout_pay(checkout=paid, payment_intent="pi_test_cart")

    cart = household_cart(household)

    assert _lines(cart) == {
        "Mateo: Registration fee": ("required", 2500),
        "Mateo: Science museum": ("field_trip", 1850),
        "Mateo: Middle school club": ("optional", 1500),
        "Mateo: Yearbook": ("optional", 3000),
        "Mateo: Lunch account": ("lunch_prepay", 20_000 - 15_000),
        "Sofía: Aquarium visit": ("field_trip", 1850),
        "Sofía: Yearbook": ("optional", 3000),
        "Sofía: Lunch account": ("lunch_prepay", 20_000),
    }
    # Required first, then trips, optional fees and lunch, child by child.
    assert [line.fee.title for line in cart.children[0].lines] == [
        "Registration fee",
        "Science museum",
        "Middle school club",
        "Yearbook",
        "Lunch account",
    ]
    sofia = next(child for child in cart.children if child.student == family.sofia)
    (waived,) = sofia.settled
    assert (waived.fee, waived.waived, waived.paid_cents) == (registration_fee, True, 0)
    assert cart.required_due_cents == 2500 and cart.has_required_fees
    assert cart.required_due_display == "$25.00"
    lunch_line = cart.line(line_key(family.mateo.pk, lunch.pk))
    assert (lunch_line.min_cents, lunch_line.due_display) == (500, "$50.00")


def test_a_full_lunch_account_and_a_fee_paid_by_the_other_household_are_not_open(
    family, lunch, field_trip, other_guardian_user, stripe_double
):
    other = Household.objects.get(sourced_id="hh-002")
    HouseholdStudent.objects.create(household=other, student=family.sofia, is_primary=False)
    # Sofía's other household pays her trip and fills her lunch account.
    checkout = checkout_create(
        household=other,
        lines=[(family.sofia, field_trip, None), (family.sofia, lunch, 19_600)],
        user=other_guardian_user,
    )
    checkout_pay(checkout=checkout, payment_intent="pi_test_other")

    cart = household_cart(family.household)
    sofia = next(child for child in cart.children if child.student == family.sofia)
    assert sofia.lines == []  # $4.00 of room is less than the smallest top-up
    assert sofia.lunch_full == [lunch]
    (trip,) = sofia.settled
    assert (trip.fee, trip.waived, trip.paid_cents) == (field_trip, False, 1850)

    # In the other household Sofía is listed after its own children.
    other_cart = household_cart(other)
    assert [c.student.sourced_id for c in other_cart.children][-1] == "stu-001"
    assert [c.is_primary for c in other_cart.children][-1] is False


def test_the_cart_costs_the_same_queries_for_one_child_and_five(
    family, campaign, lunch, field_trip, django_assert_num_queries, guardian_user, stripe_double
):
    small = Household.objects.create(sourced_id="hh-cart-small", street1="1 Small St")
    child_add(small, given_name="Uno", section_sourced_id="cls-hr-3")
    large = family.household
    for name in ("Ana", "Bea", "Cal"):
        child_add(large, given_name=name, section_sourced_id="cls-hr-3")
    for index in range(6):
        FeeFactory(title=f"Required {index}", campaign=campaign)
        FieldTripFactory(title=f"Trip {index}")
        LunchFactory(title=f"Lunch {index}")
    checkout_pay(
        checkout=checkout_create(
            household=large, lines=[(family.sofia, field_trip, None)], user=guardian_user
        ),
        payment_intent="pi_test_q",
    )

    with django_assert_num_queries(5):  # the campaign, children, fees, classes, ledger
        small_cart = household_cart(small)
    with django_assert_num_queries(5):
        large_cart = household_cart(large)
    assert len(small_cart.lines) == 6 + 7 + 7  # required, trips, lunch accounts
    assert len(large_cart.lines) > 5 * 6 * 2
    members = list(HouseholdStudent.objects.filter(household=large).select_related("student"))
    with django_assert_num_queries(3):  # the campaign and children given
        household_cart(large, campaign=campaign, members=members)


def test_a_household_without_fees_costs_two_queries(family, django_assert_num_queries):
    with django_assert_num_queries(2):  # the children, and no fee to look at further
        cart = household_cart(family.household, campaign=None)
    assert cart.lines == [] and len(cart.children) == 2


def test_posted_keys_are_told_apart_foreign_or_no_longer_open(family, lunch, field_trip):
    cart = household_cart(family.household, campaign=None)
    liam = Student.objects.get(sourced_id="stu-003")
    pumpkin = FieldTripFactory(title="Pumpkin patch", section=liam.enrollments.get().section)
    high_school_fee = FeeFactory(title="High", school=School.objects.get(sourced_id="sch-high"))
    assert cart_keys_foreign(cart, [line_key(liam.pk, lunch.pk)]) == (
        "child of another household in the cart"
    )
    assert cart_keys_foreign(cart, [line_key(family.sofia.pk, pumpkin.pk)]) == (
        "fee of another class in the cart"
    )
    assert cart_keys_foreign(cart, [line_key(family.sofia.pk, high_school_fee.pk)]) == (
        "fee of another school in the cart"
    )
    assert cart_keys_foreign(cart, [line_key(family.sofia.pk, 999_999)]) == (
        "unknown fee in the cart"
    )
    assert cart_keys_foreign(cart, ["1-2-3", "x"]) == "malformed fee in the cart"
    # The household's own trip, closed since the page was shown: not foreign.
    field_trip.active = False
    field_trip.save()
    assert cart_keys_foreign(cart, [line_key(family.sofia.pk, field_trip.pk)]) == ""
