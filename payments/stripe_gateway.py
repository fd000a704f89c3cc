"""The only module that talks to Stripe, or to the local Stripe of the embedded demo.

One function per API call. Every create carries an idempotency key derived from our
own row, so that a retry (ours, or the library's after a timeout) can never create
a second session or refund. Amounts are integer cents. Whatever goes wrong with
Stripe comes out as a ``PaymentServiceError`` whose ``message`` can be shown to a
guardian as it is; the details go to the log, never a key.

Two modes (``settings.STRIPE_MODE``):

- ``"stripe"`` (``STRIPE_SECRET_KEY`` is set): every call goes to Stripe's API at
  ``STRIPE_API_BASE`` (api.stripe.com, or the tests' local HTTP double) through the
  official library; families pay on Stripe Checkout.
- ``"local"`` (no key: the embedded demo): nothing leaves the machine. The same
  functions answer from ``payments.local_stripe`` with the same return types: a
  session is our own TEST checkout page (``cs_test_local_…``), its state is read from
  our database, and a refund (``re_test_local_…``) succeeds once the caller's
  transaction commits. The events that follow (payment, failure, expiry, refund) are
  signed with ``STRIPE_WEBHOOK_SECRET`` and handed to the real webhook view, so the
  webhook, the ledger and the receipts run the same code in both modes.
"""

from __future__ import annotations

import datetime
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


@dataclass(frozen=True)
class GatewayPayout:
    """A payout of the Stripe balance to the district's bank account."""

    id: str
    amount: int  # cents reaching the bank
    currency: str
    status: str  # paid, pending, in_transit, canceled, failed
    created: int  # Unix time
    arrival_date: int  # Unix time of the (expected) arrival at the bank
    automatic: bool
    description: str


@dataclass(frozen=True)
class GatewayBalanceTransaction:
    """One movement of the Stripe balance, with the ids of what caused it: a charge
    (``payment_intent``), a refund (``refund``, ``charge``, ``payment_intent``), a
    Stripe fee, an adjustment. ``amount`` is gross, ``fee`` Stripe's fee, ``net`` what
    it adds to the payout; a refund's amount is negative."""

    id: str
    type: str  # charge, payment, refund, payment_refund, stripe_fee, adjustment, payout, …
    reporting_category: str
    amount: int
    fee: int
    net: int
    currency: str
    created: int
    description: str
    source: str  # the id of the charge, refund, payout… that moved the balance
    source_object: str  # its kind: charge, refund, payout, … (blank when unknown)
    payment_intent: str
    charge: str
    refund: str
    metadata: dict[str, str]


@functools.lru_cache(maxsize=4)
def _client(api_key: str, api_base: str, timeout: float, retries: int) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        http_client=stripe.RequestsClient(timeout=timeout),
        max_network_retries=retries,
    )


def _local() -> bool:
    return bool(settings.STRIPE_MODE == "local")


def _local_unknown(call: str, what: str) -> PaymentServiceRefused:
    detail = f"{call}: no such local {what}"
    log.error("Local Stripe refused a request: %s", detail)
    return PaymentServiceRefused(_refused(), detail=detail)


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
    if _local():
        from payments import local_stripe

        return _session(
            local_stripe.session_create(
                checkout=checkout,
                lines=lines,
                success_url=success_url,
                cancel_url=cancel_url,
                customer_email=customer_email,
            )
        )
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
    if _local():
        from payments import local_stripe

        found = local_stripe.session_retrieve(session_id=session_id)
        if found is None:
            raise _local_unknown("checkout session retrieve", "session")
        return _session(found)
    try:
        session = client().v1.checkout.sessions.retrieve(session_id)
    except stripe.StripeError as error:
        raise _translated(error, "checkout session retrieve") from error
    return _session(session)


def checkout_session_expire(*, session_id: str) -> GatewaySession:
    """Stop an open session from taking payment (the family changed its cart)."""
    if _local():
        from payments import local_stripe

        try:
            expired = local_stripe.session_expire(session_id=session_id)
        except ValueError as error:
            raise _local_unknown("checkout session expire", f"open session ({error})") from None
        if expired is None:
            raise _local_unknown("checkout session expire", "session")
        return _session(expired)
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
    if _local():
        from payments import local_stripe

        local = local_stripe.refund_create(refund=refund, payment_intent=payment_intent)
        if local is None:
            raise _local_unknown("refund create", f"payment {payment_intent}")
        return _refund(local)
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
    if _local():
        from payments import local_stripe

        return [_refund(obj) for obj in local_stripe.refunds_of_charge(charge_id=charge_id)]
    try:
        page = client().v1.refunds.list({"charge": charge_id, "limit": 100})
        return [_refund(obj) for obj in page.auto_paging_iter()]
    except stripe.StripeError as error:
        raise _translated(error, "refund list") from error


def _identifier(value: Any) -> str:
    """An id, whether Stripe sent it alone or the object it names (expanded)."""
    if not value:
        return ""
    return value if isinstance(value, str) else str(value["id"] or "")


def _payout(obj: Any) -> GatewayPayout:
    return GatewayPayout(
        id=obj["id"],
        amount=int(obj["amount"] or 0),
        currency=obj["currency"] or "",
        status=obj["status"] or "",
        created=int(obj["created"] or 0),
        arrival_date=int(obj["arrival_date"] or 0),
        automatic=bool(obj["automatic"]),
        description=obj["description"] or "",
    )


def _balance_transaction(obj: Any) -> GatewayBalanceTransaction:
    """Read field by field: converting each expanded charge to a dict would double
    the cost of a long list."""

    def field(owner: Any, name: str) -> Any:
        try:
            return owner[name]
        except KeyError:
            return None

    source = field(obj, "source")
    kind, payment_intent, charge, refund, metadata = "", "", "", "", {}
    if source is not None and not isinstance(source, str):
        kind = field(source, "object") or ""
        payment_intent = _identifier(field(source, "payment_intent"))
        if kind == "refund":
            refund = _identifier(source)
            charge = _identifier(field(source, "charge"))
        elif kind == "charge":
            charge = _identifier(source)
        found = field(source, "metadata")
        if found:
            metadata = {k: str(v) for k, v in _plain(found).items()}
    return GatewayBalanceTransaction(
        id=obj["id"],
        type=field(obj, "type") or "",
        reporting_category=field(obj, "reporting_category") or "",
        amount=int(field(obj, "amount") or 0),
        fee=int(field(obj, "fee") or 0),
        net=int(field(obj, "net") or 0),
        currency=field(obj, "currency") or "",
        created=int(field(obj, "created") or 0),
        description=field(obj, "description") or "",
        source=_identifier(source),
        source_object=kind,
        payment_intent=payment_intent,
        charge=charge,
        refund=refund,
        metadata=metadata,
    )


def payouts_list(*, since: datetime.date | None = None) -> list[GatewayPayout]:
    """Every payout created on or after ``since`` (every payout when none), newest
    first, through the library's auto-pagination. The local Stripe of the demo pays
    nothing out: it has no payouts."""
    if _local():
        return []
    params: dict[str, Any] = {"limit": 100}
    if since is not None:
        start = datetime.datetime.combine(since, datetime.time.min, tzinfo=datetime.UTC)
        params["created"] = {"gte": int(start.timestamp())}
    try:
        page = client().v1.payouts.list(params)  # type: ignore[arg-type]
        return [_payout(obj) for obj in page.auto_paging_iter()]
    except stripe.StripeError as error:
        raise _translated(error, "payout list") from error


def balance_transactions_of_payout(*, payout_id: str) -> list[GatewayBalanceTransaction]:
    """Every balance transaction paid out in an (automatic) payout, the payout's own
    included, each with its source expanded so that a charge's payment intent and a
    refund's charge and payment intent come with it."""
    if _local():
        return []
    params: dict[str, Any] = {"payout": payout_id, "limit": 100, "expand": ["data.source"]}
    try:
        page = client().v1.balance_transactions.list(params)  # type: ignore[arg-type]
        return [_balance_transaction(obj) for obj in page.auto_paging_iter()]
    except stripe.StripeError as error:
        raise _translated(error, "balance transaction list") from error


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
