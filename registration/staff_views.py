"""Staff pages about the district's records and accounts: the overview, finding a
guardian, a lost letter, activation rates and code re-sends."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from registration import selectors
from registration.access import OFFICE, REGISTRAR, staff_required
from registration.forms import CustodyNoteForm
from registration.grades import grade_rank
from registration.models import (
    ActivationCode,
    ActivationEmail,
    Guardian,
    HouseholdGuardian,
    StaffProfile,
    StudentGuardian,
)
from registration.services import (
    activation_code_email,
    activation_letter_reissue,
    activation_resend_due,
    custody_note_set,
)
from workflow import selectors as workflow_selectors
from workflow.dashboard import dashboard_current
from workflow.models import Summary
from workflow.services import audit_record
from workflow.summaries import summary_current

# Up to this many schools, the dashboard shows every school's grades on one page.
DASHBOARD_SCHOOLS_IN_FULL = 12
# More schools than this are listed a page at a time.
DASHBOARD_SCHOOLS_PER_PAGE = 50


@staff_required()
def staff_home(request: HttpRequest) -> HttpResponse:
    """The dashboard of the latest campaign for the schools the user may see; teachers
    see their classes; before any campaign is opened, students per school and grade."""
    profile = selectors.staff_profile_for(request.user)
    context: dict[str, object] = {"profile": profile}
    teacher = profile is not None and profile.role == StaffProfile.Role.TEACHER
    if teacher and not request.user.is_superuser:
        context["teacher"] = True
        context["classes"] = workflow_selectors.classes_of_teacher(request.user)
        context["current_year"] = selectors.school_year_current()
        return render(request, "staff/home.html", context)
    campaign = workflow_selectors.campaign_latest()
    if campaign is None:
        context["overview"] = selectors.school_overview(request.user)
        context["current_year"] = selectors.school_year_current()
    else:
        chosen = request.GET.get("school", "")
        only = None
        schools = selectors.schools_visible_to(request.user)
        if schools.count() > DASHBOARD_SCHOOLS_PER_PAGE:
            # A district of a thousand schools: a page of them at a time (and the
            # chosen one), the district's total on every page.
            # Plain rows to order and page: 1,561 model instances took a third of
            # the page's time.
            ordered = sorted(
                schools.values_list("pk", "name", "low_grade"),
                key=lambda row: (grade_rank(row[2]), row[1]),
            )
            page = Paginator(ordered, DASHBOARD_SCHOOLS_PER_PAGE).get_page(request.GET.get("page"))
            context["schools_page"] = page
            only = [pk for pk, _name, _low in page.object_list]
            only += [int(chosen)] if chosen.isdigit() else []
        dashboard = dashboard_current(request.user, campaign, only=only)
        # A district of many schools shows the grades of one school at a time.
        every_school = only is None and len(dashboard.schools) <= DASHBOARD_SCHOOLS_IN_FULL
        on_page = {row[0] for row in context["schools_page"].object_list} if only else set()
        context["dashboard"] = dashboard
        context["listed_schools"] = [
            item for item in dashboard.schools if only is None or item.school.pk in on_page
        ]
        context["page_query"] = urlencode({"school": chosen}) if chosen.isdigit() else ""
        context["grades_of_every_school"] = every_school
        context["schools_in_detail"] = [
            item for item in dashboard.schools if every_school or str(item.school.pk) == chosen
        ]
    return render(request, "staff/home.html", context)


@staff_required(REGISTRAR, OFFICE)
def guardian_search(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    results = selectors.guardian_search(selectors.guardians_visible_to(request.user), query)
    page = Paginator(results, 25).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    prefetch_related_objects(
        page.object_list,
        Prefetch(
            "householdguardian_set",
            queryset=HouseholdGuardian.objects.select_related("household"),
        ),
    )
    if query:
        audit_record(
            action="list",
            object_type="registration.guardian",
            request=request,
            detail={"query": query[:200], "results": page.paginator.count},
        )
    return render(
        request,
        "staff/guardian_search.html",
        {"query": query, "page": page, "querystring": urlencode({"q": query})},
    )


def _guardian_or_404(request: HttpRequest, pk: int) -> Guardian:
    guardian = selectors.guardians_visible_to(request.user).filter(pk=pk).first()
    if guardian is None:
        # The same answer for a guardian who does not exist and one of another school.
        raise Http404
    return guardian


@staff_required(REGISTRAR, OFFICE)
def guardian_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _guardian_page(request, _guardian_or_404(request, pk))


def _guardian_page(
    request: HttpRequest, guardian: Guardian, *, bound: CustodyNoteForm | None = None
) -> HttpResponse:
    """The guardian's page; ``bound`` is a custody note form that was refused, shown
    with its errors and what was typed in place of that child's form."""
    # Only the guardian's households the member of staff may see: a second household
    # with no child at their schools is none of their business.
    visible = set(
        selectors.households_visible_to(request.user)  # type: ignore[arg-type]
        .filter(householdguardian__guardian=guardian)
        .values_list("pk", flat=True)
    )
    households = [h for h in selectors.households_of_guardian(guardian) if h.pk in visible]
    audit_record(action="view", obj=guardian, request=request)
    # The page shows each child's name, grade and school: a read of the child's record.
    children = {row.student.pk: row.student for h in households for row in h.student_rows}
    for student in children.values():
        audit_record(
            action="view",
            obj=student,
            request=request,
            detail={"via": "registration.guardian", "guardian": guardian.pk},
        )
    custody = [
        (
            link,
            bound
            if bound is not None and bound.prefix == _custody_prefix(link)
            else CustodyNoteForm(
                prefix=_custody_prefix(link),
                initial={"note": link.custody_note or ""},
                child=link.student.full_name,
            ),
        )
        for link in _custody_links(request).filter(guardian=guardian)
    ]
    return render(
        request,
        "staff/guardian_detail.html",
        {
            "guardian": guardian,
            "households": households,
            "custody": custody,
            "email": selectors.email_on_file(guardian),
            "code": guardian.codes.order_by("-created_at").first(),
            "code_emails": ActivationEmail.objects.filter(guardian=guardian)
            .select_related("sent_by")
            .order_by("-created_at")[:10],
            "ActivationCode": ActivationCode,
        },
    )


def _custody_links(request: HttpRequest) -> QuerySet[StudentGuardian]:
    """Links between guardians and the children the member of staff may see."""
    return (
        StudentGuardian.objects.filter(
            student__in=selectors.students_visible_to(request.user),  # type: ignore[arg-type]
            guardian__in=selectors.guardians_visible_to(request.user),  # type: ignore[arg-type]
        )
        .select_related("student")
        .order_by("student__birth_date", "student__given_name", "pk")
    )


def _custody_prefix(link: StudentGuardian) -> str:
    return f"custody-{link.pk}"


@require_POST
@staff_required(REGISTRAR, OFFICE)
def custody_note(request: HttpRequest, pk: int) -> HttpResponse:
    """Write the custody note of one guardian and one child of the staff's schools."""
    link = _custody_links(request).select_related("guardian").filter(pk=pk).first()
    if link is None:
        # The same answer for a link that does not exist and one of another school.
        raise Http404
    form = CustodyNoteForm(request.POST, prefix=_custody_prefix(link), child=link.student.full_name)
    if not form.is_valid():
        return _guardian_page(request, link.guardian, bound=form)
    if custody_note_set(link=link, note=form.cleaned_data["note"], request=request):
        messages.success(request, f"Custody note for {link.student.full_name} saved.")
    else:
        messages.info(request, f"The custody note for {link.student.full_name} did not change.")
    url = reverse("staff_guardian", args=[link.guardian_id])
    return redirect(f"{url}#{_custody_prefix(link)}")


@require_POST
@staff_required(REGISTRAR, OFFICE)
def guardian_letter(request: HttpRequest, pk: int) -> HttpResponse:
    """A new code on a printed letter, for a guardian who lost theirs; the old code
    stops working. The PDF is the only copy of the code."""
    guardian = _guardian_or_404(request, pk)
    if guardian.user_id:
        messages.warning(request, "This guardian already has an account; no code was issued.")
        return redirect("staff_guardian", pk=pk)
    pdf = activation_letter_reissue(guardian=guardian, issued_by=request.user)
    audit_record(
        action="create", obj=guardian, request=request, detail={"activation_code": "letter"}
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="activation-letter-{guardian.sourced_id}.pdf"'
    )
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@staff_required(REGISTRAR, OFFICE)
def guardian_email_code(request: HttpRequest, pk: int) -> HttpResponse:
    guardian = _guardian_or_404(request, pk)
    sent = activation_code_email(guardian=guardian, reason="staff", sent_by=request.user)
    if sent is None:
        messages.warning(
            request, "No code was sent: this guardian has an account or no email address."
        )
    else:
        audit_record(
            action="create", obj=guardian, request=request, detail={"activation_code": "email"}
        )
        messages.success(
            request, f"A new code is on its way to {sent.email}. The previous code no longer works."
        )
    return redirect("staff_guardian", pk=pk)


@staff_required(REGISTRAR)
def activation_overview(request: HttpRequest) -> HttpResponse:
    counted = summary_current("activation")
    # A district of a thousand schools lists them a page at a time.
    rates = Paginator(
        selectors.activation_rates(request.user, counted.data), DASHBOARD_SCHOOLS_PER_PAGE
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "staff/activation.html",
        {
            "rates": rates,
            "page": rates,
            "querystring": "",
            "due": counted.data["due"],
            "counted_at": counted.taken_at,
            "max_age_minutes": max(settings.SUMMARY_MAX_AGE_SECONDS // 60, 1),
            "resend_days": settings.ACTIVATION_RESEND_DAYS,
        },
    )


@require_POST
@staff_required(REGISTRAR)
def activation_resend(request: HttpRequest) -> HttpResponse:
    queued = activation_resend_due(actor=request.user)
    # The codes are issued by the workers after this commits: a count now would
    # still find these guardians due. Nobody is due until the next count.
    counted = Summary.objects.filter(key="activation").first()
    if counted is not None:
        counted.data["due"] = 0
        counted.save(update_fields=["data"])
    messages.success(request, f"New codes are being emailed to {queued} guardian(s).")
    return redirect("staff_activation")
