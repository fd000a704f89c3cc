"""Stripe webhook events processed per second against a view that only verifies them.

For each database (SQLite, and PostgreSQL on a throwaway cluster) the benchmark
generates a district as a roster bundle, imports it into a fresh database, adds a
lunch fee and, for each of the first N households, an open checkout of lunch for
up to two of its children with its (made-up) Stripe session. Then, with Django's
test client, through the project's whole middleware stack:

1. times N ``checkout.session.completed`` deliveries, one per checkout, each signed
   as Stripe signs it (signed before the clock starts): verify, store the event,
   pay the checkout, write its ledger entries and transition log, queue the receipt;
2. times the same N deliveries again: each a duplicate, answered without a change
   (a detail, ``duplicates_per_s``);
3. times the baseline: the same N signed bodies posted to a view that only verifies
   the signature and answers 200 (``bench/_webhook_baseline_urls.py``); the median
   of three rounds.

value    = events/s processed by the real webhook
baseline = events/s of the verify-only view
ratio    = value ÷ baseline = baseline seconds ÷ webhook seconds

The receipt email is queued, not sent: the measuring process runs with an in-memory
broker, as the web servers run with Redis. DEBUG is off, as in production.

    python bench/webhook.py [--size EVENTS] [--quick]
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from _harness import command_line, migrated, on_both_databases, synthetic_district

BASELINE_URLCONF = "bench._webhook_baseline_urls"
WEBHOOK_PATH = "/payments/stripe/webhook/"
LUNCH_CENTS = 2500


def _checkouts(count: int) -> list[Any]:
    """An open checkout (lunch for up to two children) for each of ``count`` households."""
    import datetime

    from django.contrib.auth.hashers import make_password
    from django.utils import timezone

    from payments.models import Checkout, CheckoutLine, Fee
    from registration.models import Household, HouseholdStudent, User

    lunch = Fee.objects.create(
        kind=Fee.Kind.LUNCH_PREPAY,
        title="Lunch account",
        min_amount_cents=500,
        max_amount_cents=20_000,
    )
    payer = User.objects.create(
        username="bench-guardian", email="bench@example.org", password=make_password(None)
    )
    children: dict[int, list[int]] = {}
    for household_id, student_id in (
        HouseholdStudent.objects.filter(student__enabled=True)
        .order_by("household_id", "student_id")
        .values_list("household_id", "student_id")
    ):
        if len(children) == count and household_id not in children:
            break
        children.setdefault(household_id, []).append(student_id)
    if len(children) < count:
        raise RuntimeError(f"the district has only {len(children)} households with children")
    expires = timezone.now() + datetime.timedelta(hours=1)
    households = Household.objects.in_bulk(list(children))
    checkouts = Checkout.objects.bulk_create(
        Checkout(
            household=households[household_id],
            created_by=payer,
            total_cents=LUNCH_CENTS * len(students[:2]),
            expires_at=expires,
            stripe_session_id=f"cs_bench_{household_id}",
        )
        for household_id, students in children.items()
    )
    if any(c.pk is None for c in checkouts):  # SQLite before 3.35 returns no ids
        checkouts = list(Checkout.objects.order_by("pk"))
    CheckoutLine.objects.bulk_create(
        CheckoutLine(
            checkout=checkout,
            student_id=student_id,
            fee=lunch,
            amount_cents=LUNCH_CENTS,
            description=f"Lunch account – child {student_id}",
        )
        for checkout in checkouts
        for student_id in children[checkout.household_id][:2]
    )
    return checkouts


def _signed_deliveries(checkouts: list[Any]) -> list[tuple[bytes, str]]:
    """One ``checkout.session.completed`` per checkout, shaped as Stripe's published
    objects, and its ``Stripe-Signature``."""
    from django.conf import settings

    from tests.payments.stripe_double import fixture, signature_header

    session_shape, event_shape = fixture("checkout.session"), fixture("event")
    deliveries = []
    for checkout in checkouts:
        session = {
            **session_shape,
            "id": checkout.stripe_session_id,
            "amount_total": checkout.total_cents,
            "amount_subtotal": checkout.total_cents,
            "currency": "usd",
            "client_reference_id": str(checkout.pk),
            "metadata": {
                "checkout_id": str(checkout.pk),
                "checkout_reference": str(checkout.reference),
                "household_id": str(checkout.household_id),
            },
            "payment_intent": f"pi_bench_{checkout.pk}",
            "payment_status": "paid",
            "status": "complete",
        }
        event = {
            **event_shape,
            "id": f"evt_bench_{checkout.pk}",
            "type": "checkout.session.completed",
            "created": int(time.time()),
            "data": {"object": session},
        }
        body = json.dumps(event)
        deliveries.append((body.encode(), signature_header(body, settings.STRIPE_WEBHOOK_SECRET)))
    return deliveries


def _post_all(client: Any, deliveries: list[tuple[bytes, str]]) -> float:
    started = time.perf_counter()
    for body, signature in deliveries:
        response = client.post(
            WEBHOOK_PATH,
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=signature,
        )
        if response.status_code != 200:
            raise RuntimeError(f"the webhook answered {response.status_code}")
    return time.perf_counter() - started


def measure(events: int, bundle: Path) -> dict[str, object]:
    """Runs inside a process whose DATABASE_URL names an empty database."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings

    from payments.models import Checkout, LedgerEntry, StripeEvent
    from registration.services import roster_import

    assert not settings.DEBUG and not settings.CELERY_TASK_ALWAYS_EAGER
    migrated()
    report = roster_import(path=bundle)
    assert report.ok, [str(p) for p in report.problems.errors[:5]]
    warm_up, *checkouts = _checkouts(events + 1)
    client = Client()
    (warm_delivery,) = _signed_deliveries([warm_up])
    _post_all(client, [warm_delivery])
    deliveries = _signed_deliveries(checkouts)

    webhook_seconds = _post_all(client, deliveries)
    paid = Checkout.objects.filter(state=Checkout.State.PAID).count()
    assert paid == events + 1, paid
    assert StripeEvent.objects.filter(processed_at__isnull=False).count() == events + 1
    payments = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT).count()
    duplicate_seconds = _post_all(client, deliveries)
    assert StripeEvent.objects.count() == events + 1
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT).count() == payments

    with override_settings(ROOT_URLCONF=BASELINE_URLCONF):
        _post_all(client, deliveries[:20])  # warm up
        baseline_seconds = statistics.median(_post_all(client, deliveries) for _ in range(3))
    connection.close()
    return {
        "size": events,
        "value": round(events / webhook_seconds, 1),
        "baseline": round(events / baseline_seconds, 1),
        "unit": "events/s",
        "ratio": round(baseline_seconds / webhook_seconds, 3),
        "webhook_seconds": round(webhook_seconds, 3),
        "baseline_seconds": round(baseline_seconds, 3),
        "ms_per_event": round(1000 * webhook_seconds / events, 2),
        "baseline_ms_per_event": round(1000 * baseline_seconds / events, 2),
        "duplicates_per_s": round(events / duplicate_seconds, 1),
        "ledger_payments": payments,
    }


def generate(events: int, folder: Path) -> None:
    synthetic_district(folder, households=events + 20)


def run(*, quick: bool) -> list[dict[str, object]]:
    """Every figure of this benchmark, for bench/run.py."""
    return on_both_databases(
        name="webhook",
        script=__file__,
        size=200 if quick else 1000,
        # The figure is the processing, not the per-address limit of deliveries.
        env={
            "STRIPE_WEBHOOK_SECRET": "whsec_benchmark_only",
            "STRIPE_WEBHOOK_PER_MINUTE": "10000000",
        },
        quick=quick,
    )


if __name__ == "__main__":
    command_line(__doc__, generate=generate, measure=measure, run=run, default=2000)
