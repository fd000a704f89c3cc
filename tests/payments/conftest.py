"""The payment tests' Stripe: the local double, and deliveries of signed events.

The actors are the shared ones (tests/conftest.py): José García (``guardian_user``,
household hh-001: Sofía in Grade 3 at Las Lomas Elementary, Mateo in Math 7 at
Sequoia Middle) and Siobhan O'Brien (``other_guardian_user``, household hh-002).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import reverse

from payments.models import Checkout
from payments.services import checkout_create
from registration.models import Household, Student
from tests.payments.factories import FieldTripFactory, LunchFactory
from tests.payments.stripe_double import StripeDouble, signature_header

WEBHOOK_SECRET = "whsec_test_only_for_the_payment_tests"


@pytest.fixture
def stripe_double(settings) -> Iterator[StripeDouble]:
    double = StripeDouble()
    settings.STRIPE_MODE = "stripe"
    settings.STRIPE_API_BASE = double.base_url
    settings.STRIPE_SECRET_KEY = "sk_test_double"
    settings.STRIPE_TIMEOUT_SECONDS = 1.0
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    yield double
    double.close()


def deliver(
    client,
    body: str,
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    signature: str | None = None,
):
    """POST one delivery to the webhook, signed as Stripe signs it unless told."""
    headers: dict[str, Any] = {}
    header = signature if signature is not None else signature_header(body, secret, timestamp)
    if header:
        headers["HTTP_STRIPE_SIGNATURE"] = header
    return client.post(
        reverse("stripe_webhook"), data=body, content_type="application/json", **headers
    )


@dataclass
class Family:
    household: Household
    sofia: Student
    mateo: Student


@pytest.fixture
def family(guardian_user) -> Family:
    return Family(
        household=Household.objects.get(sourced_id="hh-001"),
        sofia=Student.objects.get(sourced_id="stu-001"),
        mateo=Student.objects.get(sourced_id="stu-002"),
    )


@pytest.fixture
def lunch(sample_district):
    return LunchFactory()


@pytest.fixture
def field_trip(sample_district):
    """A field trip of Sofía's class (Grade 3)."""
    return FieldTripFactory(title="Aquarium visit")


@pytest.fixture
def open_checkout(family, lunch, field_trip, guardian_user, stripe_double) -> Checkout:
    """Lunch for Sofía ($25.00) and Mateo ($40.00), Sofía's field trip ($18.50)."""
    return checkout_create(
        household=family.household,
        lines=[
            (family.sofia, lunch, 2500),
            (family.mateo, lunch, 4000),
            (family.sofia, field_trip, None),
        ],
        user=guardian_user,
    )
