"""Staff review of registrations, under ``staff/registrations/``: the queue, one
registration's changes and signature, approving it or returning it to the family,
and (registrars) the export of approved changes to the SIS.

Office staff see the registrations of households with a student at their schools,
registrars all of them; every other role is refused.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone, translation
from django.utils.http import content_disposition_header, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from registration.access import OFFICE, REGISTRAR, log_refusal, staff_required
from registration.selectors import schools_visible_to, staff_profile_for
from workflow import selectors
from workflow.models import AddressChangeRequest, AuditEvent, Registration, SisExport
from workflow.review_forms import RegistrationQueueFilterForm, RegistrationReturnForm
from workflow.services import (
    TransitionRefused,
    audit_record,
    registration_approve,
    registration_return,
)
from workflow.sis_export import (
    sis_export_create,
    sis_export_pending,
    sis_export_zip,
    sis_exports_recent,
)

PAGE_SIZE = 50
# The health fields of a child's step, as the wizard labels them (the submission
# keeps the labels in the family's language). Only the roles that may see health
# data are shown these rows.
HEALTH_LABELS = (
    gettext_lazy("Allergies"),
    gettext_lazy("Medications taken at school"),
    gettext_lazy("Medical conditions the school should know about"),
)
HEALTH_ROLES = (REGISTRAR, OFFICE)


def _registration_or_404(request: HttpRequest, pk: int) -> Registration:
    """The registration if the user may review it; 404 otherwise, so that a guessed
    id tells nothing."""
    registration = (
        selectors.registrations_visible_to(request.user)
        .select_related("campaign__school_year", "household")
        .filter(pk=pk)
        .first()
    )
    if registration is None:
        log_refusal(request, "registration not found among those the user may review")
        raise Http404
    return registration


def _may_see_health(user: Any) -> bool:
    if user.is_superuser:
        return True
    profile = staff_profile_for(user)
    return profile is not None and profile.role in HEALTH_ROLES


def _health_labels() -> set[str]:
    labels: set[str] = set()
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            labels.update(str(label) for label in HEALTH_LABELS)
    return labels


def review_sections(content: dict[str, Any], *, health: bool) -> list[dict[str, Any]]:
    """The signed content's sections (one per step, one per child), each with its
    rows (health rows left out unless ``health``) and how many of them changed."""
    hidden = set() if health else _health_labels()
    sections = []
    for section in content.get("sections", []):
        rows = [
            row
            for row in section.get("rows", [])
            if health or not (row.get("sensitive") or row.get("label") in hidden)
        ]
        sections.append(
            {**section, "rows": rows, "changes": sum(1 for row in rows if row.get("changed"))}
        )
    return sections


# -- the queue ---------------------------------------------------------------------------


@staff_required(REGISTRAR, OFFICE)
def registration_queue(request: HttpRequest) -> HttpResponse:
    """Registrations of the latest campaign in one state (submitted unless asked),
    oldest submission first, with the count in each state."""
    campaign = selectors.campaign_latest()
    filter_form = RegistrationQueueFilterForm(
        request.GET or None,
        schools=schools_visible_to(request.user),  # type: ignore[arg-type]
    )
    state = request.GET.get("state", "")
    if state not in selectors.REVIEW_STATES:
        state = Registration.State.SUBMITTED
    school = filter_form.school()
    registrations = (
        selectors.registrations_visible_to(request.user).filter(campaign=campaign)
        if campaign is not None
        else Registration.objects.none()
    )
    if school is not None:
        registrations = selectors.registrations_at_school(registrations, school)
    counts = (
        selectors.registration_counts_by_state(registrations, besides=state) if campaign else {}
    )
    page = Paginator(
        selectors.registration_review_queue(registrations.filter(state=state)), PAGE_SIZE
    ).get_page(request.GET.get("page"))

    def query(state: str) -> str:
        """The queue in ``state``, at the school chosen."""
        return urlencode([("state", state), *([("school", school.pk)] if school else [])])

    cap = selectors.REVIEW_COUNT_CAP
    # The tab shown counts exactly (its list is paged over every one of them).
    counts[state] = page.paginator.count if campaign else 0
    tabs = [
        {
            "state": value,
            "label": label,
            "count": counts.get(value, 0) if value == state else min(counts.get(value, 0), cap),
            "more": value != state and counts.get(value, 0) > cap,
            "url": f"?{query(value)}",
            "current": value == state,
        }
        for value, label in Registration.State.choices
        if value in selectors.REVIEW_STATES
    ]
    return render(
        request,
        "staff/registrations/queue.html",
        {
            "campaign": campaign,
            "page": page,
            "querystring": query(state),
            "tabs": tabs,
            "state": state,
            "state_label": Registration.State(state).label,
            "filter_form": filter_form,
            "school": school,
        },
    )


# -- one registration ------------------------------------------------------------------


def _detail(
    request: HttpRequest,
    review: selectors.RegistrationReview,
    return_form: RegistrationReturnForm | None = None,
) -> HttpResponse:
    registration = review.registration
    if return_form is None:
        steps = [step for step, _title in review.steps]
        initial = registration.return_step if registration.return_step in steps else None
        return_form = RegistrationReturnForm(
            steps=review.steps, initial={"step": initial} if initial else None
        )
    submission = review.submission
    audit_record(action=AuditEvent.Action.VIEW, obj=registration, request=request)
    return render(
        request,
        "staff/registrations/detail.html",
        {
            "registration": registration,
            "review": review,
            "submission": submission,
            "sections": review_sections(
                submission.content if submission else {}, health=_may_see_health(request.user)
            ),
            "return_form": return_form,
            "may_review": registration.state == Registration.State.SUBMITTED,
            "open_states": AddressChangeRequest.OPEN_STATES,
        },
    )


@staff_required(REGISTRAR, OFFICE)
def registration_detail(request: HttpRequest, pk: int) -> HttpResponse:
    registration = _registration_or_404(request, pk)
    return _detail(request, selectors.registration_review_load(registration))


def _no_longer_submitted(request: HttpRequest) -> None:
    messages.error(
        request, _("This registration is no longer waiting for review; nothing was changed.")
    )


@staff_required(REGISTRAR, OFFICE)
@require_POST
def registration_approve_view(request: HttpRequest, pk: int) -> HttpResponse:
    registration = _registration_or_404(request, pk)
    try:
        registration_approve(registration=registration, actor=request.user)
    except TransitionRefused as refused:
        registration.refresh_from_db(fields=["state"])
        if registration.state != Registration.State.SUBMITTED:
            _no_longer_submitted(request)
        else:
            messages.error(request, str(refused))
        return redirect("staff_registration", pk=registration.pk)
    messages.success(
        request,
        _(
            "The registration of %(household)s is approved: the family's answers are in "
            "the records, and the family was emailed."
        )
        % {"household": registration.household},
    )
    return redirect("staff_registrations")


@staff_required(REGISTRAR, OFFICE)
@require_POST
def registration_return_view(request: HttpRequest, pk: int) -> HttpResponse:
    registration = _registration_or_404(request, pk)
    review = selectors.registration_review_load(registration)
    form = RegistrationReturnForm(request.POST, steps=review.steps)
    if not form.is_valid():
        return _detail(request, review, return_form=form)
    try:
        registration_return(
            registration=registration,
            actor=request.user,
            comment=form.cleaned_data["comment"],
            step=form.cleaned_data["step"],
        )
    except TransitionRefused:
        _no_longer_submitted(request)
        return redirect("staff_registration", pk=registration.pk)
    messages.success(
        request,
        _(
            "The registration of %(household)s was returned to the family, who were "
            "emailed your comment."
        )
        % {"household": registration.household},
    )
    return redirect("staff_registrations")


# -- the export to the SIS ---------------------------------------------------------------


def _zip_response(data: bytes, filename: str) -> HttpResponse:
    return HttpResponse(
        data,
        content_type="application/zip",
        headers={"Content-Disposition": content_disposition_header(True, filename)},
    )


@staff_required(REGISTRAR)
def sis_export_view(request: HttpRequest) -> HttpResponse:
    """What the next export holds (GET); make it and download its files (POST)."""
    if request.method == "POST":
        export = sis_export_create(actor=request.user)
        stamp = timezone.localtime(export.created_at if export else None)
        name = f"sis-changes-{stamp:%Y%m%d-%H%M%S}.zip"
        return _zip_response(sis_export_zip(export=export), name)
    return render(
        request,
        "staff/registrations/export.html",
        {"pending": sis_export_pending(), "exports": sis_exports_recent()},
    )


@staff_required(REGISTRAR)
def sis_export_download(request: HttpRequest, pk: int) -> HttpResponse:
    """The files of an earlier export again (the same changes; users as they are now)."""
    export = get_object_or_404(SisExport, pk=pk)
    audit_record(
        action=AuditEvent.Action.EXPORT, obj=export, request=request, detail={"again": True}
    )
    stamp = timezone.localtime(export.created_at)
    return _zip_response(sis_export_zip(export=export), f"sis-changes-{stamp:%Y%m%d-%H%M%S}.zip")
