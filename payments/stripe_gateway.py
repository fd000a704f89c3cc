"""The only module that talks to Stripe.

One function per API call. Every create carries an idempotency key derived from our
own row, so that a retry (ours, or the library's after a timeout) can never create
a second session or refund. Amounts are integer cents. Whatever goes wrong with
Stripe comes out as a ``PaymentServiceError`` whose ``message`` can be shown to a
guardian as it is; the details go to the log, never a key.

``STRIPE_API_BASE`` points the client elsewhere than api.stripe.com: the tests' local
double, or the embedded demo's local checkout.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import stripe
from django.conf import settings
from django.utils.translation import gettext

if TYPE_CHECKING:
    from payments.models import Checkout, CheckoutLine, Refund

log = logging.getLogger("payments")

# Stripe signs each delivery with the time it sent it; older deliveries are refused
# (replays). Five minutes is Stripe's own recommendation.
WEBHOOK_TOLERANCE_SECONDS = 300


class PaymentServiceError(Exception):
    """Stripe could not do what we asked. ``message`` is safe to show a guardian."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class PaymentServiceUnavailable(PaymentServiceError):
    """Stripe did not answer, or answered with an error of its own: try again later.
    A retry is safe: it sends the same idempotency key."""


class PaymentServiceRefused(PaymentServiceError):
    """Stripe refused the request as made (it will refuse it again)."""


class WebhookSignatureInvalid(Exception):
    """A webhook delivery without a valid, recent signature. The message names what
    was wrong, never the secret or the signature."""


@dataclass(frozen=True)
class GatewaySession:
    id: str
    url: str
    status: str  # open, complete, expired
    payment_status: str  # paid, unpaid, no_payment_required
    payment_intent: str
    amount_total: int | None
    client_reference_id: str


@dataclass(frozen=True)
class GatewayRefund:
    id: str
    status: str  # pending, requires_action, succeeded, failed, canceled
    amount: int
    charge: str
    payment_intent: str
    metadata: dict[str, str]


@functools.lru_cache(maxsize=4)
def _client(api_key: str, api_base: str, timeout: float, retries: int) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        http_client=stripe.RequestsClient(timeout=timeout),
        max_network_retries=retries,
    )


def client() -> stripe.StripeClient:
    """The client for the current settings (a few clients are kept: tests change them)."""
    return _client(
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE,
        settings.STRIPE_TIMEOUT_SECONDS,
        settings.STRIPE_MAX_NETWORK_RETRIES,
    )


def _unavailable() -> str:
    return gettext("The payment service did not answer; please try again.")


def _refused() -> str:
    return gettext(
        "The payment service could not take this request; please try again later "
        "or contact the school office."
    )


def _translated(error: stripe.StripeError, call: str) -> PaymentServiceError:
    """Our exception for a Stripe error, logged with what helps (never the key)."""
    detail = (
        f"{call}: {type(error).__name__} http_status={error.http_status} "
        f"code={error.code} request_id={error.request_id}"
    )
    if isinstance(error, stripe.APIConnectionError | stripe.APIError | stripe.RateLimitError):
        log.warning("Stripe unavailable: %s", detail)
        return PaymentServiceUnavailable(_unavailable(), detail=detail)
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        # Our configuration, not the family's doing.
        log.error("Stripe refused our credentials: %s", detail)
        return PaymentServiceUnavailable(_unavailable(), detail=detail)
    log.error("Stripe refused a request: %s %s", detail, error.user_message or "")
    return PaymentServiceRefused(_refused(), detail=detail)


def _plain(obj: Any) -> dict[str, Any]:
    """A response object as a dict (the library's objects are not dicts)."""
    return obj.to_dict() if isinstance(obj, stripe.StripeObject) else dict(obj)


def _session(response: Any) -> GatewaySession:
    obj = _plain(response)
    payment_intent = obj.get("payment_intent") or ""
    if not isinstance(payment_intent, str):
        payment_intent = payment_intent.get("id", "")
    return GatewaySession(
        id=obj["id"],
        url=obj.get("url") or "",
        status=obj.get("status") or "",
        payment_status=obj.get("payment_status") or "",
        payment_intent=payment_intent,
        amount_total=obj.get("amount_total"),
        client_reference_id=obj.get("client_reference_id") or "",
    )


def _refund(response: Any) -> GatewayRefund:
    obj = _plain(response)

    def identifier(value: Any) -> str:
        return (value if isinstance(value, str) else value.get("id", "")) if value else ""

    return GatewayRefund(
        id=obj["id"],
        status=obj.get("status") or "",
        amount=int(obj.get("amount") or 0),
        charge=identifier(obj.get("charge")),
        payment_intent=identifier(obj.get("payment_intent")),
        metadata={k: str(v) for k, v in (obj.get("metadata") or {}).items()},
    )


def checkout_metadata(checkout: Checkout) -> dict[str, str]:
    """Our ids, on the session and its payment: the webhook finds our rows by them."""
    return {
        "checkout_id": str(checkout.pk),
        "checkout_reference": str(checkout.reference),
        "household_id": str(checkout.household_id),
    }


def checkout_session_create(
    *,
    checkout: Checkout,
    lines: Sequence[CheckoutLine],
    success_url: str,
    cancel_url: str,
    customer_email: str = "",
) -> GatewaySession:
    """Create the Stripe Checkout Session of ``checkout``: one line item per child and
    fee. Retrying with the same checkout gets the same session back."""
    metadata = checkout_metadata(checkout)
    params: dict[str, Any] = {
        "mode": "payment",
        "client_reference_id": str(checkout.pk),
        "success_url": success_url,
        "cancel_url": cancel_url,
        "expires_at": int(checkout.expires_at.timestamp()),
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": checkout.currency,
                    "unit_amount": line.amount_cents,
                    "product_data": {
                        "name": line.description,
                        "metadata": {
                            "student_id": str(line.student_id),
                            "fee_id": str(line.fee_id),
                        },
                    },
                },
            }
            for line in lines
        ],
    }
    if customer_email:
        params["customer_email"] = customer_email
    try:
        session = client().v1.checkout.sessions.create(
            params,  # type: ignore[arg-type]
            {"idempotency_key": checkout.idempotency_key},
        )
    except stripe.StripeError as error:
        raise _translated(error, "checkout session create") from error
    return _session(session)


def checkout_session_retrieve(*, session_id: str) -> GatewaySession:
    """What Stripe knows of a session now."""
    try:
        session = client().v1.checkout.sessions.retrieve(session_id)
    except stripe.StripeError as error:
        raise _translated(error, "checkout session retrieve") from error
    return _session(session)


def checkout_session_expire(*, session_id: str) -> GatewaySession:
    """Stop an open session from taking payment (the family changed its cart)."""
    try:
        session = client().v1.checkout.sessions.expire(session_id)
    except stripe.StripeError as error:
        raise _translated(error, "checkout session expire") from error
    return _session(session)


def refund_create(*, refund: Refund, payment_intent: str) -> GatewayRefund:
    """Ask Stripe to give ``refund.amount_cents`` back on a checkout's payment."""
    metadata = {
        **checkout_metadata(refund.checkout),
        "refund_id": str(refund.pk),
        "refund_reference": str(refund.reference),
    }
    try:
        created = client().v1.refunds.create(
            {
                "payment_intent": payment_intent,
                "amount": refund.amount_cents,
                "metadata": metadata,
            },
            {"idempotency_key": refund.idempotency_key},
        )
    except stripe.StripeError as error:
        raise _translated(error, "refund create") from error
    return _refund(created)


def refunds_of_charge(*, charge_id: str) -> list[GatewayRefund]:
    """Every refund of a charge (a ``charge.refunded`` event may not list them)."""
    try:
        page = client().v1.refunds.list({"charge": charge_id, "limit": 100})
        return [_refund(obj) for obj in page.auto_paging_iter()]
    except stripe.StripeError as error:
        raise _translated(error, "refund list") from error


def refund_from_event(obj: dict[str, Any]) -> GatewayRefund:
    """A refund object as a webhook event carries it."""
    return _refund(obj)


def webhook_event_verify(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event of a webhook delivery whose ``Stripe-Signature`` is valid for our
    signing secret and at most five minutes old; otherwise ``WebhookSignatureInvalid``."""
    try:
        stripe.WebhookSignature.verify_header(
            payload,
            signature,
            settings.STRIPE_WEBHOOK_SECRET,
            tolerance=WEBHOOK_TOLERANCE_SECONDS,
        )
    except stripe.SignatureVerificationError as error:
        # The library's message names the problem; it never includes the secret.
        raise WebhookSignatureInvalid(str(error).split(".")[0][:200]) from None
    try:
        event = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as error:
        raise WebhookSignatureInvalid("signed body is not JSON") from error
    if not isinstance(event, dict) or not event.get("id") or not event.get("type"):
        raise WebhookSignatureInvalid("signed body is not an event")
    return event
