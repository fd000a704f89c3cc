"""The re-registration wizard, and the pages around it: which registration to open,
its status after submission, and the downloads (proofs, confirmations).

The database holds every answer (``RegistrationStep``); the wizard's session
storage is refilled from it on every request, so a new device, an expired session
or a restarted server resumes exactly where the family stopped.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import cached_property
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import SuspiciousOperation
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.datastructures import MultiValueDict
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from formtools.wizard.forms import ManagementForm
from formtools.wizard.views import NamedUrlSessionWizardView

from config.storage import private_storage
from payments.cart import HouseholdCart, checkout_pending, household_cart
from payments.forms import cart_initial
from payments.guardian_views import (
    cart_pay,
    cart_posted_refusal,
    checkout_shown,
    to_stripe,
)
from payments.models import Checkout
from payments.money import money
from payments.selectors import required_fees_unsettled
from payments.services import household_waivers_apply
from registration import selectors
from registration.access import log_refusal
from registration.throttle import client_ip
from registration.wizard_forms import (
    AcknowledgementsForm,
    AddressForm,
    ChildForm,
    ContactsForm,
    EmergencyForm,
    FeesForm,
    PreferencesForm,
    ReviewForm,
    StepForm,
)
from workflow import selectors as workflow_selectors
from workflow.models import AddressProof, Registration, Submission
from workflow.selectors import WizardContext, registration_of_guardian, wizard_context_load
from workflow.services import (
    AnswersChanged,
    RegistrationClosed,
    Signature,
    TransitionRefused,
    VisitSlotTaken,
    address_change_save,
    content_sha256,
    drafts_fingerprint,
    registration_step_save,
    registration_submit,
)

HEAD_STEPS: list[tuple[str, type[StepForm]]] = [
    ("contacts", ContactsForm),
    ("preferences", PreferencesForm),
    ("address", AddressForm),
    ("emergency", EmergencyForm),
]
TAIL_STEPS: list[tuple[str, type[StepForm]]] = [
    ("acknowledgements", AcknowledgementsForm),
    ("review", ReviewForm),
]
# Before the review, for a household with fees it may pay now.
FEES_STEP = "fees"
# Fields that are never kept in a draft: the wizard's own, and uploads (kept as
# proofs on the address request instead).
NOT_KEPT = {"csrfmiddlewaretoken", "unchanged", "address-proofs", "address-remove_proofs"}


def _own_guardian(request: HttpRequest) -> Any:
    guardian = selectors.guardian_for(request.user)  # type: ignore[arg-type]
    if guardian is None:
        log_refusal(request, "registration by a non-guardian")
        raise Http404
    return guardian


@method_decorator(login_required, name="dispatch")
class RegistrationWizard(NamedUrlSessionWizardView):
    """guardians' contacts → preferences → address → emergency contacts → one step
    per child → acknowledgements → fees (when the household has fees to pay) →
    review and sign."""

    form_list = HEAD_STEPS + TAIL_STEPS  # each household's children are added per request
    template_name = "registration/wizard/step.html"
    file_storage = private_storage  # never used: uploads become proofs at once

    registration: Registration
    context: WizardContext

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        guardian = _own_guardian(request)
        self.registration = registration_of_guardian(guardian, kwargs["pk"])
        if not self.registration.is_editable:
            return redirect("registration_status", pk=self.registration.pk)
        if not self.registration.campaign.is_running():
            messages.info(request, _("Registration is closed."))
            return redirect("registration_status", pk=self.registration.pk)
        self.context = wizard_context_load(self.registration, guardian)
        self.context.language = translation.get_language() or "en"
        self._steps: OrderedDict[str, type[StepForm]] | None = None
        return super().dispatch(request, *args, **kwargs)

    # -- steps ------------------------------------------------------------------

    def get_prefix(self, request: HttpRequest, *args: Any, **kwargs: Any) -> str:
        return f"registration_{kwargs['pk']}"

    def get_form_list(self) -> OrderedDict[str, type[StepForm]]:
        if self._steps is None:
            steps: OrderedDict[str, type[StepForm]] = OrderedDict(HEAD_STEPS)
            for step in self.context.child_steps:
                steps[step] = ChildForm
            for step, form in TAIL_STEPS:
                if step == "review" and self._fees_shown():
                    steps[FEES_STEP] = FeesForm
                steps[step] = form
            self._steps = steps
        return self._steps.copy()

    @cached_property
    def fee_cart(self) -> HouseholdCart:
        # Waive first what a child eligible for free meals was charged since (the
        # cart itself only reads); no query when no child is eligible.
        household_waivers_apply(household=self.context.household, members=self.context.members)
        return household_cart(
            self.context.household,
            campaign=self.registration.campaign,
            members=self.context.members,
        )

    def _fees_shown(self) -> bool:
        """The fee step is there while the household has fees to pay, once the
        family went through it, and when Stripe sends the family back to it."""
        if FEES_STEP in self.context.drafts:
            return True
        if (
            self.request.method == "POST"
            and self.kwargs.get("step") == "review"
            and self.request.session.get(self._review_key())
        ):
            # Signing: the steps are those the family reviewed (the fee step, had it
            # been there, would have a draft). A fee added since does not hold the
            # signature up; ``registration_submit`` still checks required fees.
            return False
        if self.kwargs.get("step") == FEES_STEP and "checkout" in self.request.GET:
            return True  # back from Stripe, even once nothing is left to pay
        return bool(self.fee_cart.lines)

    def get_step_url(self, step: str) -> str:
        return reverse("registration_step", kwargs={"pk": self.registration.pk, "step": step})

    def get_form_kwargs(self, step: str | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"context": self.context}
        if step and step.startswith("child-"):
            child = self.context.child(int(step.removeprefix("child-")))
            if child is None:
                raise Http404
            kwargs["child"] = child
        if step == FEES_STEP:
            kwargs["cart"] = self.fee_cart
        return kwargs

    def get_form_initial(self, step: str) -> dict[str, Any]:
        if step == "review":
            reviewed = self._reviewed()
            return {"content_sha256": reviewed["sha256"] if reviewed else ""}
        if step == FEES_STEP and self.steps.current == FEES_STEP and self.request.method == "GET":
            return self._fees_initial
        return {}

    @cached_property
    def _fees_initial(self) -> dict[str, Any]:
        """The choices of a payment the family left unpaid: paying them again goes
        back to the same Stripe page."""
        return cart_initial(checkout_pending(self.context.household))

    # -- what the family reviewed ---------------------------------------------------
    # The review page keeps the content it showed in the session, with the drafts it
    # was built from; signing then stores exactly that content (after checking, under
    # the registration's lock, that no draft changed since). Without the session's
    # copy the content is built again and must match the page's digest.

    def _review_key(self) -> str:
        return f"{self.get_prefix(self.request, **self.kwargs)}_reviewed"

    def _reviewed(self) -> dict[str, Any] | None:
        if self.request.method == "POST":
            return self.request.session.get(self._review_key())
        return self._review_remember()

    def _review_remember(self) -> dict[str, Any]:
        content = self._content()
        invalid = next((step for step, _f, answered in self._answered_forms() if not answered), "")
        reviewed = {
            "sha256": content_sha256(content),
            "content": content,
            "drafts": drafts_fingerprint(self.context.drafts.values()),
            "invalid": invalid,
        }
        self.request.session[self._review_key()] = reviewed
        return reviewed

    def _step_title(self, step: str) -> str:
        """A step's name in the list of steps, without building its form (a form reads
        the household's records: nine forms per page were most of a page's time)."""
        if step.startswith("child-"):
            child = self.context.child(int(step.removeprefix("child-")))
            return child.student.full_name if child is not None else ""
        return str(self.get_form_list()[step].title)

    def _first_unfinished(self) -> str:
        """Where the family resumes: the first step without saved answers."""
        for step in self.get_form_list():
            if step not in self.context.drafts:
                return step
        return "review"

    def _resume_at(self) -> str:
        """The first unfinished step; after staff returned the registration, the step
        they asked to correct."""
        returned_to = self.registration.return_step
        if (
            self.registration.state == Registration.State.RETURNED
            and returned_to in self.get_form_list()
            and self._is_reachable(returned_to)
        ):
            return returned_to
        return self._first_unfinished()

    def _is_reachable(self, step: str) -> bool:
        """Steps are taken in order: no step after the first unfinished one."""
        steps = list(self.get_form_list())
        return steps.index(step) <= steps.index(self._first_unfinished())

    def _refill_storage(self) -> None:
        """The database is the truth; the session only caches it."""
        self.storage.data[self.storage.step_data_key] = {
            step: draft.data
            for step, draft in self.context.drafts.items()
            if step in self.get_form_list()
        }

    # -- requests ---------------------------------------------------------------

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self._refill_storage()
        step = kwargs.get("step")
        if step is None or step not in self.get_form_list():
            return redirect(self.get_step_url(self._resume_at()))
        if not self._is_reachable(step):
            messages.info(request, _("Please finish this step first."))
            return redirect(self.get_step_url(self._first_unfinished()))
        self.storage.current_step = step
        return self.render(self.get_form(step, data=self.storage.get_step_data(step)))

    def post(self, *args: Any, **kwargs: Any) -> HttpResponse:
        self._refill_storage()
        request = self.request
        goto = request.POST.get("wizard_goto_step")
        if goto and goto in self.get_form_list() and self._is_reachable(goto):
            return redirect(self.get_step_url(goto))
        management = ManagementForm(request.POST, prefix=self.prefix)
        if not management.is_valid():
            raise SuspiciousOperation("wizard management form missing or tampered with")
        step = management.cleaned_data["current_step"]
        if step not in self.get_form_list() or not self._is_reachable(step):
            log_refusal(request, f"wizard step {step!r} posted out of order")
            return redirect(self.get_step_url(self._first_unfinished()))
        self.storage.current_step = step
        form = self.get_form(step, data=request.POST, files=request.FILES)
        if step == FEES_STEP:
            assert isinstance(form, FeesForm)
            return self._fees_post(form)
        unchanged = "unchanged" in request.POST and form.offers_unchanged
        if unchanged:
            form = self.get_form(step, data=MultiValueDict(form.data_from_initial()))
        if not form.is_valid():
            if unchanged:
                messages.warning(
                    request,
                    _("Something is missing from our records. Please complete the fields marked."),
                )
            return self.render(form)
        if step == "review":
            return self._submit(form)
        try:
            self._save(step, form, unchanged)
        except VisitSlotTaken as refused:
            form.add_error("visit", str(refused))
            return self.render(form)
        except RegistrationClosed as refused:
            messages.error(request, str(refused))
            return redirect("registration_status", pk=self.registration.pk)
        if unchanged:
            messages.success(
                request, _("Thank you. Nothing changed in “%(step)s”.") % {"step": form.title}
            )
        return redirect(self.get_step_url(self.get_next_step(step)))

    def _save(self, step: str, form: StepForm, unchanged: bool) -> None:
        # Only the step's own fields: a post may carry any other names, of any size.
        own = {form.add_prefix(name) for name in form.fields}
        data = {k: v for k, v in form.data.lists() if k in own and k not in NOT_KEPT}
        if step == "address":
            address_change_save(
                registration=self.registration,
                guardian=self.context.guardian,
                data=data,
                answers=form.answers(),
                unchanged=unchanged,
                uploads=form.cleaned_data.get("proofs") or [],
                remove_proof_ids=[int(pk) for pk in form.cleaned_data.get("remove_proofs") or []],
                user=self.request.user,
                visit=form.visit_choice() if isinstance(form, AddressForm) else None,
            )
        else:
            registration_step_save(
                registration=self.registration,
                step=step,
                data=data,
                answers=form.answers(),
                unchanged=unchanged,
                user=self.request.user,
                read_only=bool(getattr(form, "read_only", False)),
            )

    # -- fees -------------------------------------------------------------------------

    def _fees_post(self, form: FeesForm) -> HttpResponse:
        """Pay now: the cart to Stripe, and back to this step afterwards. Continue: on
        to the review, unless the campaign wants its required fees paid first."""
        request = self.request
        household = self.context.household
        if form.paying:
            checkout = cart_pay(request, form, household, return_path=self.get_step_url(FEES_STEP))
            return to_stripe(checkout) if checkout is not None else self.render(form)
        cart_posted_refusal(request, form, self.fee_cart)  # another household's ids: 404
        if not form.is_valid():
            return self.render(form)
        campaign = self.registration.campaign
        if campaign.fees_before_submit:
            due = required_fees_unsettled(household=household, campaign=campaign)
            if due:
                form.add_error(None, self._fees_first_message(sum(due.values())))
                return self.render(form)
        try:
            registration_step_save(
                registration=self.registration,
                step=FEES_STEP,
                data=form.draft_data(),
                answers=form.answers(),
                unchanged=False,
                user=request.user,
            )
        except RegistrationClosed as refused:
            messages.error(request, str(refused))
            return redirect("registration_status", pk=self.registration.pk)
        return redirect(self.get_step_url(self.get_next_step(FEES_STEP)))

    @staticmethod
    def _fees_first_message(due_cents: int) -> str:
        return _(
            "The required fees must be paid before you can continue: %(amount)s is still "
            "due. A fee that was waived counts as paid."
        ) % {"amount": money(due_cents)}

    def _fees_context(self) -> dict[str, Any]:
        """The payment Stripe sent the family back with (only this household's), and
        whether the required fees come first."""
        shown = None
        reference = self.request.GET.get("checkout", "")
        if reference:
            checkout = (
                Checkout.objects.filter(
                    pk=int(reference) if reference.isdigit() else 0,
                    household=self.context.household,
                )
                .prefetch_related("lines")
                .first()
            )
            if checkout is None:
                log_refusal(self.request, "checkout of another household in the wizard")
                raise Http404
            shown = checkout_shown(checkout, cancelled=self.request.GET.get("cancelled") == "1")
        return {
            "fee_checkout": shown,
            "fees_required_first": self.registration.campaign.fees_before_submit
            and self.fee_cart.required_due_cents > 0,
        }

    # -- review and submit --------------------------------------------------------

    def _answered_forms(self) -> list[tuple[str, StepForm, StepForm | None]]:
        """Each step but the review: the form as on file, and the saved answers
        cleaned (None when there are none, or they no longer hold)."""
        result = []
        for step in self.get_form_list():
            if step == "review":
                continue
            on_file = self.get_form(step)
            draft = self.context.drafts.get(step)
            answered = None
            if draft is not None:
                answered = self.get_form(step, data=MultiValueDict(draft.data))
                if not answered.is_valid():
                    answered = None
            result.append((step, on_file, answered))
        return result

    def _content(self) -> dict[str, Any]:
        """Everything the guardian reviews and signs, as the confirmation shows it."""
        if not hasattr(self, "_content_cache"):
            household = self.context.household
            self._content_cache = {
                "year": self.context.campaign.school_year.label,
                "household": household.address_lines,
                "sections": [
                    {
                        "step": step,
                        "title": str(on_file.title),
                        "rows": on_file.review_rows(answered),
                        "unchanged": bool(
                            self.context.drafts.get(step) and self.context.drafts[step].unchanged
                        ),
                    }
                    for step, on_file, answered in self._answered_forms()
                ],
            }
        return self._content_cache

    def _submit(self, form: StepForm) -> HttpResponse:
        request = self.request
        if self.registration.state == Registration.State.RETURNED:
            # Saving a step reopens a returned registration; signing before that
            # would only be refused as "already submitted".
            step = self._resume_at()
            messages.error(request, _("Please check this step again before signing."))
            return redirect(self.get_step_url(step if step != "review" else self.steps.first))
        changed = _(
            "Your answers changed since this page was opened, perhaps on another "
            "device. Please review them again before signing."
        )
        reviewed = self._reviewed()
        if reviewed is None or reviewed["sha256"] != form.cleaned_data["content_sha256"]:
            reviewed = self._review_remember()
            if reviewed["sha256"] != form.cleaned_data["content_sha256"]:
                messages.warning(request, changed)
                return redirect(self.get_step_url("review"))
        if reviewed["invalid"]:
            messages.error(request, _("Please check this step again before signing."))
            return redirect(self.get_step_url(reviewed["invalid"]))
        campaign = self.registration.campaign
        if campaign.fees_before_submit and FEES_STEP in self.get_form_list():
            due = required_fees_unsettled(household=self.context.household, campaign=campaign)
            if due:
                messages.error(request, self._fees_first_message(sum(due.values())))
                return redirect(self.get_step_url(FEES_STEP))
        try:
            registration_submit(
                registration=self.registration,
                signature=Signature(
                    guardian=self.context.guardian,
                    signed_name=form.cleaned_data["signed_name"],
                    ip_address=client_ip(request),
                    user_agent=request.headers.get("User-Agent", ""),
                    language=self.context.language,
                ),
                content=reviewed["content"],
                drafts=reviewed["drafts"],
                user=request.user,
            )
        except AnswersChanged:
            request.session.pop(self._review_key(), None)
            messages.warning(request, changed)
            return redirect(self.get_step_url("review"))
        except TransitionRefused as refused:
            messages.error(request, str(refused))
            return redirect("registration_status", pk=self.registration.pk)
        messages.success(
            request,
            _("Thank you. Your registration is submitted; we have emailed you a confirmation."),
        )
        return redirect("registration_status", pk=self.registration.pk)

    # -- rendering ----------------------------------------------------------------

    def get_context_data(self, form: StepForm, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(form=form, **kwargs)
        steps = []
        titles = {step: self._step_title(step) for step in self.get_form_list()}
        reachable_until = list(self.get_form_list()).index(self._first_unfinished())
        for index, (step, title) in enumerate(titles.items()):
            steps.append(
                {
                    "name": step,
                    "title": title,
                    "url": self.get_step_url(step),
                    "done": step in self.context.drafts,
                    "reachable": index <= reachable_until,
                    "current": step == self.steps.current,
                }
            )
        previous = self.get_prev_step(self.steps.current)
        context.update(
            registration=self.registration,
            household=self.context.household,
            wizard_context=self.context,
            progress=steps,
            step_number=self.steps.step1,
            step_count=self.steps.count,
            step_name=self.steps.current,
            step_kind="child" if self.steps.current.startswith("child-") else self.steps.current,
            previous_url=self.get_step_url(previous) if previous else None,
            has_draft=self.steps.current in self.context.drafts,
            content=self._reviewed()["content"] if self.steps.current == "review" else None,
        )
        if self.steps.current == FEES_STEP:
            context.update(self._fees_context())
        return context


@login_required
def registration_start(request: HttpRequest) -> HttpResponse:
    """/register/: straight into the wizard when the guardian has one household."""
    guardian = _own_guardian(request)
    campaign = workflow_selectors.campaign_latest()
    registrations = (
        workflow_selectors.registrations_of_guardian(guardian, campaign) if campaign else []
    )
    if len(registrations) == 1:
        return redirect("registration_resume", pk=registrations[0].pk)
    if not registrations:
        messages.info(request, _("Registration for next school year has not opened yet."))
        return redirect("guardian_home")
    return render(
        request,
        "registration/wizard/choose.html",
        {"registrations": registrations, "campaign": campaign},
    )


@login_required
def registration_status(request: HttpRequest, pk: int) -> HttpResponse:
    """Where a registration stands, and its signed confirmations."""
    guardian = _own_guardian(request)
    registration = registration_of_guardian(guardian, pk)
    submissions = list(
        Submission.objects.filter(registration=registration)
        .select_related("confirmation", "guardian")
        .order_by("-version")
    )
    return render(
        request,
        "registration/wizard/status.html",
        {
            "registration": registration,
            "submissions": submissions,
            "decisions": workflow_selectors.decisions_of_registration(registration),
            "running": registration.campaign.is_running(),
        },
    )


@login_required
def confirmation_download(request: HttpRequest, pk: int, version: int) -> FileResponse:
    guardian = _own_guardian(request)
    registration = registration_of_guardian(guardian, pk)
    submission = (
        Submission.objects.filter(registration=registration, version=version)
        .select_related("confirmation")
        .first()
    )
    confirmation = getattr(submission, "confirmation", None) if submission else None
    if confirmation is None:
        raise Http404
    filename = _("registration-%(year)s-v%(version)s.pdf") % {
        "year": registration.campaign.school_year.label,
        "version": version,
    }
    return FileResponse(
        confirmation.pdf.open("rb"),
        as_attachment=True,
        filename=filename,
        content_type="application/pdf",
    )


@login_required
def proof_download(request: HttpRequest, pk: int, proof_pk: int) -> FileResponse:
    """A proof of residence, to the household that sent it, as a download only."""
    guardian = _own_guardian(request)
    registration = registration_of_guardian(guardian, pk)
    proof = (
        AddressProof.objects.filter(pk=proof_pk, request__household_id=registration.household_id)
        .select_related("request")
        .first()
    )
    if proof is None:
        log_refusal(request, "proof of another household")
        raise Http404
    response = FileResponse(
        proof.file.open("rb"),
        as_attachment=True,
        filename=proof.original_name,
        content_type=proof.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


registration_wizard = RegistrationWizard.as_view(url_name="registration_step")
