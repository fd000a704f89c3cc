"""Finance's pages under ``/staff/finance/``: payouts and their reconciliation, the
mismatches and finance's explanations, collections by school, fee, GL code and day,
outstanding balances, refunds, and the month's summary.

Finance and registrars only. Every table downloads as CSV (``?format=csv``, the same
filters), the month's summary also as a PDF (``?format=pdf``). Pages that show a
household's money write an audit row naming the households shown; every download
writes an ``export`` row. Children appear by name only.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from finance import exports, selectors
from finance.forms import (
    CollectionsForm,
    ExplainForm,
    MismatchFilterForm,
    MonthForm,
    PayoutFilterForm,
    RefundFilterForm,
)
from finance.models import MISMATCH_KINDS, Payout, ReconciliationItem, ReconciliationRun
from finance.services import ExplanationRefused, item_explain
from registration.access import REGISTRAR, log_refusal, staff_required
from registration.models import StaffProfile
from workflow.models import AuditEvent
from workflow.services import audit_record

FINANCE = StaffProfile.Role.FINANCE
PAGE_SIZE = 50
ITEMS_PAGE_SIZE = 100


def _querystring(request: HttpRequest, *drop: str) -> str:
    """The page's filters, without the page number (and ``drop``), for links."""
    skipped = {"page", "format", *drop}
    return urlencode([(k, str(v)) for k, v in request.GET.items() if k not in skipped])


def _name_of(user: Any) -> str:
    return str(user.get_full_name() or user.email)


def _wants(request: HttpRequest, kind: str) -> bool:
    return request.GET.get("format") == kind


def _exported(request: HttpRequest, table: str, **detail: Any) -> None:
    audit_record(
        action=AuditEvent.Action.EXPORT,
        object_type="finance.report",
        request=request,
        detail={"table": table, **detail},
    )


def _households_shown(request: HttpRequest, what: str, household_ids: Any) -> None:
    """A page showed the money of these households: one audit row naming them."""
    shown = sorted({pk for pk in household_ids if pk})
    if shown:
        audit_record(
            action=AuditEvent.Action.LIST,
            object_type="registration.household",
            request=request,
            detail={"finance": what, "households": shown[:ITEMS_PAGE_SIZE]},
        )


# -- payouts ---------------------------------------------------------------------------------


@require_safe
@staff_required(FINANCE, REGISTRAR)
def payout_list(request: HttpRequest) -> HttpResponse:
    """Every payout with its reconciliation status, newest first."""
    form = PayoutFilterForm(request.GET or None)
    filters: dict[str, Any] = {}
    if form.is_bound and form.is_valid():
        filters = {k: form.cleaned_data[k] for k in ("status", "since", "until")}
    payouts = (
        selectors.payouts_filtered(**filters)
        if not form.is_bound or form.is_valid()
        else Payout.objects.none()
    )
    if _wants(request, "csv"):
        _exported(request, "payouts", count=payouts.count())
        return exports.csv_response(
            "payouts.csv", exports.PAYOUT_COLUMNS, exports.payout_rows(payouts.iterator())
        )
    page = Paginator(payouts, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "finance/payouts.html",
        {
            "form": form,
            "page": page,
            "querystring": _querystring(request),
            "last_run": ReconciliationRun.objects.select_related("actor").first(),
            "open": selectors.mismatch_counts(),
        },
    )


def _payout_or_404(request: HttpRequest, pk: int) -> Payout:
    payout = Payout.objects.filter(pk=pk).first()
    if payout is None:
        log_refusal(request, "payout not found")
        raise Http404
    return payout


@require_safe
@staff_required(FINANCE, REGISTRAR)
def payout_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One payout: its totals, every balance transaction with what it paid for (the
    fees and children of the ledger's entries), the households, and its history."""
    payout = _payout_or_404(request, pk)
    kind = request.GET.get("kind", "")
    if kind not in ReconciliationItem.Kind.values:
        kind = ""
    items = selectors.payout_items(payout, kind=kind)
    if _wants(request, "csv"):
        _exported(request, "payout_items", payout=payout.pk, kind=kind)
        return exports.csv_response(
            f"payout-{payout.stripe_payout_id}.csv",
            exports.ITEM_COLUMNS,
            exports.item_rows(items.iterator(chunk_size=2000), payout),
        )
    page = Paginator(items, ITEMS_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    lines = selectors.lines_of_items(rows)
    audit_record(
        action=AuditEvent.Action.VIEW,
        obj=payout,
        request=request,
        detail={"households": sorted({i.household_id for i in rows if i.household_id})},
    )
    return render(
        request,
        "finance/payout_detail.html",
        {
            "payout": payout,
            "page": page,
            "rows": [(item, lines.get(item.pk, [])) for item in rows],
            "kind": kind,
            "kinds": ReconciliationItem.Kind.choices,
            "querystring": _querystring(request),
            "history": selectors.payout_history(payout),
        },
    )


# -- mismatches ------------------------------------------------------------------------------


@require_safe
@staff_required(FINANCE, REGISTRAR)
def mismatch_list(request: HttpRequest) -> HttpResponse:
    """Every mismatch: to explain (the default), explained, resolved since."""
    form = MismatchFilterForm(request.GET or {"state": "open"})
    state, kind = "open", ""
    if form.is_valid():
        state = form.cleaned_data["state"] or "open"
        kind = form.cleaned_data["kind"]
    items = selectors.mismatches_filtered(state=state, kind=kind)
    if _wants(request, "csv"):
        _exported(request, "mismatches", state=state, kind=kind)
        return exports.csv_response(
            f"mismatches-{state}.csv",
            exports.MISMATCH_COLUMNS,
            exports.mismatch_rows(items.iterator(chunk_size=2000)),
        )
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    _households_shown(request, "mismatches", (i.household_id for i in page.object_list))
    return render(
        request,
        "finance/mismatches.html",
        {
            "form": form,
            "page": page,
            "state": state,
            "querystring": _querystring(request),
            "open": selectors.mismatch_counts(),
        },
    )


def _mismatch_or_404(request: HttpRequest, pk: int) -> ReconciliationItem:
    item = (
        ReconciliationItem.objects.exclude(mismatch_kind="")
        .select_related("payout", "household", "checkout", "refund", "explained_by")
        .filter(pk=pk)
        .first()
    )
    if item is None:
        log_refusal(request, "mismatch not found")
        raise Http404
    return item


def _mismatch_page(
    request: HttpRequest, item: ReconciliationItem, form: ExplainForm, status: int = 200
) -> HttpResponse:
    audit_record(
        action=AuditEvent.Action.VIEW,
        obj=item,
        request=request,
        detail={"household": item.household_id},
    )
    return render(
        request,
        "finance/mismatch_detail.html",
        {
            "item": item,
            "form": form,
            "lines": selectors.lines_of_items([item]).get(item.pk, []),
            "history": selectors.item_history(item),
            "state": exports.mismatch_state(item),
            "is_mismatch": item.kind in MISMATCH_KINDS,
        },
        status=status,
    )


@require_safe
@staff_required(FINANCE, REGISTRAR)
def mismatch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = _mismatch_or_404(request, pk)
    return _mismatch_page(request, item, ExplainForm(initial={"note": item.explanation}))


@require_POST
@staff_required(FINANCE, REGISTRAR)
def mismatch_explain(request: HttpRequest, pk: int) -> HttpResponse:
    """Finance's explanation of a mismatch; logged with the one it replaces."""
    item = _mismatch_or_404(request, pk)
    form = ExplainForm(request.POST)
    if not form.is_valid():
        return _mismatch_page(request, item, form)
    try:
        item_explain(item=item, note=form.cleaned_data["note"], actor=request.user, request=request)
    except ExplanationRefused as refused:
        form.add_error("note", refused.message)
        return _mismatch_page(request, item, form)
    messages.success(request, _("The explanation is saved and logged."))
    return redirect("staff_finance_mismatch", pk=item.pk)


# -- reports from the ledger -----------------------------------------------------------------


@require_safe
@staff_required(FINANCE, REGISTRAR)
def collections(request: HttpRequest) -> HttpResponse:
    """Payments net of refunds by school, fee, GL code and day; the GL export."""
    form = CollectionsForm(request.GET or {})
    if not form.is_valid():
        return render(request, "finance/collections.html", {"form": form}, status=200)
    since, until = form.cleaned_data["since"], form.cleaned_data["until"]
    table = request.GET.get("table", "")
    if _wants(request, "csv") and table == "gl_export":
        _exported(request, "gl_export", since=since.isoformat(), until=until.isoformat())
        return exports.csv_response(
            f"gl-export-{since.isoformat()}-{until.isoformat()}.csv",
            exports.GENERAL_LEDGER_COLUMNS,
            exports.general_ledger_rows(
                selectors.general_ledger_lines(since=since, until=until), since, until
            ),
        )
    found = selectors.collections(since=since, until=until)
    if _wants(request, "csv") and table in exports.COLLECTION_COLUMNS:
        _exported(request, f"collections_{table}", since=since.isoformat(), until=until.isoformat())
        return exports.csv_response(
            f"collections-by-{table}-{since.isoformat()}-{until.isoformat()}.csv",
            exports.COLLECTION_COLUMNS[table],
            exports.collection_rows(table, found.table(table)),
        )
    return render(
        request,
        "finance/collections.html",
        {
            "form": form,
            "collections": found,
            "querystring": urlencode({"since": since.isoformat(), "until": until.isoformat()}),
        },
    )


@require_safe
@staff_required(FINANCE, REGISTRAR)
def outstanding(request: HttpRequest) -> HttpResponse:
    """What families owe: by school, and every household with a positive balance."""
    table = request.GET.get("table", "")
    if _wants(request, "csv") and table == "school":
        _exported(request, "outstanding_school")
        return exports.csv_response(
            "outstanding-by-school.csv",
            exports.OUTSTANDING_SCHOOL_COLUMNS,
            exports.outstanding_school_rows(selectors.outstanding_by_school()),
        )
    households = selectors.outstanding_households()
    if _wants(request, "csv") and table == "household":
        rows = list(households)
        _exported(request, "outstanding_household", count=len(rows))
        return exports.csv_response(
            "outstanding-by-household.csv",
            exports.OUTSTANDING_HOUSEHOLD_COLUMNS,
            exports.outstanding_household_rows(
                rows, selectors.children_of_households([r["household_id"] for r in rows])
            ),
        )
    schools = selectors.outstanding_by_school()
    page = Paginator(households, PAGE_SIZE).get_page(request.GET.get("page"))
    shown = [row["household_id"] for row in page.object_list]
    _households_shown(request, "outstanding", shown)
    children = selectors.children_of_households(shown)
    return render(
        request,
        "finance/outstanding.html",
        {
            "schools": schools,
            "total_cents": sum(s.owed_cents for s in schools),
            "page": page,
            "rows": [(row, children.get(row["household_id"], [])) for row in page.object_list],
            "querystring": "",
        },
    )


@require_safe
@staff_required(FINANCE, REGISTRAR)
def refund_list(request: HttpRequest) -> HttpResponse:
    form = RefundFilterForm(request.GET or None)
    filters: dict[str, Any] = {}
    if form.is_bound and form.is_valid():
        filters = {k: form.cleaned_data[k] for k in ("state", "since", "until")}
    refunds = (
        selectors.refunds_filtered(**filters)
        if not form.is_bound or form.is_valid()
        else selectors.refunds_filtered().none()
    )
    if _wants(request, "csv"):
        _exported(request, "refunds", count=refunds.count())
        return exports.csv_response(
            "refunds.csv", exports.REFUND_COLUMNS, exports.refund_rows(refunds.iterator())
        )
    page = Paginator(refunds, PAGE_SIZE).get_page(request.GET.get("page"))
    _households_shown(request, "refunds", (r.checkout.household_id for r in page.object_list))
    return render(
        request,
        "finance/refunds.html",
        {"form": form, "page": page, "querystring": _querystring(request)},
    )


@require_safe
@staff_required(FINANCE, REGISTRAR)
def month_summary(request: HttpRequest) -> HttpResponse:
    """A month in figures; its CSV and its PDF hold the same figures."""
    form = MonthForm(request.GET or {})
    if not form.is_valid():
        return render(request, "finance/summary.html", {"form": form})
    month: datetime.date = form.cleaned_data["month"]
    summary = selectors.month_summary(month)
    name = month.strftime("%Y-%m")
    if _wants(request, "csv"):
        _exported(request, "month_summary", month=name)
        return exports.csv_response(
            f"finance-summary-{name}.csv", exports.SUMMARY_COLUMNS, exports.summary_rows(summary)
        )
    if _wants(request, "pdf"):
        _exported(request, "month_summary_pdf", month=name)
        pdf = exports.month_report_pdf(summary, prepared_by=_name_of(request.user))
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="finance-summary-{name}.pdf"'
        response["Cache-Control"] = "no-store"
        return response
    return render(
        request,
        "finance/summary.html",
        {"form": form, "summary": summary, "querystring": urlencode({"month": name})},
    )
