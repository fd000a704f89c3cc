"""The registrar's reminders page, ``/staff/reminders/``: choose schools, grades and
statuses, see how many households would be written to, and queue the emails."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from registration.access import REGISTRAR, staff_required
from registration.selectors import schools_visible_to
from workflow import selectors
from workflow.models import Summary
from workflow.reminder_forms import ReminderFilterForm
from workflow.selectors import REMINDER_STATES
from workflow.services import reminders_send
from workflow.summaries import summary_current


@staff_required(REGISTRAR)
def reminders(request: HttpRequest) -> HttpResponse:
    campaign = selectors.campaign_running()
    schools = schools_visible_to(request.user)
    if request.method == "POST":
        if campaign is None:
            messages.error(
                request,
                _("No campaign is running: reminders are sent only while families can register."),
            )
            return redirect("staff_reminders")
        form = ReminderFilterForm(request.POST, schools=schools)
        if form.is_valid():
            queued = reminders_send(campaign=campaign, **form.filters, actor=request.user)
            # Those just written to are no longer due: the next view counts again.
            Summary.objects.filter(key="reminders").delete()
            if queued:
                messages.success(
                    request,
                    ngettext(
                        "A reminder is on its way to %(count)s household.",
                        "Reminders are on their way to %(count)s households.",
                        queued,
                    )
                    % {"count": queued},
                )
            else:
                messages.warning(request, _("No household was due a reminder: nothing was sent."))
            return redirect(f"{reverse('staff_reminders')}?{urlencode(form.query)}")
    else:
        # Both statuses until the registrar chooses otherwise.
        form = ReminderFilterForm(request.GET or {"states": list(REMINDER_STATES)}, schools=schools)
    valid = form.is_valid()
    preview, counted_at = None, None
    if campaign is not None and valid:
        filters = form.filters
        everyone = not filters["school_ids"] and not filters["grades"]
        if everyone and set(filters["states"]) == set(REMINDER_STATES):
            # The whole district, the page's first choice: as last counted.
            counted = summary_current("reminders")
            if counted.data.get("campaign") == campaign.pk:
                fields = {k: v for k, v in counted.data.items() if k != "campaign"}
                preview, counted_at = selectors.ReminderPreview(**fields), counted.taken_at
        if preview is None:
            preview = selectors.reminder_preview(campaign=campaign, **filters)
    return render(
        request,
        "staff/reminders/index.html",
        {
            "campaign": campaign,
            "form": form,
            "filters": form.filters if valid else None,
            "preview": preview,
            "counted_at": counted_at,
            "recent": selectors.reminder_sends_recent(),
            "reminder_days": settings.REMINDER_MIN_DAYS,
        },
    )
