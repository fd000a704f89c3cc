"""Staff pages about fees, under ``/staff/``.

- ``field-trips/``: teachers create and cancel the trips of the classes they teach;
  registrars and finance read every trip.
- ``fees/``: finance's catalog (lunch prepayment, optional items, required fees per
  campaign) and the import of meal eligibility from the nutrition office.
- ``payments/``: finance's payments, one checkout with its refunds, refunding a line,
  and one household's payments and ledger.

Finance and registrars use the catalog and the payments; every read of a
household's payments writes an audit row. Children appear by name only: no health
data and no guardian contact on any of these pages.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST, require_safe

from payments import selectors
from payments.eligibility import (
    MAX_FILE_BYTES,
    EligibilityFileMalformed,
    eligibility_file_read,
    meal_eligibility_import,
)
from payments.models import Checkout, CheckoutLine, Fee, Refund
from payments.money import money
from payments.services import (
    TRANSLATED_TEXTS,
    FeeRefused,
    RefundAlreadyRequested,
    RefundRefused,
    fee_create,
    fee_deactivate,
    fee_update,
    field_trip_cancel,
    field_trip_create,
    refund_request,
    refund_submit,
)
from payments.staff_forms import (
    EligibilityUploadForm,
    FeeFilterForm,
    FeeForm,
    FieldTripCancelForm,
    FieldTripForm,
    PaymentFilterForm,
    RefundForm,
)
from payments.stripe_gateway import PaymentServiceError, PaymentServiceRefused
from registration.access import REGISTRAR, log_refusal, refuse, staff_required
from registration.models import StaffProfile, Student
from registration.selectors import households_visible_to, staff_profile_for
from workflow.models import AuditEvent
from workflow.selectors import classes_of_teacher
from workflow.services import audit_record, audit_records_bulk

FINANCE = StaffProfile.Role.FINANCE
TEACHER = StaffProfile.Role.TEACHER
PAGE_SIZE = 50
# A file with more bad rows than this shows the first ones and a count of the rest.
ERRORS_SHOWN = 100
CATALOG_KINDS = (Fee.Kind.LUNCH_PREPAY, Fee.Kind.OPTIONAL, Fee.Kind.REQUIRED)


def _querystring(request: HttpRequest) -> str:
    """The page's filters, without the page number, for the pagination links."""
    return urlencode([(k, str(v)) for k, v in request.GET.items() if k != "page"])


def _is_teacher(user: Any) -> bool:
    profile = staff_profile_for(user)
    return profile is not None and profile.role == TEACHER


def _is_finance(user: Any) -> bool:
    """Finance (and superusers) change the catalog and give money back; registrars
    only read these pages."""
    if user.is_superuser:
        return True
    profile = staff_profile_for(user)
    return profile is not None and profile.enabled and profile.role == FINANCE


def finance_changes(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A POST (a refund, a change to the catalog, an import) by anyone but finance
    is refused (403, logged); other methods pass (registrars read the page)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST" and not _is_finance(request.user):
            raise refuse(request, "only finance changes fees and refunds")
        return view(request, *args, **kwargs)

    return wrapped


# -- field trips ------------------------------------------------------------------------


def _trip_or_404(request: HttpRequest, pk: int) -> Fee:
    """The trip if the user may see it (a teacher: a trip of their classes); 404
    otherwise, so that a guessed id tells nothing."""
    trip = selectors.field_trips_visible_to(request.user).filter(pk=pk).first()
    if trip is None:
        log_refusal(request, "field trip not found among those the user may see")
        raise Http404
    return trip


@require_safe
@staff_required(TEACHER, REGISTRAR, FINANCE)
def field_trip_list(request: HttpRequest) -> HttpResponse:
    trips = selectors.field_trips_visible_to(request.user)
    page = Paginator(trips, PAGE_SIZE).get_page(request.GET.get("page"))
    teacher = _is_teacher(request.user)
    return render(
        request,
        "payments/staff/trips.html",
        {
            "page": page,
            "querystring": "",
            "teacher": teacher,
            "classes": classes_of_teacher(request.user) if teacher else [],
        },
    )


def _trip_created_message(created: Any) -> str:
    """What the teacher is told: how many were charged, never how many had the trip
    waived (meal eligibility is confidential)."""
    fee = created.fee
    parts = [
        ngettext(
            "The trip “%(title)s” was created and %(count)s student was charged %(amount)s.",
            "The trip “%(title)s” was created and %(count)s students were charged %(amount)s each.",
            created.assessed,
        )
        % {
            "title": fee.title,
            "count": created.assessed,
            "amount": money(fee.amount_cents or 0),
        }
    ]
    if created.without_household:
        parts.append(
            ngettext(
                "%(count)s student has no household on file and was not charged; "
                "the school office can help.",
                "%(count)s students have no household on file and were not charged; "
                "the school office can help.",
                created.without_household,
            )
            % {"count": created.without_household}
        )
    return " ".join(parts)


@staff_required(TEACHER)
def field_trip_new(request: HttpRequest) -> HttpResponse:
    """A trip for one of the teacher's classes; every student of the class is charged."""
    classes = classes_of_teacher(request.user)
    form = FieldTripForm(request.POST if request.method == "POST" else None, classes=classes)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                created = field_trip_create(
                    section=data["section"],
                    title=data["title"],
                    description=data["description"],
                    event_date=data["event_date"],
                    amount_cents=data["amount"],
                    deadline=data["deadline"],
                    waivable_for_free_meals=data["waivable_for_free_meals"],
                    actor=request.user,
                    **{name: data[name] for name in TRANSLATED_TEXTS},
                )
            except FeeRefused as refused:
                form.add_error(None, refused.message)
            else:
                messages.success(request, _trip_created_message(created))
                return redirect("staff_field_trip", pk=created.fee.pk)
        elif form.posted_another_class:
            log_refusal(request, "field trip for a class the teacher does not teach")
    return render(request, "payments/staff/trip_form.html", {"form": form, "classes": classes})


def _trip_page(request: HttpRequest, trip: Fee, cancel_form: FieldTripCancelForm) -> HttpResponse:
    """The trip and its students. A teacher sees what each student still owes and
    "Nothing owed" otherwise: never who had it waived, nor the paid figures that
    would tell (meal eligibility is confidential); finance and registrars see both."""
    rows = selectors.trip_students(trip)
    audit_record(
        action=AuditEvent.Action.VIEW,
        obj=trip,
        request=request,
        detail={"students": [row.student.pk for row in rows]},
    )
    # The page names each child: a read of each child's record.
    audit_records_bulk(
        action=AuditEvent.Action.VIEW,
        objs=[row.student for row in rows],
        request=request,
        detail={"via": "payments.field_trip", "fee": trip.pk},
    )
    teacher = _is_teacher(request.user)
    may_cancel = trip.active and (request.user.is_superuser or teacher)
    return render(
        request,
        "payments/staff/trip_detail.html",
        {
            "trip": trip,
            "rows": rows,
            "teacher": teacher,
            "totals": {
                "owed": sum(row.owed_cents for row in rows),
                "paid": sum(row.paid_cents for row in rows),
                "waived": sum(row.waived_cents for row in rows),
                "owing": sum(1 for row in rows if row.owed_cents > 0),
                "nothing_owed": sum(1 for row in rows if row.owed_cents <= 0),
            },
            "children_paid": sum(1 for row in rows if row.paid_cents > 0),
            "may_cancel": may_cancel,
            "cancel_form": cancel_form,
        },
    )


@require_safe
@staff_required(TEACHER, REGISTRAR, FINANCE)
def field_trip_detail(request: HttpRequest, pk: int) -> HttpResponse:
    trip = _trip_or_404(request, pk)
    return _trip_page(request, trip, FieldTripCancelForm())


@staff_required(TEACHER)
@require_POST
def field_trip_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    trip = _trip_or_404(request, pk)
    form = FieldTripCancelForm(request.POST)
    if not form.is_valid():
        return _trip_page(request, trip, form)
    try:
        cancelled = field_trip_cancel(
            fee=trip, actor=request.user, reason=form.cleaned_data["reason"]
        )
    except FeeRefused as refused:
        messages.error(request, refused.message)
    else:
        messages.success(
            request,
            ngettext(
                "The trip “%(title)s” is cancelled; %(count)s open charge was cancelled "
                "in the ledger.",
                "The trip “%(title)s” is cancelled; %(count)s open charges were cancelled "
                "in the ledger.",
                cancelled,
            )
            % {"title": trip.title, "count": cancelled},
        )
    return redirect("staff_field_trip", pk=trip.pk)


# -- the catalog -------------------------------------------------------------------------


@require_safe
@staff_required(FINANCE, REGISTRAR)
def fee_list(request: HttpRequest) -> HttpResponse:
    form = FeeFilterForm(request.GET or None)
    fees = selectors.fees_filtered(**form.filters())
    page = Paginator(fees, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "payments/staff/fees.html",
        {
            "form": form,
            "page": page,
            "querystring": _querystring(request),
            "kinds": [(kind, Fee.Kind(kind).label) for kind in CATALOG_KINDS],
            "may_change": _is_finance(request.user),
        },
    )


def _read_only(form: Any, request: HttpRequest) -> bool:
    """Whether the user may change what the form shows; if not, its fields are
    shown disabled (a registrar reads the catalog, finance changes it)."""
    may_change = _is_finance(request.user)
    if not may_change:
        for field in form.fields.values():
            field.disabled = True
    return may_change


def _waived_message(waivers: int) -> str:
    return ngettext(
        "It was waived for %(count)s student eligible for free or reduced-price meals.",
        "It was waived for %(count)s students eligible for free or reduced-price meals.",
        waivers,
    ) % {"count": waivers}


@staff_required(FINANCE, REGISTRAR)
@finance_changes
def fee_new(request: HttpRequest, kind: str) -> HttpResponse:
    if kind not in CATALOG_KINDS:
        raise Http404
    form = FeeForm(request.POST if request.method == "POST" else None, kind=kind)
    may_change = _read_only(form, request)
    if request.method == "POST" and form.is_valid():
        try:
            fee, waived = fee_create(kind=kind, actor=request.user, **form.values())
        except FeeRefused as refused:
            form.add_error(None, refused.message)
        else:
            message = _("“%(title)s” was added to the catalog.") % {"title": fee.title}
            if waived.waivers:
                message = f"{message} {_waived_message(waived.waivers)}"
            messages.success(request, message)
            return redirect("staff_fees")
    return render(
        request,
        "payments/staff/fee_form.html",
        {
            "form": form,
            "fee": None,
            "kind": kind,
            "kind_label": Fee.Kind(kind).label,
            "may_change": may_change,
        },
    )


def _fee_with_totals(pk: int) -> Fee:
    return get_object_or_404(selectors.fees_with_totals(Fee.objects.filter(pk=pk)))


@staff_required(FINANCE, REGISTRAR)
@finance_changes
def fee_edit(request: HttpRequest, pk: int) -> HttpResponse:
    fee = _fee_with_totals(pk)
    form = FeeForm(request.POST if request.method == "POST" else None, kind=fee.kind, fee=fee)
    may_change = _read_only(form, request)
    if request.method == "POST" and form.is_valid():
        try:
            _updated, waived = fee_update(fee=fee, changes=form.values(), actor=request.user)
        except FeeRefused as refused:
            field = "amount" if "amount" in form.changed_data else None
            form.add_error(field, refused.message)
        else:
            message = _("“%(title)s” was saved.") % {"title": form.cleaned_data.get("title", fee)}
            if waived.waivers:
                message = f"{message} {_waived_message(waived.waivers)}"
            messages.success(request, message)
            return redirect("staff_fees")
    return render(
        request,
        "payments/staff/fee_form.html",
        {
            "form": form,
            "fee": fee,
            "kind": fee.kind,
            "kind_label": fee.get_kind_display(),
            "paid_for": selectors.fee_is_paid_for(fee),
            "may_change": may_change,
        },
    )


@staff_required(FINANCE, REGISTRAR)
@finance_changes
@require_POST
def fee_deactivate_view(request: HttpRequest, pk: int) -> HttpResponse:
    fee = get_object_or_404(Fee, pk=pk)
    try:
        cancelled = fee_deactivate(fee=fee, actor=request.user)
    except FeeRefused as refused:
        messages.error(request, refused.message)
        return redirect("staff_fee_edit", pk=fee.pk)
    message = _("“%(title)s” is inactive: families can no longer pay it.") % {"title": fee.title}
    if cancelled:
        message += " " + ngettext(
            "%(count)s open charge was cancelled in the ledger.",
            "%(count)s open charges were cancelled in the ledger.",
            cancelled,
        ) % {"count": cancelled}
    messages.success(request, message)
    return redirect("staff_fees")


# -- meal eligibility ----------------------------------------------------------------------


@staff_required(FINANCE, REGISTRAR)
@finance_changes
def meal_eligibility(request: HttpRequest) -> HttpResponse:
    """Upload the nutrition office's list: every row is checked first, and a file
    with any bad row changes nothing."""
    posted = request.method == "POST"
    form = EligibilityUploadForm(
        request.POST if posted else None, request.FILES if posted else None
    )
    may_change = _read_only(form, request)
    errors: list[tuple[int, str]] = []
    if posted and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if upload.size > MAX_FILE_BYTES:
                raise EligibilityFileMalformed(
                    _("This file is larger than %(megabytes)s MB.")
                    % {"megabytes": MAX_FILE_BYTES // (1024 * 1024)}
                )
            checked = eligibility_file_read(upload.read())
        except EligibilityFileMalformed as malformed:
            log_refusal(request, f"malformed meal eligibility file: {malformed.message[:200]}")
            form.add_error("file", malformed.message)
        else:
            if not checked.ok:
                errors = checked.errors
                form.add_error(
                    "file",
                    ngettext(
                        "%(count)s line has a problem, so nothing was changed. Correct "
                        "the file and import it again.",
                        "%(count)s lines have problems, so nothing was changed. Correct "
                        "the file and import it again.",
                        len(errors),
                    )
                    % {"count": len(errors)},
                )
            else:
                result = meal_eligibility_import(
                    rows=checked.rows, actor=request.user, request=request, source=upload.name
                )
                messages.success(
                    request,
                    _(
                        "%(rows)s students read; eligibility changed for %(changed)s. "
                        "%(waivers)s fees were waived (%(amount)s)."
                    )
                    % {
                        "rows": result.rows,
                        "changed": result.changed,
                        "waivers": result.waived.waivers,
                        "amount": money(result.waived.waived_cents),
                    },
                )
                return redirect("staff_meal_eligibility")
    counts = dict(
        Student.objects.filter(enabled=True)
        .exclude(meal_eligibility="")
        .values_list("meal_eligibility")
        .annotate(n=Count("id"))
        .order_by()
    )
    return render(
        request,
        "payments/staff/meal_eligibility.html",
        {
            "form": form,
            "errors": errors[:ERRORS_SHOWN],
            "errors_hidden": max(len(errors) - ERRORS_SHOWN, 0),
            "free": counts.get("free", 0),
            "reduced": counts.get("reduced", 0),
            "may_change": may_change,
        },
    )


# -- payments and refunds -----------------------------------------------------------------


@require_safe
@staff_required(FINANCE, REGISTRAR)
def payment_list(request: HttpRequest) -> HttpResponse:
    """Checkouts, paid ones by default, newest payment first."""
    form = PaymentFilterForm(request.GET if request.GET else {"state": Checkout.State.PAID})
    if form.is_valid():
        data = form.cleaned_data
        checkouts = selectors.checkouts_search(
            query=data["q"], state=data["state"], since=data["since"], until=data["until"]
        )
    else:
        checkouts = Checkout.objects.none()
    page = Paginator(checkouts, PAGE_SIZE).get_page(request.GET.get("page"))
    audit_record(
        action=AuditEvent.Action.LIST,
        object_type="payments.checkout",
        request=request,
        detail={
            "query": request.GET.get("q", "")[:200],
            "state": request.GET.get("state", Checkout.State.PAID)[:20],
            "since": request.GET.get("since", "")[:20],
            "until": request.GET.get("until", "")[:20],
            "results": page.paginator.count,
        },
    )
    querystring = _querystring(request) if request.GET else urlencode({"state": "paid"})
    return render(
        request,
        "payments/staff/payments.html",
        {"form": form, "page": page, "querystring": querystring},
    )


def _checkout_or_404(request: HttpRequest, pk: int) -> Checkout:
    checkout = selectors.checkout_for_staff(pk)
    if checkout is None:
        log_refusal(request, "checkout not found")
        raise Http404
    return checkout


def _line_form(line: CheckoutLine, room_cents: int, data: Any = None) -> RefundForm:
    return RefundForm(
        data, room_cents=room_cents, is_lunch=line.fee.is_lunch, prefix=f"line-{line.pk}"
    )


def _children_read(request: HttpRequest, students: Any, detail: dict[str, Any]) -> None:
    """A page that names children is a read of each child's record: one audit row
    per child, lowest id first."""
    unique = {student.pk: student for student in students if student is not None}
    audit_records_bulk(
        action=AuditEvent.Action.VIEW,
        objs=[unique[pk] for pk in sorted(unique)],
        request=request,
        detail=detail,
    )


def _payment_page(
    request: HttpRequest,
    checkout: Checkout,
    *,
    bound: tuple[int, RefundForm] | None = None,
) -> HttpResponse:
    rooms = selectors.refunds_by_line(checkout)
    refundable = checkout.state == Checkout.State.PAID and bool(checkout.stripe_payment_intent)
    lines = []
    for line in checkout.lines.all():
        room = rooms[line.pk]
        if bound is not None and bound[0] == line.pk:
            form = bound[1]
        else:
            form = _line_form(line, room.room_cents)
        lines.append({"line": line, "refunds": room, "form": form})
    audit_record(
        action=AuditEvent.Action.VIEW,
        obj=checkout.household,
        request=request,
        detail={"payments": True, "checkout": checkout.pk},
    )
    ledger = selectors.ledger_of_checkout(checkout)
    _children_read(
        request,
        [line.student for line in checkout.lines.all()] + [entry.student for entry in ledger],
        {"via": "payments.checkout", "checkout": checkout.pk},
    )
    return render(
        request,
        "payments/staff/payment_detail.html",
        {
            "checkout": checkout,
            "lines": lines,
            "refunds": list(checkout.refunds.all()),
            "refundable": refundable,
            "may_refund": _is_finance(request.user),
            "ledger": ledger,
        },
    )


@require_safe
@staff_required(FINANCE, REGISTRAR)
def payment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _payment_page(request, _checkout_or_404(request, pk))


@staff_required(FINANCE, REGISTRAR)
@finance_changes
@require_POST
def payment_refund(request: HttpRequest, pk: int, line_pk: int) -> HttpResponse:
    """Refund some or all of one line. The ledger entry is written by the webhook
    when Stripe confirms the refund, not here."""
    checkout = _checkout_or_404(request, pk)
    line = next((line for line in checkout.lines.all() if line.pk == line_pk), None)
    if line is None:
        log_refusal(request, "refund of a line of another checkout")
        raise Http404
    room = selectors.refunds_by_line(checkout)[line.pk].room_cents
    form = _line_form(line, room, request.POST)
    # The same form posted again (a double click): before the amount is checked,
    # which the first post may have used up.
    repeated = selectors.refund_with_token(form.posted_token())
    if repeated is not None:
        return _refund_repeated(request, repeated)
    if not form.is_valid():
        return _payment_page(request, checkout, bound=(line.pk, form))
    amount = form.cleaned_data["amount"]
    try:
        refund = refund_request(
            line=line,
            amount_cents=amount,
            reason=form.cleaned_data["reason"],
            actor=request.user,
            form_token=form.cleaned_data["token"],
            fee_released=form.cleaned_data.get("fee_released", True),
        )
    except RefundAlreadyRequested as already:
        return _refund_repeated(request, already.refund)
    except RefundRefused as refused:
        form.add_error("amount", refused.message)
        return _payment_page(request, _checkout_or_404(request, pk), bound=(line.pk, form))
    except PaymentServiceRefused:
        form.add_error(
            None,
            _(
                "Stripe refused this refund, so nothing was refunded. Look at the payment "
                "in Stripe's dashboard; the details are in the payments log."
            ),
        )
        return _payment_page(request, _checkout_or_404(request, pk), bound=(line.pk, form))
    except PaymentServiceError:
        form.add_error(
            None,
            _(
                "Stripe did not answer. The refund of %(amount)s is saved as pending: "
                "send it again from the list of refunds below rather than asking for "
                "it a second time."
            )
            % {"amount": money(amount)},
        )
        return _payment_page(request, _checkout_or_404(request, pk), bound=(line.pk, form))
    audit_record(
        action=AuditEvent.Action.CREATE,
        obj=refund,
        request=request,
        detail={
            "checkout": checkout.pk,
            "line": line.pk,
            "amount_cents": amount,
            "fee_released": refund.fee_released,
        },
    )
    messages.success(
        request,
        _(
            "The refund of %(amount)s was sent to Stripe. The ledger entry is written "
            "when Stripe confirms it."
        )
        % {"amount": money(amount)},
    )
    return redirect("staff_payment", pk=checkout.pk)


def _refund_repeated(request: HttpRequest, refund: Refund) -> HttpResponse:
    """A refund form posted twice: nothing new is asked; the refund it made is shown."""
    messages.info(
        request,
        _(
            "This refund of %(amount)s was already asked for (%(state)s); it was not "
            "asked for a second time."
        )
        % {"amount": money(refund.amount_cents), "state": refund.get_state_display()},
    )
    return redirect("staff_payment", pk=refund.checkout_id)


@staff_required(FINANCE, REGISTRAR)
@finance_changes
@require_POST
def payment_refund_send(request: HttpRequest, pk: int) -> HttpResponse:
    """Send again a refund Stripe did not answer (the same idempotency key: at most
    one refund at Stripe)."""
    refund = get_object_or_404(Refund.objects.select_related("checkout"), pk=pk)
    if refund.state != Refund.State.PENDING or refund.stripe_refund_id:
        messages.info(request, _("Stripe already has this refund; nothing was sent."))
        return redirect("staff_payment", pk=refund.checkout_id)
    try:
        refund_submit(refund=refund)
    except PaymentServiceError:
        messages.error(request, _("Stripe did not answer again. Please try later."))
    else:
        audit_record(
            action=AuditEvent.Action.CHANGE,
            obj=refund,
            request=request,
            detail={"sent_again": True},
        )
        messages.success(
            request,
            _("Stripe has the refund now. The ledger entry is written when Stripe confirms it."),
        )
    return redirect("staff_payment", pk=refund.checkout_id)


@require_safe
@staff_required(FINANCE, REGISTRAR)
def household_payments(request: HttpRequest, pk: int) -> HttpResponse:
    """Every checkout of one household and its whole ledger, with the balance."""
    household = households_visible_to(request.user).filter(pk=pk).first()  # type: ignore[arg-type]
    if household is None:
        log_refusal(request, "household not found among those the user may see")
        raise Http404
    ledger = list(selectors.ledger_of_household(household).select_related("created_by"))
    checkouts = selectors.checkouts_of_household_for_staff(household)
    audit_record(
        action=AuditEvent.Action.VIEW,
        obj=household,
        request=request,
        detail={"payments": True},
    )
    _children_read(
        request,
        [line.student for checkout in checkouts for line in checkout.lines.all()]
        + [entry.student for entry in ledger],
        {"via": "payments.household", "household": household.pk},
    )
    return render(
        request,
        "payments/staff/household_payments.html",
        {
            "household": household,
            "checkouts": checkouts,
            "ledger": ledger,
            "balance": sum(entry.amount_cents for entry in ledger),
        },
    )
