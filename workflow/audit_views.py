"""The registrar's audit page: the audit log, read-only, filtered by who acted, by
student and by date. Nothing here changes or removes a row."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_safe

from registration.access import REGISTRAR, staff_required
from workflow.audit import AuditSearch, audit_events_search, students_matching
from workflow.forms import AuditFilterForm
from workflow.services import audit_record

PAGE_SIZE = 100
STUDENTS_NAMED = 10


@require_safe
@staff_required(REGISTRAR)
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    search = AuditSearch()
    if form.is_bound and form.is_valid():
        search = AuditSearch(
            actor=form.cleaned_data["actor"],
            student=form.cleaned_data["student"],
            since=form.cleaned_data["since"],
            until=form.cleaned_data["until"],
        )
    valid = not form.is_bound or form.is_valid()
    events = audit_events_search(search) if valid else audit_events_search(AuditSearch()).none()
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    students = (
        list(
            students_matching(search.student).order_by("family_name", "given_name", "pk")[
                : STUDENTS_NAMED + 1
            ]
        )
        if search.student
        else []
    )
    if not search.is_empty:
        audit_record(
            action="list",
            object_type="workflow.auditevent",
            request=request,
            detail={
                "actor": search.actor[:200],
                "student": search.student[:200],
                "since": search.since.isoformat() if search.since else "",
                "until": search.until.isoformat() if search.until else "",
            },
        )
    filters = {
        name: request.GET[name]
        for name in ("actor", "student", "since", "until")
        if request.GET.get(name)
    }
    return render(
        request,
        "staff/audit/log.html",
        {
            "form": form,
            "page": page,
            "search": search,
            "students": students[:STUDENTS_NAMED],
            "more_students": len(students) > STUDENTS_NAMED,
            "querystring": urlencode(filters),
        },
    )
