"""Staff pages about address changes, under ``staff/addresses/``: the verification
queue, one request (its proofs and visit, then verify or reject), the day's visits,
and each school's office hours for visits.

Office staff work on the households with a child at one of their schools, registrars
on every household (``workflow.address_selectors``); nobody else opens these pages.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from registration.access import OFFICE, REGISTRAR, log_refusal, staff_required
from registration.selectors import staff_profile_for
from workflow.address_forms import (
    AddressQueueFilterForm,
    AddressRejectForm,
    VisitDayForm,
    VisitRecordForm,
    VisitScheduleForm,
)
from workflow.address_selectors import (
    address_proof_for_staff,
    address_queue,
    address_request_detail,
    address_request_for_staff,
    address_schools_visible_to,
    visit_schedules_of,
    visits_of_day,
    walk_ins_expected,
)
from workflow.models import PROOF_KINDS, AddressChangeRequest, AuditEvent
from workflow.services import (
    TransitionRefused,
    address_change_reject,
    address_change_verify,
    address_visit_record,
    audit_record,
    visit_schedule_save,
)

PAGE_SIZE = 50
SCHOOLS_PER_PAGE = 50  # the office hours page of a district of a thousand schools
PROOF_LABELS = dict(PROOF_KINDS)


def _querystring(request: HttpRequest, *, without: tuple[str, ...] = ("page",)) -> str:
    return urlencode([(k, str(v)) for k, v in request.GET.items() if k not in without and v])


@staff_required(REGISTRAR, OFFICE)
def address_queue_view(request: HttpRequest) -> HttpResponse:
    """Requested and awaiting-visit address changes, oldest first, with filters."""
    schools = address_schools_visible_to(request.user)
    form = AddressQueueFilterForm(request.GET or None, schools=schools)
    queue = address_queue(request.user, **form.filters())
    page = Paginator(queue.requests, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "staff/addresses/queue.html",
        {
            "form": form,
            "queue": queue,
            "page": page,
            "querystring": _querystring(request),
            "state_links": [
                (value, label, count, _querystring(request, without=("page", "state")))
                for value, label, count in queue.counts_by_label()
            ],
            "now": timezone.now(),
        },
    )


def _detail(
    request: HttpRequest,
    address_request: AddressChangeRequest,
    *,
    record_form: VisitRecordForm | None = None,
    reject_form: AddressRejectForm | None = None,
) -> HttpResponse:
    """The request's page; every time it is shown is written to the audit log."""
    audit_record(action=AuditEvent.Action.VIEW, obj=address_request, request=request)
    detail = address_request_detail(address_request)
    return render(
        request,
        "staff/addresses/detail.html",
        {
            "detail": detail,
            "address_request": address_request,
            "household": address_request.household,
            "proofs_seen": [PROOF_LABELS.get(k, k) for k in address_request.proofs_seen],
            "record_form": record_form
            or VisitRecordForm(initial={"proofs_seen": address_request.proofs_seen}),
            "reject_form": reject_form or AddressRejectForm(),
        },
    )


@staff_required(REGISTRAR, OFFICE)
def address_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, address_request_for_staff(request.user, pk))


@staff_required(REGISTRAR, OFFICE)  # type: ignore[arg-type]  # a FileResponse streams
def address_proof(request: HttpRequest, pk: int, proof_pk: int) -> FileResponse:
    """A proof of residence, as a download only; every download is audited."""
    try:
        proof = address_proof_for_staff(request.user, pk, proof_pk)
    except Http404:
        log_refusal(request, "proof of an address change not visible to the user")
        raise
    audit_record(
        action=AuditEvent.Action.VIEW,
        obj=proof,
        request=request,
        detail={"address_request": proof.request_id},
    )
    response = FileResponse(
        proof.file.open("rb"),
        as_attachment=True,
        filename=proof.original_name,
        content_type=proof.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
@staff_required(REGISTRAR, OFFICE)
def address_visit_record_view(request: HttpRequest, pk: int) -> HttpResponse:
    address_request = address_request_for_staff(request.user, pk)
    form = VisitRecordForm(request.POST)
    if not form.is_valid():
        return _detail(request, address_request, record_form=form)
    try:
        address_visit_record(
            request=address_request,
            actor=request.user,
            proofs_seen=form.cleaned_data["proofs_seen"],
        )
    except TransitionRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, _("The visit is recorded. You can now verify the new address."))
    return redirect("staff_address", pk=pk)


@require_POST
@staff_required(REGISTRAR, OFFICE)
def address_verify_view(request: HttpRequest, pk: int) -> HttpResponse:
    address_request = address_request_for_staff(request.user, pk)
    try:
        address_change_verify(request=address_request, actor=request.user)
    except TransitionRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(
            request,
            _("The household's address is now the new one. The family will get an email."),
        )
    return redirect("staff_address", pk=pk)


@require_POST
@staff_required(REGISTRAR, OFFICE)
def address_reject_view(request: HttpRequest, pk: int) -> HttpResponse:
    address_request = address_request_for_staff(request.user, pk)
    form = AddressRejectForm(request.POST)
    if not form.is_valid():
        return _detail(request, address_request, reject_form=form)
    try:
        address_change_reject(
            request=address_request, actor=request.user, reason=form.cleaned_data["reason"]
        )
    except TransitionRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(
            request,
            _("The address change was rejected; the family will get an email with the reason."),
        )
    return redirect("staff_address", pk=pk)


@staff_required(REGISTRAR, OFFICE)
def visits_day_view(request: HttpRequest) -> HttpResponse:
    """The day's booked visits at the user's schools (today unless ``?date=``), and
    the families who said they would walk in."""
    schools = address_schools_visible_to(request.user)
    form = VisitDayForm(request.GET or None, schools=schools)
    form.is_valid()
    cleaned: dict[str, Any] = getattr(form, "cleaned_data", {})
    day = cleaned.get("date") or timezone.localdate()
    school = cleaned.get("school")

    def day_link(other: datetime.date) -> str:
        query = {"date": other.isoformat(), **({"school": school.pk} if school else {})}
        return f"{reverse('staff_address_visits')}?{urlencode(query)}"

    return render(
        request,
        "staff/addresses/visits.html",
        {
            "form": form,
            "day": day,
            "is_today": day == timezone.localdate(),
            "visits": visits_of_day(request.user, day, school=school),
            "walk_ins": walk_ins_expected(request.user, school=school),
            "previous_url": day_link(day - datetime.timedelta(days=1)),
            "next_url": day_link(day + datetime.timedelta(days=1)),
        },
    )


def _may_change_slots(user: Any) -> bool:
    if user.is_superuser:
        return True
    profile = staff_profile_for(user)
    return profile is not None and profile.role == REGISTRAR


@staff_required(REGISTRAR, OFFICE)
def visit_schedule_view(request: HttpRequest) -> HttpResponse:
    """Each school's office hours for visits. Registrars also set the minutes per
    visit and the families per slot; office staff change their own schools' hours."""
    visible = address_schools_visible_to(request.user).order_by("name", "pk")
    # A district of a thousand schools lists them a page at a time.
    page = Paginator(visible, SCHOOLS_PER_PAGE).get_page(request.GET.get("page"))
    schools = visit_schedules_of(visible.filter(pk__in=[s.pk for s in page.object_list]))
    wanted = request.GET.get("school")
    if wanted:
        chosen = visit_schedules_of(visible.filter(pk=wanted)) if wanted.isdigit() else []
        if not chosen:
            raise Http404
        school = chosen[0]
    else:
        school = schools[0] if schools else None
    if school is None:
        return render(request, "staff/addresses/schedule.html", {"schools": [], "school": None})
    may_change_slots = _may_change_slots(request.user)
    form = VisitScheduleForm(
        request.POST if request.method == "POST" else None,
        school=school,
        may_change_slots=may_change_slots,
    )
    if request.method == "POST" and form.is_valid():
        visit_schedule_save(
            school=school,
            hours=form.hours(),
            actor=request.user,
            slot_minutes=form.cleaned_data["slot_minutes"] if may_change_slots else None,
            capacity=form.cleaned_data["capacity"] if may_change_slots else None,
        )
        messages.success(
            request,
            _("The office hours of %(school)s were saved. Visits already booked stay booked.")
            % {"school": school.name},
        )
        query = urlencode({"school": school.pk, "page": page.number})
        return redirect(f"{reverse('staff_address_schedule')}?{query}")
    return render(
        request,
        "staff/addresses/schedule.html",
        {
            "schools": schools,
            "school": school,
            "form": form,
            "page": page,
            # The pages keep a chosen school; with none, each page opens its first.
            "querystring": urlencode({"school": school.pk}) if wanted else "",
        },
    )
