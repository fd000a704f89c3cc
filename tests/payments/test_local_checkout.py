"""Without Stripe keys: the local TEST checkout.

The gateway answers from our own database, the family pays, fails or cancels on our
TEST page, and the page's signed events go through the real webhook view, so the
ledger, the receipt and every state change run the same code as with Stripe. Nothing
here may reach the network: ``STRIPE_API_BASE`` points at a closed port.
"""

from __future__ import annotations

import io
import logging
import re
from urllib.parse import urlsplit

import pytest
import stripe
from django.core import mail
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from payments import local_stripe, stripe_gateway
from payments.models import Checkout, LedgerEntry, Refund, StripeEvent
from payments.selectors import balance_cents
from payments.services import checkout_create, refund_request
from tests.conftest import sign_in
from tests.payments.stripe_double import signature_header as double_signature_header

LOCAL_SECRET = "whsec_local_checkout_tests_only"


def use_local_stripe(settings) -> None:
    """Settings of an installation without Stripe keys (the embedded default)."""
    settings.STRIPE_MODE = "local"
    settings.STRIPE_SECRET_KEY = "sk_test_local_not_a_real_key"
    settings.STRIPE_WEBHOOK_SECRET = LOCAL_SECRET
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # nothing listens: no call may go out
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    settings.STRIPE_TIMEOUT_SECONDS = 0.5


@pytest.fixture
def local_mode(settings):
    use_local_stripe(settings)
    return settings


@pytest.fixture
def local_checkout(local_mode, family, lunch, field_trip, guardian_user) -> Checkout:
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


def page(checkout: Checkout) -> str:
    return reverse("test_checkout", args=[checkout.stripe_session_id])


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_without_keys_a_checkout_opens_the_local_test_page(local_checkout):
    checkout = local_checkout
    assert checkout.stripe_session_id == f"cs_test_local_{checkout.reference.hex}"
    url = urlsplit(checkout.stripe_session_url)
    assert url.path == page(checkout)
    # The session remembers where the family goes afterwards, as Stripe's does.
    success, cancel = local_stripe.return_urls(checkout)
    assert str(checkout.pk) in success and str(checkout.pk) in cancel
    assert success != cancel
    session = stripe_gateway.checkout_session_retrieve(session_id=checkout.stripe_session_id)
    assert (session.status, session.payment_status) == ("open", "unpaid")
    assert session.amount_total == 8350
    assert session.client_reference_id == str(checkout.pk)


def test_asking_again_for_the_same_cart_gets_the_same_local_session(
    local_checkout, family, lunch, field_trip, guardian_user
):
    again = checkout_create(
        household=family.household,
        lines=[
            (family.sofia, lunch, 2500),
            (family.mateo, lunch, 4000),
            (family.sofia, field_trip, None),
        ],
        user=guardian_user,
    )
    assert again.pk == local_checkout.pk
    assert again.stripe_session_id == local_checkout.stripe_session_id


def test_a_new_cart_expires_the_open_local_session(local_checkout, family, lunch, guardian_user):
    replacement = checkout_create(
        household=family.household, lines=[(family.sofia, lunch, 1000)], user=guardian_user
    )
    local_checkout.refresh_from_db()
    assert local_checkout.state == Checkout.State.EXPIRED
    assert replacement.state == Checkout.State.OPEN
    assert replacement.stripe_session_id != local_checkout.stripe_session_id
    session = stripe_gateway.checkout_session_retrieve(session_id=local_checkout.stripe_session_id)
    assert session.status == "expired"


def test_the_page_shows_the_test_banner_the_lines_the_total_and_three_buttons(
    client, local_checkout, guardian_user, django_assert_max_num_queries
):
    sign_in(client, guardian_user)
    client.get(page(local_checkout))  # the first request of a session may read more
    with django_assert_max_num_queries(10):
        response = client.get(page(local_checkout))
    assert response.status_code == 200
    html = response.content.decode()
    assert "TEST — no real money" in html
    assert "No card is asked for and no money moves." in html
    for line in local_checkout.lines.select_related("student", "fee"):
        assert line.student.full_name in html
        assert line.fee.title in html
    assert "$25.00" in html and "$40.00" in html and "$18.50" in html
    assert "$83.50" in html
    assert re.findall(r'name="action" value="(\w+)"', html) == ["pay", "fail", "cancel"]
    assert 'name="csrfmiddlewaretoken"' in html
    assert "<legend>" in html


def test_pay_marks_the_checkout_paid_writes_the_ledger_and_emails_the_receipt(
    client, local_checkout, family, guardian_user, django_capture_on_commit_callbacks
):
    sign_in(client, guardian_user)
    success, _cancel = local_stripe.return_urls(local_checkout)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(page(local_checkout), {"action": "pay"})
    assert response.status_code == 302
    assert response.url == success

    checkout = Checkout.objects.get(pk=local_checkout.pk)
    assert checkout.state == Checkout.State.PAID
    assert checkout.stripe_payment_intent == f"pi_test_local_{checkout.reference.hex}"
    payments = LedgerEntry.objects.filter(checkout=checkout, kind=LedgerEntry.Kind.PAYMENT)
    assert payments.count() == 3
    assert payments.aggregate(total=Sum("amount_cents"))["total"] == -8350
    assert balance_cents(household=family.household) == 0
    (event,) = StripeEvent.objects.all()
    assert event.event_id == f"evt_test_local_{checkout.reference.hex}_paid"
    assert event.type == "checkout.session.completed"
    assert event.outcome == "paid" and event.processed_at is not None

    (message,) = mail.outbox
    assert message.to == ["jose.garcia@example.com"]
    (attachment,) = message.attachments
    filename, content, mimetype = attachment
    assert mimetype == "application/pdf"
    assert filename.endswith(".pdf")
    text = pdf_text(content)
    for line in checkout.lines.select_related("student", "fee"):
        assert line.student.full_name in text
        assert line.fee.title in text
    assert re.findall(r"\$[\d,]+\.\d\d", text) == ["$25.00", "$40.00", "$18.50", "$83.50"]
    assert "PRUEBA — no se pagó dinero real" in text  # a TEST receipt says so, in Spanish
    assert checkout.receipt.emailed_at is not None


def test_fail_is_a_bank_payment_that_fails(
    client, local_checkout, guardian_user, django_capture_on_commit_callbacks
):
    sign_in(client, guardian_user)
    success, _cancel = local_stripe.return_urls(local_checkout)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(page(local_checkout), {"action": "fail"})
    assert response.status_code == 302 and response.url == success
    checkout = Checkout.objects.get(pk=local_checkout.pk)
    assert checkout.state == Checkout.State.FAILED
    assert not LedgerEntry.objects.exists()
    outcomes = dict(StripeEvent.objects.values_list("type", "outcome"))
    assert outcomes == {
        "checkout.session.completed": "open: payment_status unpaid, waiting for the "
        "asynchronous payment",
        "checkout.session.async_payment_failed": "failed",
    }
    assert mail.outbox == []
    # The page now says so, and has nothing left to press.
    html = client.get(page(checkout)).content.decode()
    assert "This payment failed. Nothing was paid." in html
    assert 'value="pay"' not in html


def test_cancel_goes_back_and_leaves_the_checkout_open(client, local_checkout, guardian_user):
    sign_in(client, guardian_user)
    _success, cancel = local_stripe.return_urls(local_checkout)
    response = client.post(page(local_checkout), {"action": "cancel"})
    assert response.status_code == 302 and response.url == cancel
    local_checkout.refresh_from_db()
    assert local_checkout.state == Checkout.State.OPEN
    assert not StripeEvent.objects.exists()
    # The family can come back and pay until the session expires.
    assert client.get(page(local_checkout)).status_code == 200


def test_pay_twice_pays_once(
    client, local_checkout, guardian_user, django_capture_on_commit_callbacks
):
    sign_in(client, guardian_user)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(page(local_checkout), {"action": "pay"})
        second = client.post(page(local_checkout), {"action": "pay"})
    assert first.status_code == second.status_code == 302
    assert second.url == first.url
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT).count() == 3
    assert StripeEvent.objects.count() == 1
    assert len(mail.outbox) == 1


def test_two_presses_racing_are_one_event(local_checkout, django_capture_on_commit_callbacks):
    """Both requests saw an open checkout: they send the same event, acted on once."""
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = [local_stripe.checkout_paid_deliver(checkout=local_checkout) for _ in range(2)]
    assert outcomes == ["paid", "duplicate"]
    assert StripeEvent.objects.count() == 1
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT).count() == 3
    assert len(mail.outbox) == 1


def test_an_expired_session_takes_no_payment(client, local_checkout, guardian_user):
    Checkout.objects.filter(pk=local_checkout.pk).update(
        expires_at=timezone.now() - timezone.timedelta(minutes=1)
    )
    sign_in(client, guardian_user)
    html = client.get(page(local_checkout)).content.decode()
    assert "This payment page has expired. Nothing was paid." in html
    assert 'value="pay"' not in html
    _success, cancel = local_stripe.return_urls(local_checkout)
    response = client.post(page(local_checkout), {"action": "pay"})  # a page left open
    assert response.status_code == 302 and response.url == cancel
    local_checkout.refresh_from_db()
    assert local_checkout.state == Checkout.State.EXPIRED
    assert StripeEvent.objects.get().type == "checkout.session.expired"
    assert not LedgerEntry.objects.exists()


def test_a_forged_post_from_another_guardian_is_404_logged_and_changes_nothing(
    client, local_checkout, other_guardian_user, caplog
):
    sign_in(client, other_guardian_user)
    with caplog.at_level(logging.WARNING, logger="security"):
        posted = client.post(page(local_checkout), {"action": "pay"})
        shown = client.get(page(local_checkout))
    assert posted.status_code == shown.status_code == 404
    local_checkout.refresh_from_db()
    assert local_checkout.state == Checkout.State.OPEN
    assert not StripeEvent.objects.exists()
    assert not LedgerEntry.objects.exists()
    refusals = [r.getMessage() for r in caplog.records if r.name == "security"]
    assert len(refusals) == 2
    assert all("test checkout" in message for message in refusals)


def test_staff_and_strangers_do_not_see_the_page(client, local_checkout, office_user):
    assert client.get(page(local_checkout)).status_code == 302  # to sign in
    sign_in(client, office_user)
    assert client.get(page(local_checkout)).status_code == 404


def test_a_button_value_that_is_not_one_of_the_three_is_refused(
    client, local_checkout, guardian_user
):
    sign_in(client, guardian_user)
    response = client.post(page(local_checkout), {"action": "refund"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'class="error-summary"' in html
    assert 'href="#id_action"' in html and 'id="id_action"' in html
    local_checkout.refresh_from_db()
    assert local_checkout.state == Checkout.State.OPEN


def test_the_page_is_404_with_stripe_keys(client, local_checkout, guardian_user, settings):
    settings.STRIPE_MODE = "stripe"
    sign_in(client, guardian_user)
    assert client.get(page(local_checkout)).status_code == 404
    assert client.post(page(local_checkout), {"action": "pay"}).status_code == 404
    local_checkout.refresh_from_db()
    assert local_checkout.state == Checkout.State.OPEN


def test_local_events_are_signed_as_stripe_signs_them(local_mode):
    payload = b'{"id": "evt_1", "type": "checkout.session.completed"}'
    header = local_stripe.signature_header(payload, LOCAL_SECRET, timestamp=1_700_000_000)
    assert header == double_signature_header(payload.decode(), LOCAL_SECRET, 1_700_000_000)
    now = local_stripe.signature_header(payload, LOCAL_SECRET)
    assert stripe.WebhookSignature.verify_header(payload, now, LOCAL_SECRET, tolerance=300)
    with pytest.raises(stripe_gateway.WebhookSignatureInvalid):
        stripe_gateway.webhook_event_verify(
            payload=payload, signature=local_stripe.signature_header(payload, "whsec_other")
        )


def test_a_local_refund_succeeds_after_the_commit_and_writes_the_ledger(
    local_checkout, family, lunch, finance_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        local_stripe.checkout_paid_deliver(checkout=local_checkout)
    mateo_lunch = local_checkout.lines.get(student=family.mateo, fee=lunch)

    with django_capture_on_commit_callbacks(execute=False) as after_commit:
        refund = refund_request(
            line=mateo_lunch, amount_cents=1500, reason="Moved away", actor=finance_user
        )
    refund.refresh_from_db()
    assert refund.stripe_refund_id == f"re_test_local_{refund.reference.hex}"
    assert refund.stripe_charge == f"ch_test_local_{local_checkout.reference.hex}"
    assert refund.state == Refund.State.PENDING  # nothing is said before the commit
    assert not LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND).exists()

    for callback in after_commit:
        callback()
    refund.refresh_from_db()
    assert refund.state == Refund.State.SUCCEEDED
    (entry,) = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.REFUND)
    assert (entry.student, entry.fee, entry.amount_cents) == (family.mateo, lunch, 1500)
    assert entry.stripe_refund == refund.stripe_refund_id
    # Lunch money given back is not owed again: an adjustment goes with the refund.
    (given_back,) = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.ADJUSTMENT)
    assert (given_back.student, given_back.amount_cents) == (family.mateo, -1500)
    assert balance_cents(household=family.household) == 0
    outcomes = dict(
        StripeEvent.objects.filter(type__in=["refund.updated", "charge.refunded"]).values_list(
            "type", "outcome"
        )
    )
    assert outcomes == {
        "refund.updated": f"refund {refund.stripe_refund_id} recorded",
        "charge.refunded": f"refund {refund.stripe_refund_id} already settled",
    }
    (listed,) = stripe_gateway.refunds_of_charge(charge_id=refund.stripe_charge)
    assert (listed.id, listed.status, listed.amount) == (refund.stripe_refund_id, "succeeded", 1500)


def test_without_a_key_production_refuses_to_start():
    from tests.config.test_settings import SECRET, run

    result = run(
        ["manage.py", "check"],
        DJANGO_ENV="production",
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS="registration.example.org",
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "STRIPE_SECRET_KEY must be set when DJANGO_ENV=production" in result.stderr


def test_the_demo_has_fees_to_pay_on_the_test_checkout(
    db, capsys, client, local_mode, django_capture_on_commit_callbacks
):
    from django.core.management import call_command

    from payments.models import Fee
    from registration.models import ClassEnrollment, Guardian, HouseholdStudent

    call_command("seed_demo", "--households", "80", "--seed", "5")
    out = capsys.readouterr().out
    assert "Fees to pay: Lunch account, Yearbook, Science museum field trip." in out
    email = re.search(r"^  guardian\s{2,}(\S+@\S+)$", out, re.MULTILINE).group(1)
    guardian = Guardian.objects.get(user__email=email)
    household = guardian.households.order_by("sourced_id").first()
    lunch = Fee.objects.get(title="Lunch account", kind=Fee.Kind.LUNCH_PREPAY)
    yearbook = Fee.objects.get(title="Yearbook", kind=Fee.Kind.OPTIONAL)
    trip = Fee.objects.get(kind=Fee.Kind.FIELD_TRIP)
    on_trip = HouseholdStudent.objects.filter(
        household=household,
        student__in=ClassEnrollment.objects.filter(section=trip.section).values("student"),
    ).first()
    assert on_trip is not None  # the trip is one of the demo guardian's children's
    call_command("seed_demo", "--households", "80", "--seed", "5")  # again: no new fees
    assert Fee.objects.count() == 3

    checkout = checkout_create(
        household=household,
        lines=[
            (on_trip.student, lunch, 2000),
            (on_trip.student, yearbook, None),
            (on_trip.student, trip, None),
        ],
        user=guardian.user,
    )
    client.post(reverse("account_login"), {"login": email, "password": "demo-password"})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(page(checkout), {"action": "pay"})
    assert response.status_code == 302
    checkout.refresh_from_db()
    assert checkout.state == Checkout.State.PAID
    assert checkout.total_cents == 2000 + 3500 + 1850
    assert balance_cents(household=household) == 0
