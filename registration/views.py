"""Pages for families: the front door, activation, and the guardian's and the
student's homes."""

from __future__ import annotations

import datetime

from allauth.account.utils import complete_signup
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from config.languages import language_cookie_set, product_language
from registration import selectors
from registration.access import is_staff_member, log_refusal, refuse
from registration.forms import AccountForm, ActivationForm
from registration.models import ActivationAttempt, ActivationCode, Guardian
from registration.services import (
    activation_account_create,
    activation_verify,
    guardian_language_set,
)
from registration.throttle import client_ip, throttle_allows
from workflow import selectors as workflow_selectors
from workflow.services import TransitionRefused

ACTIVATION_SESSION_KEY = "activation"
# How long, after the code and birth date were accepted, the account form waits.
ACTIVATION_FORM_MINUTES = 30


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/home.html", {"next_year": selectors.school_year_next()})


@login_required
def after_sign_in(request: HttpRequest) -> HttpResponse:
    """Send each person to their own area."""
    if is_staff_member(request.user):
        return redirect("staff_home")
    if selectors.guardian_for(request.user) is not None:
        return redirect("guardian_home")
    if selectors.student_for(request.user) is not None:
        return redirect("student_home")
    messages.warning(
        request,
        _("Your account is not linked to a household yet. Please contact the district."),
    )
    return redirect("home")


@login_required
def guardian_home(request: HttpRequest) -> HttpResponse:
    guardian = selectors.guardian_for(request.user)
    if guardian is None:
        raise refuse(request, "not a guardian")
    households = selectors.households_of_guardian(guardian)
    links = selectors.links_of_guardian(guardian)
    campaign = workflow_selectors.campaign_latest()
    registrations = workflow_selectors.registration_states_of_households(households, campaign)
    decisions = workflow_selectors.decisions_of_students(
        [row.student_id for household in households for row in household.student_rows], campaign
    )
    for household in households:
        household.registration = registrations.get(household.pk)
        for row in household.student_rows:
            row.link = links.get(row.student_id)
            row.decision = decisions.get(row.student_id)
    return render(
        request,
        "registration/guardian_home.html",
        {
            "guardian": guardian,
            "households": households,
            "next_year": selectors.school_year_next(),
            "campaign": campaign,
            "campaign_running": campaign is not None and campaign.is_running(),
        },
    )


@login_required
def student_home(request: HttpRequest) -> HttpResponse:
    """A secondary student's own record, read-only."""
    student = selectors.student_for(request.user)
    if student is None:
        raise refuse(request, "not a student")
    campaign = workflow_selectors.campaign_latest()
    decision = workflow_selectors.decisions_of_students([student.pk], campaign).get(student.pk)
    return render(
        request,
        "registration/student_home.html",
        {
            "student": student,
            "households": selectors.households_of_student(student),
            "campaign": campaign,
            "decision": decision,
        },
    )


def activate(request: HttpRequest) -> HttpResponse:
    """Step 1 of activation: the code from the letter and a birth date the district holds."""
    if request.user.is_authenticated:
        return redirect("after_sign_in")
    form = ActivationForm(request.POST or None)
    status = 200
    if request.method == "POST":
        ip_address = client_ip(request)
        if not throttle_allows("activate", ip_address or "unknown", settings.ACTIVATION_IP_LIMITS):
            ActivationAttempt.objects.create(
                outcome=ActivationAttempt.Outcome.THROTTLED, ip_address=ip_address or None
            )
            log_refusal(request, "activation throttled")
            form.add_error(
                None,
                _("Too many tries from your connection. Please wait a few minutes and try again."),
            )
            status = 429
        elif form.is_valid():
            code = activation_verify(
                code_text=form.cleaned_data["code"],
                birth_date=form.cleaned_data["birth_date"],
                ip_address=ip_address,
            )
            if code is not None:
                # A new session key: someone who planted a session cookie in this
                # browser must not hold the accepted code, and open the account.
                request.session.cycle_key()
                request.session[ACTIVATION_SESSION_KEY] = {
                    "code": code.pk,
                    "at": timezone.now().isoformat(),
                }
                return redirect("activate_account")
            # One message for a wrong code, a used or expired one, a wrong date, a lock.
            form.add_error(
                None,
                _(
                    "We could not open an account with this code and date of birth. Check both "
                    "against your letter. After several tries, wait 30 minutes or ask us for a "
                    "new code."
                ),
            )
    return render(request, "registration/activate.html", {"form": form}, status=status)


def _code_in_session(request: HttpRequest) -> ActivationCode | None:
    state = request.session.get(ACTIVATION_SESSION_KEY)
    if not state:
        return None
    accepted_at = datetime.datetime.fromisoformat(state["at"])
    if timezone.now() - accepted_at > datetime.timedelta(minutes=ACTIVATION_FORM_MINUTES):
        return None
    code = (
        ActivationCode.objects.select_related("guardian", "student")
        .filter(pk=state["code"])
        .first()
    )
    return code if code is not None and code.is_usable() else None


def activate_account(request: HttpRequest) -> HttpResponse:
    """Step 2 of activation: the email address and password of the new sign-in."""
    code = _code_in_session(request)
    if code is None:
        messages.error(request, _("Please enter your activation code again."))
        return redirect("activate")
    person = code.person
    initial = {"language": translation.get_language() or "en"}
    if isinstance(person, Guardian):
        initial["email"] = selectors.email_on_file(person)
        household = person.households.order_by("sourced_id").first()
        if household is not None and product_language(household.language):
            initial["language"] = product_language(household.language)
    form = AccountForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            user = activation_account_create(
                code=code,
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                language=form.cleaned_data["language"],
            )
        except (TransitionRefused, ValueError):
            messages.error(request, _("This code has just been used. Please sign in."))
            return redirect("account_login")
        except IntegrityError:
            # The address was taken a moment ago, by another activation.
            form.add_error("email", AccountForm.EMAIL_TAKEN)
            return render(
                request,
                "registration/activate_account.html",
                {"form": form, "person": person, "is_student": code.student_id is not None},
            )
        del request.session[ACTIVATION_SESSION_KEY]
        language = form.cleaned_data["language"]
        translation.activate(language)
        response = complete_signup(
            request, user, settings.ACCOUNT_EMAIL_VERIFICATION, reverse("after_sign_in")
        )
        language_cookie_set(response, language)
        return response
    return render(
        request,
        "registration/activate_account.html",
        {"form": form, "person": person, "is_student": code.student_id is not None},
    )


@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """The language switch on every page: Django's, and for a signed-in guardian the
    choice is also kept on their record, so that emails, letters and documents are
    written in it and their next sign-in, on any device, opens in it."""
    response = set_language(request)
    language = product_language(request.POST.get("language"))
    if language is not None and request.user.is_authenticated:
        guardian = selectors.guardian_for(request.user)
        if guardian is not None:
            guardian_language_set(guardian=guardian, language=language, actor=request.user)
    return response


@require_POST
def session_extend(request: HttpRequest) -> HttpResponse:
    """'Stay signed in': any request restarts the idle timer; this one does nothing else."""
    if not request.user.is_authenticated:
        return HttpResponse(status=401)
    if request.headers.get("X-Requested-With") == "fetch":
        return HttpResponse(status=204)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
        target = reverse("after_sign_in")
    return redirect(target)
