"""The local TEST checkout: the page of a local session (``STRIPE_MODE`` "local").

Without a Stripe key the embedded demo still takes families through a whole payment.
``payments.stripe_gateway`` sends them here instead of to Stripe's page; here they pay,
fail or cancel, and the local Stripe (``payments.local_stripe``) sends what Stripe would
send, signed, to the real webhook view. The page says on every view, in words, that no
real money moves. With a Stripe key the page does not exist (404).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from payments import local_stripe
from payments.models import Checkout
from payments.money import money
from registration import selectors
from registration.access import log_refusal


class LocalCheckoutForm(forms.Form):
    """Which button was pressed."""

    action = forms.ChoiceField(
        label=_("What happens to this test payment"),
        choices=[("pay", _("Pay")), ("fail", _("Fail")), ("cancel", _("Cancel"))],
        error_messages={"required": _("Please choose one of the three buttons.")},
    )


def _checkout_of_guardian(request: HttpRequest, session_id: str) -> Checkout:
    """The checkout of a local session, if it belongs to one of the signed-in
    guardian's households; 404 (and a line in the security log) otherwise."""
    guardian = selectors.guardian_for(request.user)  # type: ignore[arg-type]
    checkout = None
    if guardian is not None and local_stripe.is_local_session(session_id):
        checkout = (
            Checkout.objects.filter(
                stripe_session_id=session_id, household__householdguardian__guardian=guardian
            )
            .select_related("household")
            .first()
        )
    if checkout is None:
        log_refusal(request, "test checkout of another household or none")
        raise Http404
    return checkout


@login_required
@require_http_methods(["GET", "POST"])
def test_checkout(request: HttpRequest, session_id: str) -> HttpResponse:
    """Show the lines and the total, and three buttons: Pay, Fail, Cancel."""
    if settings.STRIPE_MODE != "local":
        raise Http404
    checkout = _checkout_of_guardian(request, session_id)
    success_url, cancel_url = local_stripe.return_urls(checkout)
    is_open = checkout.state == Checkout.State.OPEN
    expired = is_open and checkout.expires_at <= timezone.now()
    form = LocalCheckoutForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        action = form.cleaned_data["action"]
        if expired:
            # Stripe would have said so when its time ran out; the local Stripe says
            # it the first time anyone acts on the page after that.
            local_stripe.checkout_expired_deliver(checkout=checkout)
            return redirect(cancel_url)
        if action == "cancel" or checkout.state == Checkout.State.EXPIRED:
            return redirect(cancel_url)
        if is_open and action == "pay":
            local_stripe.checkout_paid_deliver(checkout=checkout)
        elif is_open and action == "fail":
            local_stripe.checkout_failed_deliver(checkout=checkout)
        # Already paid or failed: a second press changes nothing; the status page
        # says where the payment stands.
        return redirect(success_url)
    ended = expired or checkout.state == Checkout.State.EXPIRED
    lines = checkout.lines.select_related("student", "fee").order_by("pk")
    rows = [
        {
            "child": line.student.full_name,
            "fee": line.fee.family_title,
            "amount": money(line.amount_cents),
        }
        for line in lines
    ]
    return render(
        request,
        "payments/test_checkout.html",
        {
            "checkout": checkout,
            "rows": rows,
            "total": money(checkout.total_cents),
            "form": form,
            "open": is_open and not expired,
            "expired": ended,
            "continue_url": cancel_url if ended else success_url,
        },
        status=400 if form.errors else 200,
    )
