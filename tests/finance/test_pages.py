"""Finance's pages under /staff/finance/, through HTTP: what they show, who may open
them, the explanation form, and downloads whose totals agree with the ledger to the
cent (CSV and the month's PDF)."""

from __future__ import annotations

import csv
import datetime
import io
import re

import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from finance.models import Payout, ReconciliationItem
from finance.services import reconcile_payouts
from payments.models import LedgerEntry
from tests.conftest import sign_in
from tests.finance.world import ledger_build, stripe_build
from tests.pdf_fonts import serif_fonts
from workflow.models import AuditEvent

Kind = ReconciliationItem.Kind
# Mid-March: the world's money is recorded from March 5 to March 25, paid out on the 26th.
MARCH_25 = datetime.datetime(2026, 3, 25, 12, 0)


def _csv(response) -> list[dict[str, str]]:
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def _header(response) -> list[str]:
    body = b"".join(response.streaming_content).decode()
    return next(csv.reader(io.StringIO(body)))


def _cents(dollars: str) -> int:
    sign = -1 if dollars.startswith("-") else 1
    whole, cents = dollars.lstrip("-").split(".")
    return sign * (int(whole) * 100 + int(cents))


def _money(cents: int) -> str:
    sign = "−" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}${cents // 100:,}.{cents % 100:02d}"


@pytest.fixture
def march(stripe_double, fees, guardian_user, settings):
    """60 payments and 6 refunds in March 2026, paid out on March 26, with one charge
    Stripe has that the ledger lacks; reconciled."""
    settings.FINANCE_UNPAID_OUT_DAYS = 400  # nothing of March is overdue
    now = timezone.make_aware(MARCH_25)
    ledger = ledger_build(
        payer=guardian_user,
        fee_ids=[f.pk for f in fees],
        payments=60,
        refunds=6,
        now=now,
        days=20,
    )
    ghost = stripe_double.charge_transaction(
        payment_intent="pi_march_ghost",
        amount=1234,
        fee=66,
        created=int((now - datetime.timedelta(days=2)).timestamp()),
    )
    side = stripe_build(
        stripe_double,
        ledger,
        per_payout=25,
        extra=[ghost],
        paid_out_at=now + datetime.timedelta(days=1),
    )
    reconcile_payouts()
    return {"ledger": ledger, "side": side, "ghost": ghost}


@pytest.fixture
def finance_client(client, finance_user):
    sign_in(client, finance_user)
    return client


def _march_ledger() -> dict[str, int]:
    start = timezone.make_aware(datetime.datetime(2026, 3, 1))
    end = timezone.make_aware(datetime.datetime(2026, 4, 1))
    entries = LedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end)
    paid = -(entries.filter(kind="payment").aggregate(t=Sum("amount_cents"))["t"] or 0)
    refunded = entries.filter(kind="refund").aggregate(t=Sum("amount_cents"))["t"] or 0
    return {"payments": paid, "refunds": refunded, "net": paid - refunded}


# -- payouts ------------------------------------------------------------------------------


def test_the_payouts_page_lists_each_payout_with_its_status(
    march, finance_client, django_assert_max_num_queries
):
    with django_assert_max_num_queries(14):
        response = finance_client.get(reverse("staff_finance"))
    assert response.status_code == 200
    html = response.content.decode()
    for payout in march["side"].payouts:
        assert payout["id"] in html
    assert "Mismatches to explain" in html and "Matched" in html
    assert "1 mismatch to explain" in html

    only_open = finance_client.get(reverse("staff_finance"), {"status": "open"})
    assert only_open.context["page"].paginator.count == 1


def test_the_payouts_csv_adds_up_to_what_stripe_sent(march, finance_client):
    response = finance_client.get(reverse("staff_finance"), {"format": "csv"})
    rows = _csv(response)
    side = march["side"]
    assert len(rows) == len(side.payouts)
    assert sum(_cents(r["charges"]) for r in rows) == side.charges_cents + 1234
    assert sum(_cents(r["refunds"]) for r in rows) == side.refunds_cents
    assert sum(_cents(r["fees"]) for r in rows) == side.fees_cents + 66
    assert sum(_cents(r["amount"]) for r in rows) == sum(p["amount"] for p in side.payouts)
    assert {r["difference"] for r in rows} == {"0.00"}
    # The charges Stripe and the ledger agree on are the ledger's payments, to the cent.
    matched = ReconciliationItem.objects.filter(kind=Kind.MATCHED, transaction_type="charge")
    ledger_paid = -LedgerEntry.objects.filter(kind="payment").aggregate(t=Sum("amount_cents"))["t"]
    assert matched.aggregate(t=Sum("amount_cents"))["t"] == ledger_paid
    assert AuditEvent.objects.filter(action="export", detail__table="payouts").exists()


def test_a_payout_page_shows_what_each_charge_paid_for(
    march, finance_client, django_assert_max_num_queries
):
    payout = Payout.objects.get(status=Payout.Status.OPEN)
    with django_assert_max_num_queries(16):
        response = finance_client.get(reverse("staff_finance_payout", args=[payout.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Sofía" in html or "Mateo" in html  # the children the charges paid for
    assert "Lunch account" in html and "5300-NUTRITION" in html
    assert "pi_march_ghost" in html and "In Stripe, not in the ledger" in html
    assert "hh-00" in html
    event = AuditEvent.objects.get(action="view", object_type="finance.payout")
    assert event.object_id == str(payout.pk) and event.detail["households"]
    # The items of the payout, downloaded.
    rows = _csv(
        finance_client.get(reverse("staff_finance_payout", args=[payout.pk]), {"format": "csv"})
    )
    assert len(rows) == payout.transaction_count
    assert sum(_cents(r["net"]) for r in rows) == payout.amount_cents


def test_a_payout_page_pins_its_queries_however_many_items(
    march, finance_client, django_assert_max_num_queries
):
    payout = Payout.objects.filter(status=Payout.Status.MATCHED).first()
    with django_assert_max_num_queries(16):
        finance_client.get(reverse("staff_finance_payout", args=[payout.pk]))


def test_an_unknown_payout_is_404(march, finance_client, caplog):
    response = finance_client.get(reverse("staff_finance_payout", args=[999999]))
    assert response.status_code == 404
    assert any("payout not found" in r.getMessage() for r in caplog.records)


# -- mismatches and the explanation ----------------------------------------------------------


def test_the_mismatches_page_lists_what_is_open(march, finance_client):
    response = finance_client.get(reverse("staff_finance_mismatches"))
    assert response.status_code == 200
    page = response.context["page"]
    (item,) = page.object_list
    assert item.stripe_payment_intent == "pi_march_ghost"
    assert "1 mismatch to explain" in response.content.decode()
    rows = _csv(finance_client.get(reverse("staff_finance_mismatches"), {"format": "csv"}))
    assert [(r["kind"], r["state"], r["amount"], r["ledger_amount"]) for r in rows] == [
        ("stripe_only", "open", "12.34", "")
    ]


def test_explaining_needs_a_note_and_keeps_nothing_typed_away(march, finance_client):
    item = ReconciliationItem.objects.get(kind=Kind.STRIPE_ONLY)
    url = reverse("staff_finance_mismatch_explain", args=[item.pk])

    response = finance_client.post(url, {"note": "   "})

    assert response.status_code == 200
    assert "Please write what explains this difference." in response.content.decode()
    item.refresh_from_db()
    assert item.explained_at is None
    assert not AuditEvent.objects.filter(action="change", object_type=item._meta.label_lower)


def test_explaining_saves_logs_and_shows_the_note(march, finance_client, finance_user):
    item = ReconciliationItem.objects.get(kind=Kind.STRIPE_ONLY)
    note = "Paid at the office by card; the webhook was lost. Entered by hand on 3/28."

    response = finance_client.post(
        reverse("staff_finance_mismatch_explain", args=[item.pk]), {"note": note}
    )

    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.explanation, item.explained_by) == (note, finance_user)
    event = AuditEvent.objects.get(action="change", object_type="finance.reconciliationitem")
    assert event.actor == finance_user and event.detail["explanation"] == note
    assert event.detail["difference_cents"] == 1234
    page = finance_client.get(response["Location"]).content.decode()
    assert "Paid at the office by card" in page
    payout = item.payout
    payout.refresh_from_db()
    assert payout.status == Payout.Status.EXPLAINED
    history = finance_client.get(reverse("staff_finance_payout", args=[payout.pk]))
    assert "Paid at the office by card" in history.content.decode()
    explained = finance_client.get(reverse("staff_finance_mismatches"), {"state": "explained"})
    assert [i.pk for i in explained.context["page"].object_list] == [item.pk]


def test_a_matched_item_is_no_mismatch_to_open(march, finance_client):
    matched = ReconciliationItem.objects.filter(kind=Kind.MATCHED).first()
    assert (
        finance_client.get(reverse("staff_finance_mismatch", args=[matched.pk])).status_code == 404
    )
    response = finance_client.post(
        reverse("staff_finance_mismatch_explain", args=[matched.pk]), {"note": "x"}
    )
    assert response.status_code == 404
    matched.refresh_from_db()
    assert matched.explained_at is None


@pytest.mark.parametrize("role", ["office_user", "teacher_user", "guardian_user"])
def test_only_finance_and_registrars_may_explain(march, client, request, role):
    item = ReconciliationItem.objects.get(kind=Kind.STRIPE_ONLY)
    sign_in(client, request.getfixturevalue(role))
    response = client.post(
        reverse("staff_finance_mismatch_explain", args=[item.pk]), {"note": "mine"}
    )
    assert response.status_code == 403
    item.refresh_from_db()
    assert item.explained_at is None


def test_registrars_may_explain_too(march, client, registrar_user):
    item = ReconciliationItem.objects.get(kind=Kind.STRIPE_ONLY)
    sign_in(client, registrar_user)
    response = client.post(
        reverse("staff_finance_mismatch_explain", args=[item.pk]), {"note": "Registrar's note"}
    )
    assert response.status_code == 302


# -- reports from the ledger --------------------------------------------------------------------


def test_collections_agree_with_the_ledger_in_every_grouping(march, finance_client):
    period = {"since": "2026-03-01", "until": "2026-03-31"}
    response = finance_client.get(reverse("staff_finance_collections"), period)
    assert response.status_code == 200
    ledger = _march_ledger()
    collections = response.context["collections"]
    assert (collections.total.payments_cents, collections.total.refunds_cents) == (
        ledger["payments"],
        ledger["refunds"],
    )
    for table in ("school", "fee", "gl", "day"):
        rows = _csv(
            finance_client.get(
                reverse("staff_finance_collections"), {**period, "table": table, "format": "csv"}
            )
        )
        assert sum(_cents(r["net"]) for r in rows) == ledger["net"], table
        assert sum(_cents(r["payments"]) for r in rows) == ledger["payments"], table
    gl = _csv(
        finance_client.get(
            reverse("staff_finance_collections"), {**period, "table": "gl", "format": "csv"}
        )
    )
    assert {r["gl_code"] for r in gl} == {"5300-NUTRITION", "4200-TRIPS", "4100-FEES"}


def test_the_gl_export_has_the_same_columns_every_month(march, finance_client):
    url = reverse("staff_finance_collections")
    march_file = finance_client.get(
        url, {"since": "2026-03-01", "until": "2026-03-31", "table": "gl_export", "format": "csv"}
    )
    empty_month = finance_client.get(
        url, {"since": "2025-07-01", "until": "2025-07-31", "table": "gl_export", "format": "csv"}
    )
    columns = [
        "period_start",
        "period_end",
        "date",
        "gl_code",
        "payments",
        "refunds",
        "net",
        "entries",
    ]
    assert _header(empty_month) == columns
    rows = _csv(march_file)
    assert list(rows[0]) == columns
    assert sum(_cents(r["net"]) for r in rows) == _march_ledger()["net"]
    assert all(r["period_start"] == "2026-03-01" for r in rows)


def test_collections_refuse_a_backwards_period_next_to_the_field(march, finance_client):
    response = finance_client.get(
        reverse("staff_finance_collections"), {"since": "2026-03-31", "until": "2026-03-01"}
    )
    assert response.status_code == 200
    assert "The last day must not be before the first day." in response.content.decode()
    assert response.context["form"]["until"].value() == "2026-03-01"


def test_outstanding_balances_by_school_and_household(fees, family, finance_client, guardian_user):
    _lunch, trip, activity = fees
    for student, fee, amount in ((family.sofia, trip, 1850), (family.mateo, activity, 4000)):
        LedgerEntry.objects.create(
            kind="assessment",
            amount_cents=amount,
            household=family.household,
            student=student,
            fee=fee,
        )
    LedgerEntry.objects.create(
        kind="payment",
        amount_cents=-1000,
        household=family.household,
        student=family.mateo,
        fee=activity,
        stripe_payment_intent="pi_part",
    )

    response = finance_client.get(reverse("staff_finance_outstanding"))

    assert response.status_code == 200
    assert response.context["total_cents"] == 1850 + 3000
    by_school = {s.name: s.owed_cents for s in response.context["schools"]}
    assert by_school == {"Las Lomas Elementary": 1850, "Sequoia Middle School": 3000}
    html = response.content.decode()
    assert "hh-001" in html and "$48.50" in html
    assert "Sofía" in html
    audit = AuditEvent.objects.get(action="list", object_type="registration.household")
    assert audit.detail == {"finance": "outstanding", "households": [family.household.pk]}
    rows = _csv(
        finance_client.get(
            reverse("staff_finance_outstanding"), {"table": "household", "format": "csv"}
        )
    )
    assert [(r["household"], r["balance"]) for r in rows] == [("hh-001", "48.50")]
    schools = _csv(
        finance_client.get(
            reverse("staff_finance_outstanding"), {"table": "school", "format": "csv"}
        )
    )
    assert sum(_cents(r["owed"]) for r in schools) == 4850


def test_the_refunds_page_lists_every_refund(march, finance_client):
    response = finance_client.get(reverse("staff_finance_refunds"))
    assert response.status_code == 200
    assert response.context["page"].paginator.count == 6
    rows = _csv(finance_client.get(reverse("staff_finance_refunds"), {"format": "csv"}))
    assert sum(_cents(r["amount"]) for r in rows) == march["side"].refunds_cents
    assert {r["state"] for r in rows} == {"succeeded"}


# -- the month ----------------------------------------------------------------------------------


def test_the_month_summary_csv_and_pdf_agree_with_the_ledger_to_the_cent(march, finance_client):
    ledger = _march_ledger()
    url = reverse("staff_finance_summary")

    page = finance_client.get(url, {"month": "2026-03"})
    summary_csv = _csv(finance_client.get(url, {"month": "2026-03", "format": "csv"}))
    pdf = finance_client.get(url, {"month": "2026-03", "format": "pdf"})

    assert page.status_code == 200
    figures = {(r["section"], r["key"]): r for r in summary_csv}
    assert _cents(figures[("collections", "payments")]["amount"]) == ledger["payments"]
    assert _cents(figures[("collections", "refunds")]["amount"]) == ledger["refunds"]
    assert _cents(figures[("collections", "net")]["amount"]) == ledger["net"]
    by_gl = [r for r in summary_csv if r["section"] == "collections_by_gl_code"]
    assert sum(_cents(r["amount"]) for r in by_gl) == ledger["net"]
    side = march["side"]
    assert _cents(figures[("payouts", "amount")]["amount"]) == sum(
        p["amount"] for p in side.payouts
    )
    assert _cents(figures[("payouts", "fees")]["amount"]) == side.fees_cents + 66
    assert figures[("mismatches", "open")]["count"] == "1"

    assert pdf["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(pdf.content))
    assert not serif_fonts(reader)  # the page footer too
    text = " ".join(page.extract_text() for page in reader.pages)
    text = re.sub(r"\s+", " ", text)
    assert "Finance summary, March 2026" in text
    for cents in (
        ledger["payments"],
        ledger["refunds"],
        ledger["net"],
        sum(p["amount"] for p in side.payouts),
        side.fees_cents + 66,
    ):
        assert _money(cents) in text, _money(cents)
    assert AuditEvent.objects.filter(action="export", detail__table="month_summary_pdf").exists()


def test_a_month_typed_wrong_is_said_next_to_the_field(finance_client, fees):
    response = finance_client.get(reverse("staff_finance_summary"), {"month": "March"})
    assert response.status_code == 200
    assert "Enter a month as year and month" in response.content.decode()


def test_the_staff_menu_links_finance_for_finance_only(client, finance_user, office_user):
    sign_in(client, finance_user)
    assert reverse("staff_finance") in client.get(reverse("staff_home")).content.decode()
    client.logout()
    sign_in(client, office_user)
    assert reverse("staff_finance") not in client.get(reverse("staff_home")).content.decode()
