"""What a verified Stripe event does.

Each event is stored under Stripe's id the first time it arrives
(``stripe_event_store``), then acted on once (``stripe_event_process``): the stored
row is locked, and the action, its ledger entries, its transition log rows and the
``processed_at`` mark are one transaction. A second delivery finds the mark and
changes nothing.

Events may arrive in any order; each handler looks at the state the records are in:

- ``checkout.session.expired`` or ``async_payment_failed`` for a paid checkout
  changes nothing.
- A payment (``completed`` with ``payment_status=paid``, or
  ``async_payment_succeeded``) pays the checkout even if it was marked expired or
  failed before: Stripe says the money was taken, so it was (paid wins).
- ``completed`` with ``payment_status=unpaid`` (a bank debit on its way) waits for
  ``async_payment_succeeded`` or ``async_payment_failed``.
- A refund of a payment we have not recorded yet waits, unprocessed, until the
  payment arrives; the payment's transaction then processes it.
- A refund that failed is never recorded, even if its success arrives later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from payments import stripe_gateway
from payments.models import CURRENCY, Checkout, StripeEvent
from payments.services import (
    checkout_expire,
    checkout_fail,
    checkout_pay,
    refund_fail,
    refund_succeed,
)

log = logging.getLogger("payments")

Handler = Callable[[StripeEvent, dict[str, Any]], str]


def stripe_event_store(*, event: dict[str, Any]) -> None:
    """Store a verified event under Stripe's id, unless it is stored already (one
    statement: a delivery racing another of the same event stores nothing)."""
    StripeEvent.objects.bulk_create(
        [StripeEvent(event_id=str(event["id"]), type=str(event["type"])[:100], payload=event)],
        ignore_conflicts=True,
    )


def stripe_event_process(*, event_id: str, payload: dict[str, Any] | None = None) -> str:
    """Act on a stored event unless that was done already; returns the outcome.
    ``payload`` is the event as just verified (otherwise the stored one is read)."""
    if payload is None:
        payload = StripeEvent.objects.values_list("payload", flat=True).get(event_id=event_id)
    prepared = _prepare(str(payload["type"]), payload)
    try:
        with transaction.atomic():
            locked = StripeEvent.objects.select_for_update().defer("payload").get(event_id=event_id)
            if locked.processed_at is not None:
                return "duplicate"
            outcome = _handle(locked, prepared)
    except Exception as error:
        StripeEvent.objects.filter(event_id=event_id, processed_at__isnull=True).update(
            outcome=f"error: {type(error).__name__}"[:200]
        )
        raise
    return outcome


def _handle(locked: StripeEvent, payload: dict[str, Any]) -> str:
    """Run the event's handler on the locked row; mark it processed unless it waits."""
    handler = HANDLERS.get(locked.type)
    obj = payload["data"]["object"]
    outcome = handler(locked, obj) if handler else f"ignored: {locked.type}"
    fields = ["outcome", "checkout", "payment_intent"]
    locked.outcome = outcome[:1000]
    if not outcome.startswith(WAITING):
        locked.processed_at = timezone.now()
        fields.append("processed_at")
    locked.save(update_fields=fields)
    return outcome


def _prepare(type_: str, payload: dict[str, Any]) -> dict[str, Any]:
    """What the event's handler needs from Stripe, asked before any row is locked: a
    ``charge.refunded`` that does not list its refunds gets them."""
    if type_ != "charge.refunded":
        return payload
    charge = payload["data"]["object"]
    listed = charge.get("refunds") or {}
    if isinstance(listed, dict) and "data" in listed and not listed.get("has_more"):
        return payload
    refunds = stripe_gateway.refunds_of_charge(charge_id=charge["id"])
    data = [
        {
            "id": r.id,
            "object": "refund",
            "amount": r.amount,
            "status": r.status,
            "charge": r.charge,
            "payment_intent": r.payment_intent,
            "metadata": r.metadata,
        }
        for r in refunds
    ]
    charge = {**charge, "refunds": {"object": "list", "data": data, "has_more": False}}
    return {**payload, "data": {**payload["data"], "object": charge}}


WAITING = "waiting"


# -- checkout sessions -----------------------------------------------------------------


def _checkout_of_session(session: dict[str, Any]) -> Checkout | None:
    """Our checkout of a session: by the session's id, or by our ids in its metadata
    (when the answer to our create call was lost)."""
    found = Checkout.objects.filter(stripe_session_id=session["id"]).first()
    if found is not None:
        return found
    metadata = session.get("metadata") or {}
    reference = session.get("client_reference_id") or metadata.get("checkout_id") or ""
    if not str(reference).isdigit():
        return None
    found = Checkout.objects.filter(
        pk=int(reference), reference=metadata.get("checkout_reference")
    ).first()
    if found is not None and not found.stripe_session_id:
        Checkout.objects.filter(pk=found.pk, stripe_session_id__isnull=True).update(
            stripe_session_id=session["id"], stripe_session_url=session.get("url") or ""
        )
        found.refresh_from_db()
    return found if found is not None and found.stripe_session_id == session["id"] else None


def _payment_intent_of(obj: dict[str, Any]) -> str:
    value = obj.get("payment_intent") or ""
    return value if isinstance(value, str) else str(value.get("id", ""))


def _session_pays(event: StripeEvent, session: dict[str, Any], *, asynchronous: bool) -> str:
    checkout = _checkout_of_session(session)
    if checkout is None:
        log.warning("Stripe event %s: no checkout for session %s", event.event_id, session["id"])
        return "ignored: unknown checkout"
    event.checkout = checkout
    if session.get("amount_total") != checkout.total_cents or (
        (session.get("currency") or CURRENCY) != checkout.currency
    ):
        log.error(
            "Stripe event %s: session %s total %s %s, checkout %s expects %s",
            event.event_id,
            session["id"],
            session.get("amount_total"),
            session.get("currency"),
            checkout.pk,
            checkout.total_cents,
        )
        return "refused: the amount paid is not the checkout's total"
    status = session.get("payment_status")
    if status != "paid":
        if asynchronous:
            return f"ignored: payment_status {status}"
        return f"open: payment_status {status}, waiting for the asynchronous payment"
    payment_intent = _payment_intent_of(session)
    if not checkout_pay(checkout=checkout, payment_intent=payment_intent, note=event.type):
        return "ignored: already paid"
    _waiting_events_process(payment_intent, event)
    return "paid"


def _session_completed(event: StripeEvent, session: dict[str, Any]) -> str:
    return _session_pays(event, session, asynchronous=False)


def _session_async_succeeded(event: StripeEvent, session: dict[str, Any]) -> str:
    return _session_pays(event, session, asynchronous=True)


def _session_closes(name: str) -> Handler:
    close = checkout_expire if name == "expire" else checkout_fail

    def handler(event: StripeEvent, session: dict[str, Any]) -> str:
        checkout = _checkout_of_session(session)
        if checkout is None:
            return "ignored: unknown checkout"
        event.checkout = checkout
        if close(checkout=checkout, note=event.type):
            return "expired" if name == "expire" else "failed"
        return f"ignored: checkout is {Checkout.objects.get(pk=checkout.pk).state}"

    return handler


# -- refunds ---------------------------------------------------------------------------


def _paid_checkout(
    event: StripeEvent, payment_intent: str, metadata: dict[str, str]
) -> Checkout | None:
    """The paid checkout a refund belongs to, by its payment or our ids."""
    found = None
    if payment_intent:
        found = Checkout.objects.filter(stripe_payment_intent=payment_intent).first()
    if found is None and str(metadata.get("checkout_id", "")).isdigit():
        found = Checkout.objects.filter(
            pk=int(metadata["checkout_id"]), reference=metadata.get("checkout_reference")
        ).first()
    if found is not None:
        event.checkout = found
    if found is None or found.state != Checkout.State.PAID:
        event.payment_intent = payment_intent
        return None
    return found


def _refund_act(event: StripeEvent, refund: stripe_gateway.GatewayRefund) -> str:
    checkout = _paid_checkout(event, refund.payment_intent, refund.metadata)
    if checkout is None:
        if not refund.payment_intent:
            return "ignored: refund of an unknown payment"
        return f"{WAITING}: refund {refund.id} before its payment {refund.payment_intent}"
    if refund.status == "succeeded":
        done = refund_succeed(checkout=checkout, stripe_refund=refund)
        return f"refund {refund.id} recorded" if done else f"refund {refund.id} already settled"
    if refund.status in ("failed", "canceled"):
        done = refund_fail(checkout=checkout, stripe_refund=refund)
        return f"refund {refund.id} failed" if done else f"refund {refund.id} already failed"
    return f"refund {refund.id} is {refund.status}: nothing to record"


def _refund_event(event: StripeEvent, obj: dict[str, Any]) -> str:
    return _refund_act(event, stripe_gateway.refund_from_event(obj))


def _refund_failed(event: StripeEvent, obj: dict[str, Any]) -> str:
    refund = stripe_gateway.refund_from_event({**obj, "status": "failed"})
    return _refund_act(event, refund)


def _charge_refunded(event: StripeEvent, charge: dict[str, Any]) -> str:
    outcomes = []
    for obj in charge["refunds"]["data"]:
        refund = stripe_gateway.refund_from_event(
            {
                **obj,
                "charge": obj.get("charge") or charge["id"],
                "payment_intent": obj.get("payment_intent") or charge.get("payment_intent"),
            }
        )
        outcome = _refund_act(event, refund)
        if outcome.startswith(WAITING):
            return outcome
        outcomes.append(outcome)
    return "; ".join(outcomes) or "ignored: no refunds listed"


def _waiting_events_process(payment_intent: str, current: StripeEvent) -> None:
    """Refunds that arrived before this payment: processed now, in its transaction."""
    if not payment_intent:
        return
    for waiting in (
        StripeEvent.objects.select_for_update()
        .filter(processed_at__isnull=True, payment_intent=payment_intent)
        .exclude(pk=current.pk)
        .order_by("pk")
    ):
        _handle(waiting, _prepare(waiting.type, waiting.payload))


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _session_completed,
    "checkout.session.async_payment_succeeded": _session_async_succeeded,
    "checkout.session.async_payment_failed": _session_closes("fail"),
    "checkout.session.expired": _session_closes("expire"),
    "charge.refunded": _charge_refunded,
    "refund.created": _refund_event,
    "refund.updated": _refund_event,
    "refund.failed": _refund_failed,
}
