"""The guardian's fee pages: the cart ("Fees") and the page Stripe sends the family
back to.

Amounts are never taken from the browser: the form posts which fees and the lunch
amounts chosen, and ``checkout_create`` computes the rest. The page Stripe returns
to only shows where a checkout stands; only the verified webhook marks it paid.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache

from payments import stripe_gateway
from payments.cart import (
    HouseholdCart,
    cart_keys_foreign,
    checkout_pending,
    checkouts_paid,
    household_cart,
)
from payments.forms import LINES, CartFields, CartForm, LineChoiceField, cart_initial
from payments.models import Checkout, CheckoutLine
from payments.money import money
from payments.services import CheckoutRefused, checkout_create, household_waivers_apply
from registration import selectors
from registration.access import log_refusal, refuse
from registration.models import Guardian, Household

# How the return page checks on an open checkout: every few seconds, for some minutes.
POLL_SECONDS = 5
POLL_TIMES = 60


def _guardian(request: HttpRequest) -> Guardian:
    guardian = selectors.guardian_for(request.user)  # type: ignore[arg-type]
    if guardian is None:
        raise refuse(request, "fees page by a non-guardian")
    return guardian


def _households(guardian: Guardian) -> list[Household]:
    return list(
        Household.objects.filter(householdguardian__guardian=guardian).order_by("sourced_id")
    )


def household_for_guardian(request: HttpRequest, guardian: Guardian, pk: int) -> Household:
    """Household ``pk`` if the guardian belongs to it; 404 (logged) otherwise."""
    household = Household.objects.filter(pk=pk, householdguardian__guardian=guardian).first()
    if household is None:
        log_refusal(request, "fees of another household")
        raise Http404
    return household


def checkout_for_guardian(request: HttpRequest, guardian: Guardian, pk: int) -> Checkout:
    """Checkout ``pk`` with its lines and receipt if it is one of the guardian's
    households'; 404 (logged) otherwise."""
    checkout = (
        Checkout.objects.filter(pk=pk, household__householdguardian__guardian=guardian)
        .select_related("household")
        .prefetch_related("lines")
        .first()
    )
    if checkout is None:
        log_refusal(request, "checkout of another household")
        raise Http404
    return checkout


def cart_posted_refusal(request: HttpRequest, form: CartFields, cart: HouseholdCart) -> bool:
    """Refuse a post naming a child or fee the household's page never offered (404,
    logged, nothing created). Returns whether some posted fees are the household's
    but no longer open (the page says so)."""
    unknown = form.unknown_keys()
    if not unknown:
        return False
    reason = cart_keys_foreign(cart, unknown)
    if reason:
        log_refusal(request, reason)
        raise Http404
    return True


def cart_pay(
    request: HttpRequest,
    form: CartFields,
    household: Household,
    return_path: str | None = None,
) -> Checkout | None:
    """Start paying a posted cart: refuse another household's ids (404), explain
    fees no longer open, check the form, then ``checkout_create``. On any refusal
    the message goes on the form and None comes back, so that the page shows it
    with every choice kept."""
    stale = cart_posted_refusal(request, form, form.cart)
    valid = form.is_valid()
    if stale:
        if LINES not in form.errors:
            form.add_error(None, LineChoiceField.default_error_messages["invalid_choice"])
        return None
    if not valid:
        return None
    try:
        return checkout_create(
            household=household,
            lines=form.checkout_lines(),
            user=request.user,
            return_path=return_path,
        )
    except CheckoutRefused as refused:
        form.add_error(None, refused.message)
    except stripe_gateway.PaymentServiceError as error:
        form.add_error(None, error.message)
        form.problem_target = form.pay_button_id  # the way to try again
    return None


def to_stripe(checkout: Checkout) -> HttpResponse:
    """303: the browser goes to Stripe's page with a GET, whatever it posted."""
    response = HttpResponseRedirect(checkout.stripe_session_url)
    response.status_code = 303
    return response


# -- the checkout as the family sees it ---------------------------------------------


@dataclass(frozen=True)
class CheckoutShown:
    checkout: Checkout
    lines: list[tuple[CheckoutLine, str]]  # each line with its amount as shown
    total: str
    receipt_url: str
    cancelled: bool  # the family left Stripe's page without paying

    @property
    def state(self) -> str:
        return str(self.checkout.state)

    @property
    def waiting(self) -> bool:
        return self.state == Checkout.State.OPEN and not self.cancelled

    @property
    def poll_url(self) -> str:
        return reverse("checkout_status", args=[self.checkout.pk])


def receipt_url(checkout: Checkout) -> str:
    """The receipt's download of a paid checkout (its view renders the PDF if the
    payment's own rendering has not run yet); empty otherwise."""
    if checkout.state != Checkout.State.PAID:
        return ""
    try:
        return reverse("receipt_download", args=[checkout.pk])
    except NoReverseMatch:
        return ""


def checkout_shown(checkout: Checkout, *, cancelled: bool = False) -> CheckoutShown:
    return CheckoutShown(
        checkout=checkout,
        lines=[(line, money(line.amount_cents)) for line in checkout.lines.all()],
        total=money(checkout.total_cents),
        receipt_url=receipt_url(checkout),
        cancelled=cancelled and checkout.state == Checkout.State.OPEN,
    )


# -- pages --------------------------------------------------------------------------


@login_required
def fees(request: HttpRequest) -> HttpResponse:
    """/payments/fees/: the household's cart, or a choice of household first."""
    guardian = _guardian(request)
    households = _households(guardian)
    if len(households) == 1:
        return redirect("guardian_fees_household", pk=households[0].pk)
    return render(request, "payments/fees_choose.html", {"households": households})


@login_required
def fees_household(request: HttpRequest, pk: int) -> HttpResponse:
    """Every open fee of every child of the household, and one "Pay" for the lot."""
    guardian = _guardian(request)
    household = household_for_guardian(request, guardian, pk)
    # A child eligible for free meals who joined a class after its trip was made
    # sees the trip waived, not due (the cart itself only reads).
    household_waivers_apply(household=household)
    cart = household_cart(household)
    pending = None
    if request.method == "POST":
        form = CartForm(request.POST, cart=cart)
        checkout = cart_pay(request, form, household)
        if checkout is not None:
            return to_stripe(checkout)
    else:
        pending = checkout_pending(household)
        form = CartForm(cart=cart, initial=cart_initial(pending))
    paid = [checkout_shown(checkout) for checkout in checkouts_paid(household)]
    return render(
        request,
        "payments/fees.html",
        {
            "household": household,
            "several_households": Household.objects.filter(householdguardian__guardian=guardian)
            .exclude(pk=household.pk)
            .exists(),
            "cart": cart,
            "form": form,
            "pending": pending,
            "paid": paid,
        },
    )


@never_cache
@login_required
def checkout_status(request: HttpRequest, pk: int) -> HttpResponse:
    """Where Stripe sends the family back, paid or not: the checkout's state and its
    lines. It never changes anything (the webhook does). ``X-Requested-With: fetch``
    answers the state alone, for the page's own check while it waits."""
    guardian = _guardian(request)
    checkout = checkout_for_guardian(request, guardian, pk)
    if request.headers.get("X-Requested-With") == "fetch":
        return JsonResponse({"state": checkout.state})
    shown = checkout_shown(checkout, cancelled=request.GET.get("cancelled") == "1")
    return render(
        request,
        "payments/checkout_status.html",
        {
            "shown": shown,
            "household": checkout.household,
            "cart_url": reverse("guardian_fees_household", args=[checkout.household_id]),
            "poll_seconds": POLL_SECONDS,
            "poll_times": POLL_TIMES,
        },
    )
