"""The ledger only grows, and a balance is the sum of its entries."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db import IntegrityError, transaction
from django.test import RequestFactory

from payments.models import LedgerEntry, LedgerIsAppendOnly
from payments.selectors import balance_cents
from payments.services import fee_assess, fee_waive, ledger_adjust
from tests.payments.factories import FeeFactory


@pytest.fixture
def required_fee(sample_district):
    return FeeFactory(title="Technology fee", amount_cents=4000)


def test_an_entry_is_never_changed_or_deleted(family, required_fee, finance_user):
    entry = fee_assess(
        household=family.household, student=family.sofia, fee=required_fee, actor=finance_user
    )
    entry.amount_cents = 1
    with pytest.raises(LedgerIsAppendOnly):
        entry.save()
    with pytest.raises(LedgerIsAppendOnly):
        entry.delete()
    with pytest.raises(LedgerIsAppendOnly):
        LedgerEntry.objects.filter(pk=entry.pk).update(amount_cents=1)
    with pytest.raises(LedgerIsAppendOnly):
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(LedgerIsAppendOnly):
        LedgerEntry.objects.bulk_update([entry], ["amount_cents"])
    assert LedgerEntry.objects.get(pk=entry.pk).amount_cents == 4000


def test_the_admin_only_reads_the_ledger(family, required_fee, finance_user, registrar_user):
    fee_assess(
        household=family.household, student=family.sofia, fee=required_fee, actor=finance_user
    )
    model_admin = admin.site._registry[LedgerEntry]
    request = RequestFactory().get("/admin/payments/ledgerentry/")
    registrar_user.is_superuser = True
    request.user = registrar_user
    entry = LedgerEntry.objects.get()
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, entry)
    assert not model_admin.has_delete_permission(request, entry)


def test_each_kind_has_its_sign(family, required_fee):
    for kind, amount in (
        (LedgerEntry.Kind.PAYMENT, 100),
        (LedgerEntry.Kind.ASSESSMENT, -100),
        (LedgerEntry.Kind.REFUND, -100),
        (LedgerEntry.Kind.WAIVER, 100),
        (LedgerEntry.Kind.ADJUSTMENT, 0),
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            LedgerEntry.objects.create(kind=kind, amount_cents=amount, household=family.household)


def test_a_balance_is_the_sum_of_the_entries(family, required_fee, finance_user):
    trip = FeeFactory(title="Science camp", amount_cents=12_500)
    fee_assess(
        household=family.household, student=family.sofia, fee=required_fee, actor=finance_user
    )
    fee_assess(
        household=family.household, student=family.mateo, fee=required_fee, actor=finance_user
    )
    fee_assess(household=family.household, student=family.mateo, fee=trip, actor=finance_user)
    assert balance_cents(household=family.household) == 4000 + 4000 + 12_500
    fee_waive(
        household=family.household,
        student=family.mateo,
        fee=trip,
        actor=finance_user,
        note="free meals",
    )
    ledger_adjust(
        household=family.household,
        amount_cents=-250,
        actor=finance_user,
        note="late fee reversed",
    )
    assert balance_cents(household=family.household) == 8000 - 250
    assert balance_cents(student=family.mateo) == 4000
    assert balance_cents(household=family.household, fee=trip) == 0
    assert balance_cents(household=family.household) == sum(
        LedgerEntry.objects.filter(household=family.household).values_list(
            "amount_cents", flat=True
        )
    )
