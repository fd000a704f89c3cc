"""Automatic waivers for children eligible for free or reduced-price meals: what is
waived (an assessment first when there was none, then the waiver, to the child's
primary household), what is not, idempotence, and a fixed number of queries."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments.models import Fee, LedgerEntry
from payments.selectors import balance_cents
from payments.services import WaiversApplied, fee_assess, waivers_apply
from registration.models import Household, HouseholdStudent, School
from tests.payments.factories import FeeFactory, LunchFactory, StudentFactory, child_add

TODAY = timezone.localdate()


@pytest.fixture
def eligible(family):
    """Sofía gets free meals; Mateo none."""
    family.sofia.meal_eligibility = "free"
    family.sofia.save(update_fields=["meal_eligibility"])
    return family


def _entries() -> list[tuple[str, int, int, int, int]]:
    return sorted(
        LedgerEntry.objects.values_list(
            "kind", "household_id", "student_id", "fee_id", "amount_cents"
        )
    )


def test_an_eligible_child_is_assessed_then_waived_once(eligible, registrar_user):
    fee = FeeFactory(waivable_for_free_meals=True, amount_cents=4000)
    family = eligible

    applied = waivers_apply(fees=[fee], actor=registrar_user)

    assert applied == WaiversApplied(assessments=1, waivers=1, waived_cents=4000)
    hh = family.household.pk
    assert _entries() == [
        ("assessment", hh, family.sofia.pk, fee.pk, 4000),
        ("waiver", hh, family.sofia.pk, fee.pk, -4000),
    ]
    waiver = LedgerEntry.objects.get(kind="waiver")
    assert (waiver.created_by, waiver.note) == (registrar_user, "free or reduced-price meals")
    # Nothing more, however often it runs, with or without the fee named.
    assert waivers_apply(fees=[fee]) == WaiversApplied()
    assert waivers_apply() == WaiversApplied()
    assert waivers_apply(students=[family.sofia]) == WaiversApplied()
    assert LedgerEntry.objects.count() == 2
    assert balance_cents(student=family.sofia, fee=fee) == 0


def test_a_fee_already_assessed_is_only_waived(eligible, registrar_user):
    fee = FeeFactory(waivable_for_free_meals=True, amount_cents=2500)
    family = eligible
    fee_assess(household=family.household, student=family.sofia, fee=fee, actor=registrar_user)
    applied = waivers_apply(students=[family.sofia])
    assert applied == WaiversApplied(assessments=0, waivers=1, waived_cents=2500)
    assert balance_cents(household=family.household) == 0


def test_the_waiver_goes_to_the_primary_household(eligible, other_guardian_user):
    """Sofía also lives part-time with hh-002; her fees are waived in hh-001's ledger."""
    family = eligible
    other = Household.objects.get(sourced_id="hh-002")
    HouseholdStudent.objects.create(household=other, student=family.sofia, is_primary=False)
    fee = FeeFactory(waivable_for_free_meals=True)
    waivers_apply(fees=[fee])
    assert set(LedgerEntry.objects.values_list("household_id", flat=True)) == {family.household.pk}


def test_what_is_not_waived(eligible, sample_district):
    family = eligible
    high = School.objects.get(sourced_id="sch-high")
    yesterday = TODAY - datetime.timedelta(days=1)
    FeeFactory(title="not waivable", waivable_for_free_meals=False)
    LunchFactory(waivable_for_free_meals=True)  # money on an account is never waived
    FeeFactory(title="inactive", waivable_for_free_meals=True, active=False)
    FeeFactory(title="past its deadline", waivable_for_free_meals=True, deadline=yesterday)
    FeeFactory(title="another school", waivable_for_free_meals=True, school=high)
    FeeFactory(
        title="another class's trip",
        kind=Fee.Kind.FIELD_TRIP,
        waivable_for_free_meals=True,
        section=family.mateo.enrollments.get().section,
    )
    disabled = child_add(family.household, meal_eligibility="reduced", enabled=False)
    assert waivers_apply() == WaiversApplied()
    assert not LedgerEntry.objects.exists()
    assert disabled.pk  # a disabled child is never charged nor waived


def test_a_settled_fee_is_not_waived_again(eligible, registrar_user):
    """Paid (here: waived by hand before) is settled: nothing is written."""
    from payments.services import fee_waive

    family = eligible
    fee = FeeFactory(waivable_for_free_meals=True)
    fee_assess(household=family.household, student=family.sofia, fee=fee, actor=registrar_user)
    fee_waive(
        household=family.household,
        student=family.sofia,
        fee=fee,
        actor=registrar_user,
        note="by hand",
    )
    assert waivers_apply() == WaiversApplied()
    assert LedgerEntry.objects.count() == 2


def test_a_child_with_no_primary_household_is_left_alone(sample_district):
    child = StudentFactory(meal_eligibility="free")
    FeeFactory(waivable_for_free_meals=True)
    assert waivers_apply(students=[child]) == WaiversApplied()
    assert not LedgerEntry.objects.exists()


def _queries(**kwargs) -> tuple[int, int]:
    """(reads and locks, inserts) of one run."""
    with CaptureQueriesContext(connection) as captured:
        waivers_apply(**kwargs)
    inserts = sum(1 for q in captured if q["sql"].startswith("INSERT"))
    return len(captured) - inserts, inserts


def test_a_fixed_number_of_queries_however_many_children_and_fees(eligible):
    family = eligible
    FeeFactory(waivable_for_free_meals=True)
    one_child, one_insert = _queries()
    assert one_insert == 1
    LedgerEntry.objects.all()._raw_delete(LedgerEntry.objects.db)  # start again (test only)

    for _ in range(12):
        child_add(family.household, meal_eligibility="reduced")
    for _ in range(4):
        FeeFactory(waivable_for_free_meals=True)
    many, inserts = _queries()
    assert LedgerEntry.objects.filter(kind="waiver").count() == 13 * 5
    # The same reads; the 130 entries are written in batches (SQLite's are small).
    assert many == one_child
    assert inserts <= 3
    assert _queries() == (one_child, 0)  # and nothing written the second time
