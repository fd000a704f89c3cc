"""The baseline of ``bench/webhook.py``: the least a Stripe webhook delivery can cost
in this project. One view behind the project's whole middleware stack that verifies
the signature on the raw body (and parses the event) and answers 200, storing and
changing nothing. Not a benchmark itself: bench/run.py skips ``_`` files."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from payments.stripe_gateway import WebhookSignatureInvalid, webhook_event_verify


@csrf_exempt
def verify_only(request: HttpRequest) -> HttpResponse:
    try:
        webhook_event_verify(
            payload=request.body, signature=request.headers.get("Stripe-Signature")
        )
    except WebhookSignatureInvalid:
        return HttpResponseBadRequest(b"invalid signature")
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("payments/stripe/webhook/", verify_only)]
