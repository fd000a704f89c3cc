"""Stripe's webhook. The families' pages are in ``guardian_views``, the staff's in
``staff_views``, the local TEST checkout in ``test_checkout``."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.security_log import path_shown
from payments import stripe_gateway
from payments.webhooks import stripe_event_process, stripe_event_store
from registration.throttle import client_ip, throttle_allows

security_log = logging.getLogger("security")


@csrf_exempt  # Stripe cannot send a CSRF token: the signature authenticates it
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Verify the delivery's signature on the raw body, store the event once, act
    on it once. 400 for a missing, wrong or stale signature (nothing is stored);
    200 for an event stored before (nothing changes); 503 when acting on it needs
    Stripe and Stripe did not answer (Stripe delivers it again later); 429 when one
    address sends more than ``STRIPE_WEBHOOK_IP_LIMITS`` allows."""
    ip_address = client_ip(request)
    if not throttle_allows(
        "stripe-webhook", ip_address or "unknown", settings.STRIPE_WEBHOOK_IP_LIMITS
    ):
        security_log.warning("refused: Stripe webhook, too many deliveries; ip %s", ip_address)
        request.refusal_logged = True  # type: ignore[attr-defined]  # logged once, here
        response = HttpResponse(b"too many requests", status=429, content_type="text/plain")
        response["Retry-After"] = "60"
        return response
    try:
        event = stripe_gateway.webhook_event_verify(
            payload=request.body, signature=request.headers.get("Stripe-Signature")
        )
    except stripe_gateway.WebhookSignatureInvalid as problem:
        security_log.warning(
            "refused: Stripe webhook, %s; path %s, ip %s",
            problem,
            path_shown(request),
            client_ip(request),
        )
        return HttpResponseBadRequest(b"invalid signature", content_type="text/plain")
    stripe_event_store(event=event)
    try:
        outcome = stripe_event_process(event_id=str(event["id"]), payload=event)
    except stripe_gateway.PaymentServiceError:
        return JsonResponse({"received": True, "outcome": "retry later"}, status=503)
    return JsonResponse({"received": True, "outcome": outcome})
