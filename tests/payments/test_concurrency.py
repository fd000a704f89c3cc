"""Stripe delivers one event several times at once, and a guardian double-clicks
"Pay": one payment, one checkout, one session.

PostgreSQL only: the services rely on ``select_for_update``, a no-op on SQLite,
where one writer at a time holds the whole database and the race cannot happen.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from payments.models import Checkout, LedgerEntry, StripeEvent
from payments.services import checkout_create
from tests.payments.conftest import deliver

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.django_db(transaction=True),
]

AT_ONCE = 8


def all_at_once(work: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(AT_ONCE)
    results: list[Any] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(work())
        except Exception as error:  # reported below
            results.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(AT_ONCE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_one_event_delivered_at_once_pays_once(open_checkout, stripe_double):
    session = stripe_double.session_complete(open_checkout.stripe_session_id)
    body = stripe_double.event("checkout.session.completed", session)
    outcomes = all_at_once(lambda: deliver(Client(), body).json()["outcome"])
    assert sorted(outcomes) == ["duplicate"] * (AT_ONCE - 1) + ["paid"]
    assert StripeEvent.objects.count() == 1
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT).count() == 3


def test_a_double_click_makes_one_checkout(family, lunch, field_trip, guardian_user, stripe_double):
    lines = [(family.sofia, lunch, 2500), (family.sofia, field_trip, None)]
    made = all_at_once(
        lambda: checkout_create(household=family.household, lines=lines, user=guardian_user)
    )
    assert not [m for m in made if isinstance(m, Exception)], made
    assert {m.pk for m in made} == {Checkout.objects.get().pk}
    assert len(stripe_double.state.sessions) == 1
