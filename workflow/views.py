"""The registrar's pages for re-registration campaigns: dates and rules, the
documents families accept, and opening a campaign."""

from __future__ import annotations

from django.contrib import messages
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from registration.access import REGISTRAR, staff_required
from workflow import selectors
from workflow.forms import AcknowledgementForm, CampaignForm
from workflow.models import Acknowledgement, Campaign, Registration
from workflow.services import (
    acknowledgement_retire,
    acknowledgement_save,
    campaign_open,
    campaign_save,
)
from workflow.summaries import summary_count


def _campaign_or_404(pk: int) -> Campaign:
    return get_object_or_404(selectors.campaigns_all(), pk=pk)


def _acknowledgement_or_404(campaign: Campaign, pk: int) -> Acknowledgement:
    return get_object_or_404(Acknowledgement, campaign=campaign, pk=pk)


@staff_required(REGISTRAR)
def campaign_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "staff/campaigns.html",
        {"summaries": selectors.campaign_summaries(), "states": Registration.State.choices},
    )


@staff_required(REGISTRAR)
def campaign_create(request: HttpRequest) -> HttpResponse:
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = campaign_save(**form.cleaned_data, actor=request.user)
        except IntegrityError:
            # Another request (a double click) created it first.
            form.add_error("school_year", _("This school year already has a campaign."))
        else:
            messages.success(
                request,
                _("The campaign for %(year)s was created. Add its documents, then open it.")
                % {"year": campaign.school_year.label},
            )
            return redirect("staff_campaign", pk=campaign.pk)
    return render(request, "staff/campaign_form.html", {"form": form, "campaign": None})


@staff_required(REGISTRAR)
def campaign_edit(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    form = CampaignForm(request.POST or None, campaign=campaign)
    if request.method == "POST" and form.is_valid():
        campaign_save(campaign=campaign, **form.cleaned_data, actor=request.user)
        messages.success(request, _("The campaign's dates and rules were saved."))
        return redirect("staff_campaign", pk=campaign.pk)
    return render(request, "staff/campaign_form.html", {"form": form, "campaign": campaign})


@staff_required(REGISTRAR)
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    documents = selectors.acknowledgement_documents(campaign)
    return render(
        request,
        "staff/campaign_detail.html",
        {
            "campaign": campaign,
            "summary": selectors.campaign_summary(campaign),
            "documents": [d for d in documents if d.current is not None],
            "retired": [d for d in documents if d.current is None],
        },
    )


@staff_required(REGISTRAR)
@require_POST
def campaign_open_view(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    was_open = campaign.opened_at is not None
    opened = campaign_open(campaign=campaign, actor=request.user)
    summary_count("campaigns")  # the registrations just made, counted for its page
    counts = {"registrations": opened.registrations, "decisions": opened.decisions}
    if was_open:
        message = _(
            "The campaign was already open. New registrations added: %(registrations)s; "
            "new enrollment decisions added: %(decisions)s."
        )
    else:
        message = _(
            "The campaign is open. Registrations created: %(registrations)s; "
            "enrollment decisions created: %(decisions)s."
        )
    messages.success(request, message % counts)
    return redirect("staff_campaign", pk=campaign.pk)


@staff_required(REGISTRAR)
def acknowledgement_create(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    form = AcknowledgementForm(request.POST or None, campaign=campaign)
    if request.method == "POST" and form.is_valid():
        acknowledgement = acknowledgement_save(
            campaign=campaign,
            key=form.cleaned_data["key"],
            texts=form.texts,
            required=form.cleaned_data["required"],
            position=form.cleaned_data["position"],
            actor=request.user,
        )
        messages.success(request, _("“%(title)s” was added.") % {"title": acknowledgement.title_en})
        return redirect("staff_campaign", pk=campaign.pk)
    return render(
        request,
        "staff/acknowledgement_form.html",
        {"form": form, "campaign": campaign, "acknowledgement": None},
    )


@staff_required(REGISTRAR)
def acknowledgement_edit(request: HttpRequest, pk: int, ack_pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    acknowledgement = _acknowledgement_or_404(campaign, ack_pk)
    if not acknowledgement.is_current:
        messages.warning(
            request,
            _("That version of “%(title)s” was replaced or retired; nothing was changed.")
            % {"title": acknowledgement.title_en},
        )
        return redirect("staff_campaign", pk=campaign.pk)
    form = AcknowledgementForm(
        request.POST or None, campaign=campaign, acknowledgement=acknowledgement
    )
    if request.method == "POST" and form.is_valid():
        saved = acknowledgement_save(
            campaign=campaign,
            key=acknowledgement.key,
            texts=form.texts,
            required=form.cleaned_data["required"],
            position=form.cleaned_data["position"],
            actor=request.user,
        )
        if saved.version != acknowledgement.version:
            message = _(
                "Version %(version)s of “%(title)s” is now current; version %(earlier)s is kept."
            ) % {
                "version": saved.version,
                "title": saved.title_en,
                "earlier": acknowledgement.version,
            }
        else:
            message = _(
                "“%(title)s” was saved. Its text did not change, so it stays version %(version)s."
            ) % {"version": saved.version, "title": saved.title_en}
        messages.success(request, message)
        return redirect("staff_campaign", pk=campaign.pk)
    return render(
        request,
        "staff/acknowledgement_form.html",
        {"form": form, "campaign": campaign, "acknowledgement": acknowledgement},
    )


@staff_required(REGISTRAR)
@require_POST
def acknowledgement_retire_view(request: HttpRequest, pk: int, ack_pk: int) -> HttpResponse:
    campaign = _campaign_or_404(pk)
    acknowledgement = _acknowledgement_or_404(campaign, ack_pk)
    acknowledgement_retire(acknowledgement=acknowledgement, actor=request.user)
    messages.success(
        request,
        _("Families are no longer asked to accept “%(title)s”. Acceptances already given are kept.")
        % {"title": acknowledgement.title_en},
    )
    return redirect("staff_campaign", pk=campaign.pk)
