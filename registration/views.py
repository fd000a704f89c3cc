"""The front door, and the first page of each area: the guardian's and the staff's."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from registration import selectors

security_log = logging.getLogger("security")


def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "registration/home.html",
        {"next_year": selectors.school_year_next()},
    )


@login_required
def after_sign_in(request: HttpRequest) -> HttpResponse:
    """Send each person to their own area."""
    if selectors.is_staff_user(request.user):
        return redirect("staff_home")
    if selectors.guardian_for(request.user) is not None:
        return redirect("guardian_home")
    messages.warning(
        request,
        _("Your account is not linked to a household yet. Please contact the district."),
    )
    return redirect("home")


@login_required
def guardian_home(request: HttpRequest) -> HttpResponse:
    guardian = selectors.guardian_for(request.user)
    if guardian is None:
        raise PermissionDenied
    households = selectors.households_of_guardian(guardian)
    links = selectors.links_of_guardian(guardian)
    for household in households:
        for row in household.student_rows:
            row.link = links.get(row.student_id)
    return render(
        request,
        "registration/guardian_home.html",
        {
            "guardian": guardian,
            "households": households,
            "next_year": selectors.school_year_next(),
        },
    )


@login_required
def staff_home(request: HttpRequest) -> HttpResponse:
    if not selectors.is_staff_user(request.user):
        security_log.warning(
            "refused: user %s is not staff, path %s, ip %s",
            request.user.pk,
            request.path,
            request.META.get("REMOTE_ADDR"),
        )
        raise PermissionDenied
    return render(
        request,
        "staff/home.html",
        {
            "profile": selectors.staff_profile_for(request.user),
            "overview": selectors.school_overview(request.user),
            "current_year": selectors.school_year_current(),
        },
    )
