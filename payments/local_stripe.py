"""The local Stripe of an installation without a Stripe key (``STRIPE_MODE`` "local").

``payments.stripe_gateway`` stays the one entry point: in local mode its functions
answer from here instead of calling Stripe, with the same Stripe-shaped objects. A
session's page is our own TEST checkout (``payments.test_checkout``), where a guardian
pays, fails or cancels without any money moving. What Stripe would then send is built
here as Stripe-shaped events, signed with ``STRIPE_WEBHOOK_SECRET`` as Stripe signs
them, and handed to the real webhook view, which verifies and acts on them exactly as
it does for Stripe: the ledger, the receipt and every state change run the same code.

Every id is derived from our own row (``cs_test_local_…``, ``pi_test_local_…``,
``re_test_local_…``), and so is every event id: the same action on the same checkout
or refund is the same event, which the webhook acts on once (a double click pays once).
Nothing here talks to the network.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from django.conf import settings
from django.core.handlers.wsgi import WSGIRequest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from payments.models import Checkout, Refund

if TYPE_CHECKING:
    from payments.models import CheckoutLine

log = logging.getLogger("payments")

PREFIX = "test_local"
# The API version the events say they were written for (the one our objects follow).
API_VERSION = "2025-01-27.acacia"


class LocalDeliveryRefused(Exception):
    """The webhook refused an event of ours: a bug or a changed secret, never the
    family's doing."""


def session_id_of(checkout: Checkout) -> str:
    return f"cs_{PREFIX}_{checkout.reference.hex}"


def payment_intent_of(checkout: Checkout) -> str:
    return f"pi_{PREFIX}_{checkout.reference.hex}"


def charge_of(checkout: Checkout) -> str:
    return f"ch_{PREFIX}_{checkout.reference.hex}"


def refund_id_of(refund: Refund) -> str:
    return f"re_{PREFIX}_{refund.reference.hex}"


def is_local_session(session_id: str) -> bool:
    return session_id.startswith(f"cs_{PREFIX}_")


def is_local_payment(payment_intent: str) -> bool:
    """A payment made on the TEST checkout: no money moved."""
    return payment_intent.startswith(f"pi_{PREFIX}_")


# -- sessions --------------------------------------------------------------------------


def _page_url(session_id: str, success_url: str, cancel_url: str) -> str:
    """The session's page: our TEST checkout. It keeps where to send the family
    afterwards, as Stripe keeps them with the session; the page reads them back from
    the URL we stored, never from the browser."""
    path = reverse("test_checkout", args=[session_id])
    query = urlencode({"success_url": success_url, "cancel_url": cancel_url})
    return f"{settings.SITE_URL.rstrip('/')}{path}?{query}"


def return_urls(checkout: Checkout) -> tuple[str, str]:
    """(success URL, cancel URL) of a local session, from the page URL we stored."""
    query = parse_qs(urlsplit(checkout.stripe_session_url).query)
    home = f"{settings.SITE_URL.rstrip('/')}{reverse('guardian_home')}"
    success = (query.get("success_url") or [home])[0]
    cancel = (query.get("cancel_url") or [home])[0]
    return success, cancel


def _metadata(checkout: Checkout) -> dict[str, str]:
    from payments.stripe_gateway import checkout_metadata

    return checkout_metadata(checkout)


def _session(
    checkout: Checkout,
    *,
    status: str,
    payment_status: str,
    url: str,
    success_url: str,
    cancel_url: str,
    customer_email: str = "",
) -> dict[str, Any]:
    """A checkout session as Stripe writes one (the fields our code reads, and the
    usual ones around them)."""
    started = status != "open" or payment_status == "paid"
    return {
        "id": checkout.stripe_session_id or session_id_of(checkout),
        "object": "checkout.session",
        "livemode": False,
        "mode": "payment",
        "amount_subtotal": checkout.total_cents,
        "amount_total": checkout.total_cents,
        "currency": checkout.currency,
        "client_reference_id": str(checkout.pk),
        "metadata": _metadata(checkout),
        "created": int(checkout.created_at.timestamp()),
        "expires_at": int(checkout.expires_at.timestamp()),
        "customer_email": customer_email or None,
        "customer_details": {"email": customer_email} if customer_email else None,
        "payment_method_types": ["card"],
        "payment_intent": payment_intent_of(checkout) if started and status != "expired" else None,
        "payment_status": payment_status,
        "status": status,
        "success_url": success_url,
        "cancel_url": cancel_url,
        "url": url if status == "open" else None,
    }


def session_create(
    *,
    checkout: Checkout,
    lines: Sequence[CheckoutLine],
    success_url: str,
    cancel_url: str,
    customer_email: str = "",
) -> dict[str, Any]:
    """A new open session for ``checkout``: the same one again for the same checkout
    (as Stripe answers a repeated idempotency key)."""
    session_id = session_id_of(checkout)
    if sum(line.amount_cents for line in lines) != checkout.total_cents:
        raise ValueError(f"checkout {checkout.pk}: its lines do not add up to its total")
    return {
        **_session(
            checkout,
            status="open",
            payment_status="unpaid",
            url=_page_url(session_id, success_url, cancel_url),
            success_url=success_url,
            cancel_url=cancel_url,
            customer_email=customer_email,
        ),
        "id": session_id,
    }


def _session_now(checkout: Checkout) -> dict[str, Any]:
    """What the local Stripe knows of a session: what our checkout says."""
    success, cancel = return_urls(checkout)
    state = checkout.state
    if state == Checkout.State.PAID:
        status, payment_status = "complete", "paid"
    elif state == Checkout.State.FAILED:
        status, payment_status = "complete", "unpaid"
    elif state == Checkout.State.EXPIRED or checkout.expires_at <= timezone.now():
        status, payment_status = "expired", "unpaid"
    else:
        status, payment_status = "open", "unpaid"
    return _session(
        checkout,
        status=status,
        payment_status=payment_status,
        url=checkout.stripe_session_url,
        success_url=success,
        cancel_url=cancel,
    )


def _checkout_of(session_id: str) -> Checkout | None:
    if not is_local_session(session_id):
        return None
    return Checkout.objects.filter(stripe_session_id=session_id).first()


def session_retrieve(*, session_id: str) -> dict[str, Any] | None:
    """The session, or None when there is no such local session."""
    checkout = _checkout_of(session_id)
    return _session_now(checkout) if checkout is not None else None


def session_expire(*, session_id: str) -> dict[str, Any] | None:
    """Stop an open session taking payment: it says expired from now on (our caller
    expires the checkout). None when there is no such session; a ``ValueError``,
    as Stripe refuses it, when the session is no longer open."""
    checkout = _checkout_of(session_id)
    if checkout is None:
        return None
    session = _session_now(checkout)
    if session["status"] != "open":
        raise ValueError(f"session {session_id} is {session['status']}, not open")
    return {**session, "status": "expired", "url": None, "payment_intent": None}


# -- refunds ---------------------------------------------------------------------------


def _refund(refund: Refund, *, status: str) -> dict[str, Any]:
    from payments.stripe_gateway import checkout_metadata

    checkout = refund.checkout
    return {
        "id": refund.stripe_refund_id or refund_id_of(refund),
        "object": "refund",
        "amount": refund.amount_cents,
        "currency": checkout.currency,
        "charge": charge_of(checkout),
        "payment_intent": checkout.stripe_payment_intent,
        "created": int(refund.created_at.timestamp()),
        "metadata": {
            **checkout_metadata(checkout),
            "refund_id": str(refund.pk),
            "refund_reference": str(refund.reference),
        },
        "reason": "requested_by_customer",
        "status": status,
    }


def refund_create(*, refund: Refund, payment_intent: str) -> dict[str, Any] | None:
    """A pending refund of a local payment; once the caller's transaction commits,
    the local Stripe says it succeeded (``refund.updated``, then ``charge.refunded``),
    through the webhook. None when the payment is not a local one."""
    checkout = refund.checkout
    if not payment_intent or payment_intent != payment_intent_of(checkout):
        return None
    refund_id = refund.pk

    def deliver_after_commit() -> None:  # named: Django logs a failure by its name
        refund_succeeded_deliver(refund_id=refund_id)

    transaction.on_commit(deliver_after_commit, robust=True)
    return _refund(refund, status="pending")


_REFUND_STATUS: dict[str, str] = {
    Refund.State.PENDING: "pending",
    Refund.State.SUCCEEDED: "succeeded",
    Refund.State.FAILED: "failed",
}


def refunds_of_charge(*, charge_id: str) -> list[dict[str, Any]]:
    """Every refund of a local charge, as the local Stripe knows them."""
    return [
        _refund(refund, status=_REFUND_STATUS.get(refund.state, "pending"))
        for refund in Refund.objects.filter(stripe_charge=charge_id)
        .select_related("checkout")
        .order_by("pk")
    ]


def refund_succeeded_deliver(*, refund_id: int) -> list[str]:
    """The local Stripe gave the money back: ``refund.updated`` (succeeded), then the
    charge's ``charge.refunded`` listing its refunds. Returns the webhook's outcomes."""
    refund = Refund.objects.select_related("checkout").get(pk=refund_id)
    obj = _refund(refund, status="succeeded")
    key = refund.reference.hex
    outcomes = [event_deliver(event_build("refund.updated", obj, key=f"{key}_succeeded"))]
    checkout = refund.checkout
    refunds = [
        _refund(other, status="succeeded")
        for other in Refund.objects.filter(checkout=checkout, state=Refund.State.SUCCEEDED)
        .exclude(pk=refund.pk)
        .order_by("pk")
    ] + [obj]
    refunded = sum(r["amount"] for r in refunds)
    charge = {
        "id": charge_of(checkout),
        "object": "charge",
        "livemode": False,
        "amount": checkout.total_cents,
        "amount_captured": checkout.total_cents,
        "amount_refunded": refunded,
        "captured": True,
        "currency": checkout.currency,
        "metadata": _metadata(checkout),
        "paid": True,
        "payment_intent": checkout.stripe_payment_intent,
        "refunded": refunded >= checkout.total_cents,
        "status": "succeeded",
        "refunds": {"object": "list", "data": refunds, "has_more": False},
    }
    outcomes.append(event_deliver(event_build("charge.refunded", charge, key=f"{key}_charge")))
    return outcomes


# -- what the TEST checkout page does --------------------------------------------------


def checkout_paid_deliver(*, checkout: Checkout) -> str:
    """The family pressed Pay: ``checkout.session.completed``, paid."""
    success, cancel = return_urls(checkout)
    session = _session(
        checkout,
        status="complete",
        payment_status="paid",
        url="",
        success_url=success,
        cancel_url=cancel,
    )
    key = checkout.reference.hex
    return event_deliver(event_build("checkout.session.completed", session, key=f"{key}_paid"))


def checkout_failed_deliver(*, checkout: Checkout) -> list[str]:
    """A bank payment that fails: ``completed`` (unpaid, the debit on its way), then
    ``async_payment_failed``."""
    success, cancel = return_urls(checkout)
    session = _session(
        checkout,
        status="complete",
        payment_status="unpaid",
        url="",
        success_url=success,
        cancel_url=cancel,
    )
    key = checkout.reference.hex
    return [
        event_deliver(event_build("checkout.session.completed", session, key=f"{key}_unpaid")),
        event_deliver(
            event_build("checkout.session.async_payment_failed", session, key=f"{key}_failed")
        ),
    ]


def checkout_expired_deliver(*, checkout: Checkout) -> str:
    """The session's time ran out: ``checkout.session.expired``."""
    success, cancel = return_urls(checkout)
    session = _session(
        checkout,
        status="expired",
        payment_status="unpaid",
        url="",
        success_url=success,
        cancel_url=cancel,
    )
    key = checkout.reference.hex
    return event_deliver(event_build("checkout.session.expired", session, key=f"{key}_expired"))


# -- events ----------------------------------------------------------------------------


def event_build(type_: str, obj: dict[str, Any], *, key: str) -> dict[str, Any]:
    """An event as Stripe sends one. Its id comes from ``key``: the same action on
    the same row is the same event."""
    return {
        "id": f"evt_{PREFIX}_{key}",
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
        "data": {"object": obj},
    }


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """``Stripe-Signature`` as Stripe computes it: t=…,v1=HMAC-SHA256(secret, "{t}.{payload}")."""
    t = int(time.time()) if timestamp is None else timestamp
    signed = f"{t}.".encode() + payload
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event_deliver(event: dict[str, Any]) -> str:
    """POST ``event``, signed with our webhook secret, to the real webhook view (in
    this process, as a request of its own); returns what the webhook did with it."""
    from payments.views import stripe_webhook

    body = json.dumps(event).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": reverse("stripe_webhook"),
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_STRIPE_SIGNATURE": signature_header(body, settings.STRIPE_WEBHOOK_SECRET),
        "HTTP_USER_AGENT": "Stripe/1.0 (local TEST checkout)",
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    response = stripe_webhook(WSGIRequest(environ))
    if response.status_code != 200:
        log.error(
            "local Stripe: the webhook answered %s to %s %s",
            response.status_code,
            event["type"],
            event["id"],
        )
        raise LocalDeliveryRefused(f"{event['type']} {event['id']}: {response.status_code}")
    outcome = str(json.loads(response.content).get("outcome", ""))
    log.info("local Stripe: %s %s: %s", event["type"], event["id"], outcome)
    return outcome
