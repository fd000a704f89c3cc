"""The finance tests' Stripe is the payment tests' local double (its fixture is
shared from there), answering payouts and balance transactions too."""

from __future__ import annotations

import pytest

from tests.payments.conftest import family, stripe_double  # noqa: F401  (shared fixtures)
from tests.payments.factories import FeeFactory, FieldTripFactory, LunchFactory


@pytest.fixture
def fees(sample_district):
    """Three fees with GL codes: lunch, a field trip, a required activity fee."""
    return [
        LunchFactory(gl_code="5300-NUTRITION"),
        FieldTripFactory(title="Aquarium visit", gl_code="4200-TRIPS"),
        FeeFactory(title="Activity fee", gl_code="4100-FEES"),
    ]
