"""PDF receipts: rendered once per paid checkout (tagged PDF/UA, in the household's
language), emailed once to the guardian who paid, and downloadable by the household
and by finance; they agree with the ledger and the balance to the cent."""

from __future__ import annotations

import hashlib
import io
import logging
import re
from unittest import mock

import pytest
from django.core import mail
from django.db.models import Sum
from django.urls import reverse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext
from pypdf import PdfReader

from documents.models import Receipt
from documents.services import receipt_render
from payments import local_stripe
from payments.models import Checkout, LedgerEntry
from payments.selectors import balance_cents
from payments.services import checkout_create, checkout_receipt_send, fee_assess
from registration.models import Household, Student
from tests.conftest import sign_in
from tests.payments.factories import FeeFactory, child_add
from tests.payments.test_local_checkout import use_local_stripe
from tests.pdf_fonts import serif_fonts
from workflow.models import AuditEvent

MONEY = re.compile(r"\$[\d,]+\.\d\d")


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def receipt_text(receipt: Receipt) -> str:
    with receipt.pdf.open("rb") as handle:
        return pdf_text(handle.read())


def cents(amount: str) -> int:
    return int(amount.lstrip("$").replace(",", "").replace(".", ""))


def paid(checkout: Checkout, capture) -> Checkout:
    """Pay a checkout as the TEST page does, through the webhook."""
    with capture(execute=True):
        assert local_stripe.checkout_paid_deliver(checkout=checkout) == "paid"
    return Checkout.objects.get(pk=checkout.pk)


@pytest.fixture
def local_mode(settings):
    use_local_stripe(settings)
    return settings


@pytest.fixture
def spanish_checkout(local_mode, family, lunch, field_trip, guardian_user) -> Checkout:
    """hh-001 (Spanish): lunch for Sofía and Mateo, Sofía's field trip; open."""
    return checkout_create(
        household=family.household,
        lines=[
            (family.sofia, lunch, 2500),
            (family.mateo, lunch, 4000),
            (family.sofia, field_trip, None),
        ],
        user=guardian_user,
    )


def test_the_receipt_is_rendered_once_as_tagged_pdf_ua_in_the_household_language(
    spanish_checkout, family, django_capture_on_commit_callbacks
):
    checkout = paid(spanish_checkout, django_capture_on_commit_callbacks)
    assert family.household.language == "es"
    receipt = checkout.receipt
    assert receipt_render(checkout=checkout).pk == receipt.pk  # the same one again
    assert Receipt.objects.count() == 1
    assert receipt.language == "es"
    with receipt.pdf.open("rb") as handle:
        data = handle.read()
    assert hashlib.sha256(data).hexdigest() == receipt.sha256
    root = PdfReader(io.BytesIO(data)).trailer["/Root"]
    assert root["/Lang"] == "es"
    assert "/StructTreeRoot" in root  # tagged
    assert root["/MarkInfo"]["/Marked"]
    text = pdf_text(data)
    with translation.override("es"):
        # Spanish words from the catalogue, and dates as Spanish writes them.
        assert gettext("Receipt number") in text
        assert gettext("Date paid") in text
        paid_on = formats.date_format(timezone.localtime(checkout.paid_at), "DATE_FORMAT")
    assert " de " in paid_on  # "29 de noviembre de 2026"
    assert paid_on in text.replace("\n", " ")
    assert "Página" in text  # the page footer, translated
    assert not serif_fonts(PdfReader(io.BytesIO(data)))  # the footer in the page's font
    assert "R-" in text and str(checkout.reference) in text
    assert checkout.stripe_payment_intent in text
    assert "José" in text  # the guardian who paid


def test_an_english_household_gets_an_english_receipt(
    local_mode,
    lunch,
    other_guardian_user,
    django_capture_on_commit_callbacks,
):
    household = Household.objects.get(sourced_id="hh-002")
    child = Student.objects.filter(householdstudent__household=household).order_by("pk").first()
    checkout = checkout_create(
        household=household, lines=[(child, lunch, 1234)], user=other_guardian_user
    )
    checkout = paid(checkout, django_capture_on_commit_callbacks)
    receipt = checkout.receipt
    assert receipt.language == "en"
    text = receipt_text(receipt)
    assert "Receipt number" in text and "Total paid" in text
    assert MONEY.findall(text) == ["$12.34", "$12.34"]
    (message,) = mail.outbox
    assert message.to == ["siobhan.obrien@example.com"]
    assert "$12.34" in message.body
    assert reverse("receipt_download", args=[checkout.pk]) in message.body


def test_the_receipt_is_emailed_once(spanish_checkout, django_capture_on_commit_callbacks):
    checkout = paid(spanish_checkout, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1
    assert checkout_receipt_send(checkout_id=checkout.pk) is False  # a second delivery
    assert len(mail.outbox) == 1
    checkout.refresh_from_db()
    assert checkout.receipt_sent_at is not None
    assert checkout.receipt.emailed_at is not None


def test_a_failed_send_releases_the_claim_so_the_retry_sends(
    spanish_checkout, django_capture_on_commit_callbacks
):
    with mock.patch("payments.tasks.checkout_receipt_send_task.apply_async"):
        checkout = paid(spanish_checkout, django_capture_on_commit_callbacks)
    with (
        mock.patch("django.core.mail.EmailMessage.send", side_effect=OSError("mail down")),
        pytest.raises(OSError),
    ):
        checkout_receipt_send(checkout_id=checkout.pk)
    checkout = Checkout.objects.get(pk=spanish_checkout.pk)
    assert checkout.receipt.emailed_at is None
    assert checkout.receipt_sent_at is None
    assert checkout_receipt_send(checkout_id=checkout.pk) is True
    (message,) = mail.outbox
    assert message.attachments[0][2] == "application/pdf"
    assert Receipt.objects.count() == 1


def test_a_plain_receipt_sent_before_gets_its_pdf_but_no_second_email(
    spanish_checkout, django_capture_on_commit_callbacks
):
    with mock.patch("payments.tasks.checkout_receipt_send_task.apply_async"):
        checkout = paid(spanish_checkout, django_capture_on_commit_callbacks)
    Checkout.objects.filter(pk=checkout.pk).update(receipt_sent_at=timezone.now())
    assert checkout_receipt_send(checkout_id=checkout.pk) is False
    assert mail.outbox == []
    assert Receipt.objects.filter(checkout=checkout).exists()


def test_an_open_checkout_has_no_receipt(spanish_checkout):
    assert checkout_receipt_send(checkout_id=spanish_checkout.pk) is False
    with pytest.raises(ValueError):
        receipt_render(checkout=spanish_checkout)
    assert not Receipt.objects.exists()


# -- downloads -------------------------------------------------------------------------


def download(checkout: Checkout) -> str:
    return reverse("receipt_download", args=[checkout.pk])


def test_a_guardian_of_the_household_downloads_the_receipt(
    client, spanish_checkout, guardian_user, django_capture_on_commit_callbacks
):
    checkout = paid(spanish_checkout, django_capture_on_commit_callbacks)
    sign_in(client, guardian_user)
    response = client.get(download(checkout))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert f"R-{checkout.pk:06d}" in response["Content-Disposition"]
    data = b"".join(response.streaming_content)
    assert MONEY.findall(pdf_text(data))[-1] == "$83.50"
    assert not AuditEvent.objects.filter(object_type="documents.receipt").exists()


def test_another_guardian_gets_404_and_a_security_log(
    client, spanish_checkout, other_guardian_user, caplog, django_capture_on_commit_callbacks
):
    checkout = paid(spanish_checkout, django_capture_on_commit_callbacks)
    sign_in(client, other_guardian_user)
    with caplog.at_level(logging.WARNING, logger="security"):
        assert client.get(download(checkout)).status_code == 404
        assert client.get(reverse("receipt_download", args=[99999])).status_code == 404
    refusals = [r.getMessage() for r in caplog.records if r.name == "security"]
    assert len(refusals) == 2 and all("receipt" in m for m in refusals)


def test_office_staff_and_teachers_get_404(
    client, spanish_checkout, office_user, django_capture_on_commit_callbacks
):
    checkout = paid(spanish_checkout, django_capture_on_commit_callbacks)
    sign_in(client, office_user)
    assert client.get(download(checkout)).status_code == 404


def test_finance_downloads_any_receipt_and_each_read_is_audited(
    client, spanish_checkout, family, finance_user, django_capture_on_commit_callbacks
):
    checkout = paid(spanish_checkout, django_capture_on_commit_callbacks)
    sign_in(client, finance_user)
    response = client.get(download(checkout))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    reads = AuditEvent.objects.filter(actor=finance_user, action="view")
    (receipt_read,) = reads.filter(object_type="documents.receipt")
    assert receipt_read.object_id == str(checkout.receipt.pk)
    assert receipt_read.detail["household"] == family.household.pk
    children = set(
        reads.filter(object_type="registration.student").values_list("object_id", flat=True)
    )
    assert children == {str(family.sofia.pk), str(family.mateo.pk)}


def test_a_checkout_not_paid_has_no_download(
    client, spanish_checkout, guardian_user, registrar_user
):
    sign_in(client, guardian_user)
    assert client.get(download(spanish_checkout)).status_code == 404
    client.logout()
    sign_in(client, registrar_user)
    assert client.get(download(spanish_checkout)).status_code == 404
    assert not Receipt.objects.exists()


# -- must hold: the ledger, the balance and the receipt agree to the cent --------------


def test_three_children_lunch_for_two_and_a_trip_for_one_the_receipt_agrees(
    client,
    local_mode,
    family,
    lunch,
    field_trip,
    guardian_user,
    finance_user,
    django_capture_on_commit_callbacks,
):
    lucia = child_add(family.household, given_name="Lucía", grade="01")
    # Owed before the family pays: the trip (charged by the district) and a fee of
    # Mateo's that this checkout does not pay.
    fee_assess(household=family.household, student=family.sofia, fee=field_trip, actor=finance_user)
    technology = FeeFactory(title="Technology fee", amount_cents=3333)
    fee_assess(household=family.household, student=family.mateo, fee=technology, actor=finance_user)
    balance_before = balance_cents(household=family.household)
    assert balance_before == 1850 + 3333

    checkout = checkout_create(
        household=family.household,
        lines=[
            (family.sofia, lunch, 3001),
            (lucia, lunch, 4550),
            (family.sofia, field_trip, None),
        ],
        user=guardian_user,
    )
    sign_in(client, guardian_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("test_checkout", args=[checkout.stripe_session_id]), {"action": "pay"}
        )
    assert response.status_code == 302
    checkout.refresh_from_db()
    assert checkout.state == Checkout.State.PAID

    # The receipt: one row per child and fee, with its amount, and the total.
    (message,) = mail.outbox
    text = pdf_text(message.attachments[0][1])
    rows = [
        (family.sofia.full_name, lunch.title, "$30.01"),
        (lucia.full_name, lunch.title, "$45.50"),
        (family.sofia.full_name, field_trip.title, "$18.50"),
    ]
    lines = text.splitlines()
    for child, fee, amount in rows:
        assert any(child in line and fee in line and amount in line for line in lines), (
            child,
            fee,
            amount,
            text,
        )
    amounts = MONEY.findall(text)
    assert amounts == ["$30.01", "$45.50", "$18.50", "$94.01"]
    receipt_total = cents(amounts[-1])
    assert receipt_total == sum(cents(a) for a in amounts[:-1]) == checkout.total_cents == 9401

    # The ledger: what was paid is the receipt's total, line by line.
    entries = LedgerEntry.objects.filter(checkout=checkout)
    payments = entries.filter(kind=LedgerEntry.Kind.PAYMENT)
    assert -payments.aggregate(total=Sum("amount_cents"))["total"] == receipt_total
    by_line = {(e.student_id, e.fee_id): -e.amount_cents for e in payments}
    assert by_line == {
        (family.sofia.pk, lunch.pk): 3001,
        (lucia.pk, lunch.pk): 4550,
        (family.sofia.pk, field_trip.pk): 1850,
    }
    # The balance: what the household owed drops by the total, once the lunch amounts
    # the family chose (assessed with their payment) are counted as owed.
    assessed_now = entries.filter(kind=LedgerEntry.Kind.ASSESSMENT).aggregate(
        total=Sum("amount_cents")
    )["total"]
    assert assessed_now == 3001 + 4550  # the trip was assessed before, not again
    balance_after = balance_cents(household=family.household)
    assert balance_before + assessed_now - balance_after == receipt_total
    assert balance_after == 3333  # only Mateo's technology fee is still owed
    for child in (family.sofia, lucia):
        assert balance_cents(household=family.household, student=child) == 0


def test_a_chinese_household_gets_a_chinese_receipt_and_email(
    local_mode, lunch, other_guardian_user, django_capture_on_commit_callbacks
):
    chinese_household = Household.objects.get(sourced_id="hh-002")
    chinese_household.language = "zh"  # as the roster gives it
    chinese_household.save(update_fields=["language"])
    child = (
        Student.objects.filter(householdstudent__household=chinese_household).order_by("pk").first()
    )
    lunch.title_zh = "午餐账户"
    lunch.save(update_fields=["title_zh"])
    # Paid from a page in English: the receipt and its email still name the fee in
    # the receipt's language, and the ledger (staff) in English.
    with translation.override("en"):
        checkout = checkout_create(
            household=chinese_household, lines=[(child, lunch, 12345)], user=other_guardian_user
        )
    checkout = paid(checkout, django_capture_on_commit_callbacks)
    receipt = checkout.receipt
    assert receipt.language == "zh-hans"
    notes = set(LedgerEntry.objects.filter(checkout=checkout).values_list("note", flat=True))
    assert notes == {f"{lunch.title} – {child.full_name}"}
    text = receipt_text(receipt)
    with translation.override("zh-hans"):
        assert gettext("Receipt number") in text
        paid_on = formats.date_format(timezone.localtime(checkout.paid_at), "DATE_FORMAT")
    assert "年" in paid_on and paid_on in text.replace("\n", "")
    assert "US$123.45" in text
    assert "午餐账户 US$123.45" in text  # the PDF: child, fee, amount in columns
    (message,) = mail.outbox
    assert "US$123.45" in message.body
    assert f"午餐账户 – {child.full_name}: US$123.45" in message.body
    with translation.override("zh-hans"):
        assert "收据 R-" in message.subject
