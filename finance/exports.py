"""The finance pages' downloads: a CSV file of every table and the month's summary as
a PDF (WeasyPrint, tagged PDF/UA).

Every CSV has a fixed header, the same whatever the month or the filters (an empty
table is the header alone), so that the district's accounting system can import it
month after month; ``docs/architecture.md`` lists the columns. Amounts are US
dollars with two decimals and no thousands separator (``-12.50``); dates are ISO
(``2026-09-30``), times ISO in UTC. A text cell that a spreadsheet would take for a
formula starts with an apostrophe.
"""

from __future__ import annotations

import csv
import datetime
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from django.template.loader import render_to_string
from django.utils import translation

from documents.rendering import pdf_from_html
from finance.models import MISMATCH_KINDS, Payout, ReconciliationItem
from finance.selectors import Collected, Collections, GeneralLedgerLine, MonthSummary, Outstanding
from payments.models import Refund

PAYOUT_COLUMNS = (
    "payout_id",
    "created",
    "arrival_date",
    "stripe_status",
    "reconciliation_status",
    "amount",
    "charges",
    "charge_count",
    "refunds",
    "refund_count",
    "fees",
    "other",
    "net",
    "difference",
    "transactions",
    "matched",
    "mismatches",
    "open_mismatches",
)
ITEM_COLUMNS = (
    "balance_transaction",
    "payout_id",
    "type",
    "reporting_category",
    "result",
    "amount",
    "fee",
    "net",
    "ledger_amount",
    "difference",
    "payment_intent",
    "charge",
    "refund",
    "household",
    "checkout_reference",
    "occurred_at",
    "description",
)
MISMATCH_COLUMNS = (
    "item_id",
    "kind",
    "state",
    "payout_id",
    "balance_transaction",
    "type",
    "amount",
    "ledger_amount",
    "difference",
    "payment_intent",
    "charge",
    "refund",
    "household",
    "checkout_reference",
    "occurred_at",
    "resolved_at",
    "explained_at",
    "explained_by",
    "explanation",
)
COLLECTION_COLUMNS = {
    "school": ("school_id", "school_code", "school", "payments", "refunds", "net", "entries"),
    "fee": ("fee_id", "fee", "fee_kind", "gl_code", "payments", "refunds", "net", "entries"),
    "gl": ("gl_code", "payments", "refunds", "net", "entries"),
    "day": ("date", "payments", "refunds", "net", "entries"),
}
GENERAL_LEDGER_COLUMNS = (
    "period_start",
    "period_end",
    "date",
    "gl_code",
    "payments",
    "refunds",
    "net",
    "entries",
)
OUTSTANDING_SCHOOL_COLUMNS = (
    "school_id",
    "school_code",
    "school",
    "owed",
    "children",
    "households",
)
OUTSTANDING_HOUSEHOLD_COLUMNS = ("household", "balance", "children")
REFUND_COLUMNS = (
    "refund_id",
    "created",
    "settled",
    "state",
    "origin",
    "amount",
    "household",
    "checkout_reference",
    "payment_intent",
    "stripe_refund",
    "stripe_charge",
    "fee",
    "reason",
    "requested_by",
)
SUMMARY_COLUMNS = ("month", "section", "key", "label", "count", "amount")
# Characters a spreadsheet reads as the start of a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?\d+(\.\d+)?")


def dollars(cents: int | None) -> str:
    """1850 → 18.50, -5 → -0.05, None → blank."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    cents = abs(int(cents))
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def _when(value: datetime.datetime | datetime.date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat(timespec="seconds")
    return value.isoformat()


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not NUMBER.fullmatch(value):
        return f"'{value}"
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(
    filename: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> StreamingHttpResponse:
    """A CSV download, streamed row by row: the header, then ``rows``."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(columns)
        for row in rows:
            yield writer.writerow([_cell(value) for value in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


# -- the rows of each table -----------------------------------------------------------------


def payout_rows(payouts: Iterable[Payout]) -> Iterator[list[Any]]:
    for p in payouts:
        yield [
            p.stripe_payout_id,
            _when(p.stripe_created_at),
            _when(p.arrival_date),
            p.stripe_status,
            p.status,
            dollars(p.amount_cents),
            dollars(p.charges_cents),
            p.charge_count,
            dollars(p.refunds_cents),
            p.refund_count,
            dollars(p.fees_cents),
            dollars(p.other_cents),
            dollars(p.net_cents),
            dollars(p.difference_cents),
            p.transaction_count,
            p.matched_count,
            p.mismatch_count,
            p.open_count,
        ]


def _household(item: ReconciliationItem) -> str:
    return item.household.sourced_id if item.household_id and item.household else ""


def _checkout(item: ReconciliationItem) -> str:
    return str(item.checkout.reference) if item.checkout_id and item.checkout else ""


def item_rows(items: Iterable[ReconciliationItem], payout: Payout) -> Iterator[list[Any]]:
    for i in items:
        yield [
            i.stripe_balance_transaction,
            payout.stripe_payout_id,
            i.transaction_type,
            i.reporting_category,
            i.kind,
            dollars(i.amount_cents),
            dollars(i.fee_cents),
            dollars(i.net_cents),
            dollars(i.ledger_cents),
            dollars(i.difference_cents),
            i.stripe_payment_intent,
            i.stripe_charge,
            i.stripe_refund,
            _household(i),
            _checkout(i),
            _when(i.occurred_at),
            i.description,
        ]


def mismatch_state(item: ReconciliationItem) -> str:
    if item.kind not in MISMATCH_KINDS:
        return "resolved"
    return "explained" if item.explained_at else "open"


def mismatch_rows(items: Iterable[ReconciliationItem]) -> Iterator[list[Any]]:
    for i in items:
        yield [
            i.pk,
            i.mismatch_kind,
            mismatch_state(i),
            i.payout.stripe_payout_id if i.payout_id and i.payout else "",
            i.stripe_balance_transaction,
            i.transaction_type,
            dollars(i.amount_cents),
            dollars(i.ledger_cents),
            dollars(i.difference_cents),
            i.stripe_payment_intent,
            i.stripe_charge,
            i.stripe_refund,
            _household(i),
            _checkout(i),
            _when(i.occurred_at),
            _when(i.resolved_at),
            _when(i.explained_at),
            i.explained_by.email if i.explained_by_id and i.explained_by else "",
            i.explanation,
        ]


def _money_cells(c: Collected | GeneralLedgerLine) -> list[Any]:
    return [dollars(c.payments_cents), dollars(c.refunds_cents), dollars(c.net_cents), c.entries]


def collection_rows(table: str, rows: Iterable[Collected]) -> Iterator[list[Any]]:
    for c in rows:
        if table == "school":
            yield [c.key or "", c.extra.get("code", ""), c.label, *_money_cells(c)]
        elif table == "fee":
            yield [
                c.key or "",
                c.label,
                c.extra.get("kind", ""),
                c.extra.get("gl_code", ""),
                *_money_cells(c),
            ]
        elif table == "gl":
            yield [c.key, *_money_cells(c)]
        else:
            yield [c.label, *_money_cells(c)]


def general_ledger_rows(
    lines: Iterable[GeneralLedgerLine], since: datetime.date, until: datetime.date
) -> Iterator[list[Any]]:
    for line in lines:
        yield [
            since.isoformat(),
            until.isoformat(),
            line.day.isoformat(),
            line.gl_code,
            *_money_cells(line),
        ]


def outstanding_school_rows(rows: Iterable[Outstanding]) -> Iterator[list[Any]]:
    for o in rows:
        yield [
            o.school_id or "",
            o.code,
            o.name,
            dollars(o.owed_cents),
            o.children,
            o.household_count,
        ]


def outstanding_household_rows(
    rows: Iterable[dict[str, Any]], children: dict[int, list[str]]
) -> Iterator[list[Any]]:
    for row in rows:
        yield [
            row["household__sourced_id"],
            dollars(row["balance"]),
            "; ".join(children.get(row["household_id"], [])),
        ]


def refund_rows(refunds: Iterable[Refund]) -> Iterator[list[Any]]:
    for r in refunds:
        yield [
            r.pk,
            _when(r.created_at),
            _when(r.settled_at),
            r.state,
            r.origin,
            dollars(r.amount_cents),
            r.checkout.household.sourced_id,
            str(r.checkout.reference),
            r.checkout.stripe_payment_intent,
            r.stripe_refund_id or "",
            r.stripe_charge,
            r.line.fee.title if r.line_id and r.line else "",
            r.reason,
            r.requested_by.email if r.requested_by_id and r.requested_by else "",
        ]


def summary_rows(summary: MonthSummary) -> Iterator[list[Any]]:
    """The month's summary, one figure a row: the same figures as its PDF."""
    month = summary.month.strftime("%Y-%m")
    c: Collections = summary.collections
    yield [month, "collections", "payments", "", c.total.entries, dollars(c.total.payments_cents)]
    yield [month, "collections", "refunds", "", "", dollars(c.total.refunds_cents)]
    yield [month, "collections", "net", "", "", dollars(c.total.net_cents)]
    for line in c.by_gl_code:
        yield [
            month,
            "collections_by_gl_code",
            line.key,
            line.label,
            line.entries,
            dollars(line.net_cents),
        ]
    for line in c.by_school:
        yield [
            month,
            "collections_by_school",
            line.key or "",
            line.label,
            line.entries,
            dollars(line.net_cents),
        ]
    totals = summary.payouts_total
    yield [month, "payouts", "amount", "", totals["count"], dollars(totals["amount_cents"])]
    for name in ("charges", "refunds", "fees", "other"):
        yield [month, "payouts", name, "", "", dollars(totals[f"{name}_cents"])]
    yield [
        month,
        "mismatches",
        "open",
        "",
        summary.open_mismatches,
        dollars(summary.open_difference_cents),
    ]
    yield [month, "mismatches", "explained", "", summary.explained_mismatches, ""]
    yield [month, "outstanding", "total", "", "", dollars(summary.outstanding_cents)]


# -- the month's PDF --------------------------------------------------------------------------


def month_report_pdf(summary: MonthSummary, *, prepared_by: str) -> bytes:
    """The month's summary as a tagged PDF (PDF/UA-1), in the language of the page
    that asked for it."""
    html = render_to_string(
        "finance/month_report.html",
        {
            "summary": summary,
            "district": settings.DISTRICT_NAME,
            "prepared_by": prepared_by,
            "language": translation.get_language() or settings.LANGUAGE_CODE,
        },
    )
    return pdf_from_html(html)
