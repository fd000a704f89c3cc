"""A sentence that ends with a time ends with one full stop: English times are
written "4:30 PM" (``config/formats/en``), so "booked for … 4:30 p.m.." and "Paid on
… p.m.." no longer happen. Through the visit email and the payment's state, in
English.
"""

from __future__ import annotations

import datetime
import re

from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone, translation

from payments.models import Checkout
from registration.models import Guardian, Household, School
from tests.payments.conftest import deliver
from tests.workflow import test_fee_step as fee_step
from tests.workflow.test_fee_step import at_fee_step, key, pay_now
from tests.workflow.wizard_walk import Page
from workflow.models import AddressChangeRequest, AddressVisit
from workflow.services import address_visit_email
from workflow.visits import slot_label

# The fee step's fixtures, here too.
stripe_double = fee_step.stripe_double
family = fee_step.family
lunch = fee_step.lunch
jose = fee_step.jose
registration_fee = fee_step.registration_fee

# "Nov. 29, 2026, 5:17 PM": a date and a time, and the sentence's own full stop.
PAID_ON = re.compile(r"Paid on [A-Z][a-z]+\.? \d{1,2}, \d{4}, \d{1,2}:\d{2} [AP]M\.</p>")


def test_the_english_visit_email_ends_its_sentence_with_one_full_stop(other_guardian_user):
    """Siobhan's household (hh-002) reads English; its visit is at 4:30 in the afternoon."""
    day = timezone.localdate() + datetime.timedelta(days=2)
    starts_at = timezone.make_aware(datetime.datetime.combine(day, datetime.time(16, 30)))
    request = AddressChangeRequest.objects.create(
        household=Household.objects.get(sourced_id="hh-002"),
        requested_by=Guardian.objects.get(sourced_id="par-003"),
        street1="9 Elm St",
        city="Riverside",
        state_code="CA",
        postal_code="95201",
    )
    visit = AddressVisit.objects.create(
        request=request, school=School.objects.get(sourced_id="sch-elem"), starts_at=starts_at
    )

    assert address_visit_email(visit_id=visit.pk) >= 1
    (message,) = [m for m in mail.outbox if m.to == [other_guardian_user.email]]
    with translation.override("en"):
        when = slot_label(starts_at)
    assert when.endswith("4:30 PM")
    assert f"is booked for {when}." in message.body
    for sent in mail.outbox:
        assert ".." not in sent.subject and ".." not in sent.body, sent.body


def test_the_payment_state_ends_its_sentence_with_one_full_stop(
    jose, family, registration_fee, lunch, stripe_double
):
    page = at_fee_step(jose)
    pay_now(jose, page, {"line": [key(family.sofia, registration_fee)]})
    checkout = Checkout.objects.get()
    session = stripe_double.session_complete(checkout.stripe_session_id)
    deliver(jose.client, stripe_double.event("checkout.session.completed", session))
    jose.client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    in_the_wizard = Page(jose.client.get(f"{jose.url('fees')}?checkout={checkout.pk}"), jose.prefix)
    on_its_own = jose.client.get(reverse("checkout_status", args=[checkout.pk])).content.decode()
    for html in (in_the_wizard.html, on_its_own):
        assert "Thank you: your payment is confirmed" in html
        assert PAID_ON.search(html), re.findall(r"Paid on [^<]*", html)
        assert ".." not in html.replace("…", "")
