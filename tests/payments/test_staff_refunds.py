"""Finance's payments and refunds through the staff pages, against the Stripe double:
the list (search, filters, pagination, a fixed number of queries, audited), one
payment with its lines, refunds and ledger (audited), a refund of a line (pending
until the webhook writes the ledger entry), refunds refused, Stripe's errors, and a
household's payments. Office staff, teachers and guardians are refused."""

from __future__ import annotations

import datetime
import uuid

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from payments.models import Checkout, LedgerEntry, Refund
from payments.selectors import balance_cents
from registration.models import Guardian
from tests.conftest import sign_in
from tests.payments.conftest import deliver
from tests.payments.factories import FeeFactory, FieldTripFactory
from workflow.models import AuditEvent


def _message(response) -> str:
    return str(list(get_messages(response.wsgi_request))[-1])


def _pay(client, stripe_double, checkout: Checkout) -> Checkout:
    session = stripe_double.session_complete(checkout.stripe_session_id)
    deliver(client, stripe_double.event("checkout.session.completed", session))
    checkout.refresh_from_db()
    assert checkout.state == Checkout.State.PAID
    return checkout


@pytest.fixture
def paid_checkout(client, open_checkout, stripe_double) -> Checkout:
    """José paid lunch for Sofía ($25.00) and Mateo ($40.00) and Sofía's field trip
    ($18.50)."""
    return _pay(client, stripe_double, open_checkout)


@pytest.fixture
def finance(finance_user):
    from django.test import Client

    staff = Client()
    sign_in(staff, finance_user)
    return staff


def _refund_url(checkout: Checkout, line) -> str:
    return reverse("staff_payment_refund", kwargs={"pk": checkout.pk, "line_pk": line.pk})


def _refund_data(
    line, amount: str, reason: str = "The trip was cancelled.", token: str = ""
) -> dict[str, str]:
    """A refund form as the page posts it, with its one-time token (a new one unless
    given)."""
    return {
        f"line-{line.pk}-amount": amount,
        f"line-{line.pk}-reason": reason,
        f"line-{line.pk}-token": token or str(uuid.uuid4()),
    }


# -- the list -------------------------------------------------------------------------------


def test_the_list_shows_paid_checkouts_newest_first_and_finds_them(
    finance, paid_checkout, finance_user
):
    response = finance.get(reverse("staff_payments"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "1 payment" in page and "$83.50" in page and "hh-001" in page
    assert "José Ángel García" in page
    detail = reverse("staff_payment", kwargs={"pk": paid_checkout.pk})
    assert detail in page

    def found(**query) -> bool:
        return detail in finance.get(reverse("staff_payments"), query).content.decode()

    assert found(q="hh-001")
    assert found(q="josé garcía")
    assert found(q="jose.garcia@example.com")
    assert found(q=str(paid_checkout.reference))
    assert found(q=paid_checkout.stripe_payment_intent)
    assert not found(q="hh-002")
    assert not found(q="O'Brien")
    assert not found(state="open")
    assert found(state="")
    today = timezone.localdate()
    assert found(since=today.isoformat(), until=today.isoformat())
    assert not found(since=(today + datetime.timedelta(days=1)).isoformat())
    bad = finance.get(reverse("staff_payments"), {"since": "2027-05-02", "until": "2027-05-01"})
    assert "The last day must not be before the first day." in bad.content.decode()

    event = AuditEvent.objects.filter(action="list", object_type="payments.checkout").first()
    assert event.actor == finance_user and event.detail["query"] == ""


def test_the_list_reads_many_payments_in_a_fixed_number_of_queries(
    finance, client, family, guardian_user, stripe_double, django_assert_max_num_queries
):
    from payments.services import checkout_create

    for n in range(12):
        trip = FieldTripFactory(title=f"Trip {n}")
        checkout = checkout_create(
            household=family.household, lines=[(family.sofia, trip, None)], user=guardian_user
        )
        _pay(client, stripe_double, checkout)
    with django_assert_max_num_queries(10):
        response = finance.get(reverse("staff_payments"))
    assert response.status_code == 200
    assert "12 payments" in response.content.decode()
    latest = Checkout.objects.order_by("-paid_at", "-pk").first()
    assert response.content.decode().index(
        reverse("staff_payment", kwargs={"pk": latest.pk})
    ) < response.content.decode().index(
        reverse("staff_payment", kwargs={"pk": Checkout.objects.order_by("pk").first().pk})
    )


# -- one payment and its refunds ------------------------------------------------------------


def test_a_payment_shows_its_lines_gl_codes_and_ledger_and_is_audited(
    finance, paid_checkout, finance_user, family, django_assert_max_num_queries
):
    with django_assert_max_num_queries(14):  # whatever the number of lines and refunds
        response = finance.get(reverse("staff_payment", kwargs={"pk": paid_checkout.pk}))
    page = response.content.decode()
    assert response.status_code == 200
    for text in ("Lunch account", "Aquarium visit", "5300-NUTRITION", "4200-TRIPS", "$18.50"):
        assert text in page
    assert "Sofía García Núñez" in page and "Mateo García Núñez" in page
    assert "written when Stripe confirms it" in page
    assert page.count('name="line-') >= 6  # a refund form per line: amount and reason
    assert 'value="18.50"' in page  # the whole line by default
    event = AuditEvent.objects.get(action="view", object_type="registration.household")
    assert event.object_id == str(family.household.pk) and event.actor == finance_user
    assert event.detail == {"payments": True, "checkout": paid_checkout.pk}


def test_a_refund_is_pending_until_stripe_confirms_it(
    finance, client, paid_checkout, stripe_double, finance_user, family, field_trip
):
    line = paid_checkout.lines.get(fee=field_trip)
    response = finance.post(_refund_url(paid_checkout, line), _refund_data(line, "10.00"))

    assert response.status_code == 302
    refund = Refund.objects.get()
    assert (refund.state, refund.amount_cents, refund.line, refund.requested_by) == (
        Refund.State.PENDING,
        1000,
        line,
        finance_user,
    )
    assert refund.reason == "The trip was cancelled."
    (call,) = stripe_double.calls("POST", "/v1/refunds")
    assert call.idempotency_key == refund.idempotency_key
    assert call.params["amount"] == "1000"
    assert call.params["payment_intent"] == paid_checkout.stripe_payment_intent
    assert "written when Stripe confirms it" in _message(response)
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND).exists()
    assert AuditEvent.objects.filter(
        action="create", object_type="payments.refund", object_id=str(refund.pk)
    ).exists()
    page = finance.get(reverse("staff_payment", kwargs={"pk": paid_checkout.pk})).content.decode()
    assert "$10.00 waiting for Stripe" in page
    assert 'value="8.50"' in page  # what is left to refund

    succeeded = stripe_double.refund_set(refund.stripe_refund_id, "succeeded")
    deliver(client, stripe_double.event("refund.updated", succeeded))

    entry = LedgerEntry.objects.get(kind=LedgerEntry.Kind.REFUND)
    assert (entry.student, entry.fee, entry.amount_cents, entry.refund) == (
        family.sofia,
        field_trip,
        1000,
        refund,
    )
    assert balance_cents(household=family.household) == 1000
    refund.refresh_from_db()
    assert refund.state == Refund.State.SUCCEEDED


def test_a_refund_over_what_is_left_is_refused(finance, paid_checkout, stripe_double, field_trip):
    line = paid_checkout.lines.get(fee=field_trip)
    response = finance.post(_refund_url(paid_checkout, line), _refund_data(line, "18.51"))
    page = response.content.decode()
    assert response.status_code == 200
    assert f'id="id_line-{line.pk}-amount_error">At most $18.50 of this line' in page
    assert "The trip was cancelled." in page  # the reason typed is kept
    assert not Refund.objects.exists()
    assert not stripe_double.calls("POST", "/v1/refunds")


@pytest.mark.parametrize(
    ("amount", "reason", "field", "message"),
    [
        ("", "Duplicate", "amount", "Please give the amount to refund."),
        ("ten", "Duplicate", "amount", "Enter an amount in dollars, for example 18.50."),
        ("0", "Duplicate", "amount", "The amount must be more than $0.00."),
        ("5.00", "   ", "reason", "Please give the reason for the refund."),
    ],
)
def test_bad_refund_input_gets_a_message_next_to_the_field(
    finance, paid_checkout, stripe_double, field_trip, amount, reason, field, message
):
    line = paid_checkout.lines.get(fee=field_trip)
    response = finance.post(_refund_url(paid_checkout, line), _refund_data(line, amount, reason))
    assert f'id="id_line-{line.pk}-{field}_error">{message}' in response.content.decode()
    assert not Refund.objects.exists()


def test_stripe_not_answering_is_said_clearly_and_the_refund_can_be_sent_again(
    finance, paid_checkout, stripe_double, field_trip
):
    line = paid_checkout.lines.get(fee=field_trip)
    stripe_double.fail_next(500)
    response = finance.post(
        _refund_url(paid_checkout, line), _refund_data(line, "18.50", "Parent asked")
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Stripe did not answer" in page and "saved as pending" in page
    assert "Parent asked" in page  # the form is kept
    refund = Refund.objects.get()
    assert refund.state == Refund.State.PENDING and refund.stripe_refund_id is None
    assert "Send it to Stripe again" in page

    response = finance.post(reverse("staff_payment_refund_send", kwargs={"pk": refund.pk}))
    assert response.status_code == 302
    refund.refresh_from_db()
    assert refund.stripe_refund_id
    calls = stripe_double.calls("POST", "/v1/refunds")
    assert [c.idempotency_key for c in calls] == [refund.idempotency_key] * 2
    assert len(stripe_double.state.refunds) == 1
    # Sent twice more: Stripe already has it, nothing is sent.
    finance.post(reverse("staff_payment_refund_send", kwargs={"pk": refund.pk}))
    assert len(stripe_double.calls("POST", "/v1/refunds")) == 2


def test_a_refund_stripe_refuses_is_failed_and_holds_nothing(
    finance, paid_checkout, stripe_double, field_trip
):
    line = paid_checkout.lines.get(fee=field_trip)
    stripe_double.fail_next(400)
    response = finance.post(_refund_url(paid_checkout, line), _refund_data(line, "18.50"))
    assert "Stripe refused this refund, so nothing was refunded." in response.content.decode()
    refund = Refund.objects.get()
    assert refund.state == Refund.State.FAILED
    # The whole line can still be refunded.
    response = finance.post(_refund_url(paid_checkout, line), _refund_data(line, "18.50"))
    assert response.status_code == 302
    assert Refund.objects.filter(state=Refund.State.PENDING).count() == 1


def test_a_line_of_another_checkout_is_refused(
    finance, paid_checkout, client, other_guardian_user, stripe_double, caplog
):
    import logging

    from payments.services import checkout_create
    from registration.models import Household, Student

    other = checkout_create(
        household=Household.objects.get(sourced_id="hh-002"),
        lines=[(Student.objects.get(sourced_id="stu-003"), FeeFactory(kind="optional"), None)],
        user=other_guardian_user,
    )
    line = other.lines.get()
    with caplog.at_level(logging.WARNING, logger="security"):
        response = finance.post(_refund_url(paid_checkout, line), _refund_data(line, "1.00"))
    assert response.status_code == 404
    assert not Refund.objects.exists()
    assert any(r.name == "security" for r in caplog.records)


# -- a household's payments ------------------------------------------------------------------


def test_a_households_payments_are_audited_and_linked_from_the_guardian(
    client, registrar_user, paid_checkout, family, guardian_user
):
    sign_in(client, registrar_user)
    guardian = Guardian.objects.get(user=guardian_user)
    url = reverse("staff_household_payments", kwargs={"pk": family.household.pk})
    assert url in client.get(reverse("staff_guardian", kwargs={"pk": guardian.pk})).content.decode()
    response = client.get(url)
    page = response.content.decode()
    assert response.status_code == 200
    assert "$83.50" in page and "Nothing is owed." in page
    assert reverse("staff_payment", kwargs={"pk": paid_checkout.pk}) in page
    assert AuditEvent.objects.filter(
        action="view",
        object_type="registration.household",
        object_id=str(family.household.pk),
        actor=registrar_user,
    ).exists()


# -- who may -----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["office_user", "teacher_user", "guardian_user"])
def test_only_finance_and_registrars_see_payments(
    request, client, who, paid_checkout, family, field_trip, stripe_double
):
    sign_in(client, request.getfixturevalue(who))
    line = paid_checkout.lines.get(fee=field_trip)
    for url in (
        reverse("staff_payments"),
        reverse("staff_payment", kwargs={"pk": paid_checkout.pk}),
        reverse("staff_household_payments", kwargs={"pk": family.household.pk}),
    ):
        assert client.get(url).status_code == 403, url
    response = client.post(_refund_url(paid_checkout, line), _refund_data(line, "18.50"))
    assert response.status_code == 403
    assert not Refund.objects.exists()
    assert not stripe_double.calls("POST", "/v1/refunds")
