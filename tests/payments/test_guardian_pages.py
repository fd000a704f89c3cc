"""The guardian's fee pages through HTTP, with the local Stripe double: the cart
("Fees"), paying it in one Stripe checkout, and the page Stripe sends the family
back to, which shows where the payment stands and never changes it.

The actors are the shared ones: José (``guardian_user``, hh-001, Spanish-speaking:
Sofía in Grade 3, Mateo in Math 7), Siobhan (``other_guardian_user``, hh-002: Liam
in Kindergarten), and staff.
"""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Sum
from django.test import Client
from django.urls import reverse

from payments.models import Checkout, LedgerEntry
from payments.selectors import balance_cents, settled_cents
from payments.services import checkout_create, checkout_pay
from registration.models import Household, HouseholdGuardian, Student
from tests.conftest import sign_in
from tests.payments.conftest import deliver
from tests.payments.factories import FeeFactory, FieldTripFactory, LunchFactory, child_add
from tests.workflow.wizard_walk import PageParser

TRY_AGAIN = "The payment service did not answer; please try again."


def fees_url(household: Household) -> str:
    return reverse("guardian_fees_household", args=[household.pk])


def status_url(checkout: Checkout) -> str:
    return reverse("checkout_status", args=[checkout.pk])


def key(student: Student, fee) -> str:
    return f"{student.pk}-{fee.pk}"


def parsed(response) -> PageParser:
    parser = PageParser()
    parser.feed(response.content.decode())
    return parser


def cart_form(response):
    """The cart's form on a page: its fields as a browser would send them."""
    forms = [f for f in parsed(response).forms if "data-cart" in f.attrs]
    assert len(forms) == 1, response.content.decode()[:3000]
    return forms[0]


def security_messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "security"]


@pytest.fixture
def jose(client, guardian_user) -> Client:
    sign_in(client, guardian_user)
    return client


# -- the cart ----------------------------------------------------------------------------


def test_the_guardian_finds_the_fees_page_from_home_and_the_nav(jose, family, lunch):
    home = jose.get(reverse("guardian_home")).content.decode()
    assert f'href="{reverse("guardian_fees")}"' in home  # the area's navigation
    assert f'href="{fees_url(family.household)}"' in home  # the household's card
    response = jose.get(reverse("guardian_fees"))
    assert response.status_code == 302 and response.url == fees_url(family.household)


def test_each_child_has_a_fieldset_with_its_fees(jose, family, lunch, field_trip):
    response = jose.get(fees_url(family.household))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<legend>Sofía García Núñez</legend>" in html
    assert "<legend>Mateo García Núñez</legend>" in html
    form = cart_form(response)
    assert form.attrs["method"] == "post"
    # One checkbox per fixed fee, one dollar amount per lunch account, nothing else
    # about money: the amounts are the server's.
    assert form.choices == {"line": [key(family.sofia, field_trip)]}
    assert set(form.fields) == {
        "csrfmiddlewaretoken",
        "line",
        f"lunch-{key(family.sofia, lunch)}",
        f"lunch-{key(family.mateo, lunch)}",
    }
    assert "Aquarium visit</strong> · $18.50" in html
    assert "From $5.00 to $200.00." in html
    assert 'src="/static/js/payments-cart.js"' in html and "<script>" not in html


def test_three_children_pay_lunch_for_two_and_a_trip_for_one_in_one_checkout(
    jose, family, lunch, field_trip, stripe_double
):
    lucia = child_add(family.household, given_name="Lucía", grade="01")
    page = jose.get(fees_url(family.household)).content.decode()
    assert "<legend>Lucía García Núñez</legend>" in page

    response = jose.post(
        fees_url(family.household),
        {
            "line": [key(family.sofia, field_trip)],
            f"lunch-{key(family.sofia, lunch)}": "30.01",
            f"lunch-{key(lucia, lunch)}": "$45.50",
            f"lunch-{key(family.mateo, lunch)}": "",
        },
    )

    checkout = Checkout.objects.get()
    assert response.status_code == 303
    assert response["Location"] == checkout.stripe_session_url
    assert checkout.total_cents == 3001 + 4550 + 1850 == 9401
    (created,) = stripe_double.calls("POST", "/v1/checkout/sessions")
    items = {
        item["price_data"]["product_data"]["name"]: int(item["price_data"]["unit_amount"])
        for item in created.params["line_items"]
    }
    assert items == {
        "Aquarium visit – Sofía García Núñez": 1850,
        "Lunch account – Sofía García Núñez": 3001,
        "Lunch account – Lucía García Núñez": 4550,
    }
    back = f"{settings.SITE_URL.rstrip('/')}{status_url(checkout)}"
    assert created.params["success_url"] == back
    assert created.params["cancel_url"] == f"{back}?cancelled=1"

    # Back from Stripe before Stripe's confirmation: nothing is paid yet.
    waiting = jose.get(status_url(checkout)).content.decode()
    assert "We are waiting for the payment service to confirm your payment" in waiting
    assert reverse("receipt_download", args=[checkout.pk]) not in waiting
    assert not LedgerEntry.objects.exists()

    session = stripe_double.session_complete(checkout.stripe_session_id)
    assert deliver(jose, stripe_double.event("checkout.session.completed", session)).json() == {
        "received": True,
        "outcome": "paid",
    }

    payments = LedgerEntry.objects.filter(kind=LedgerEntry.Kind.PAYMENT, checkout=checkout)
    assert (
        payments.aggregate(total=Sum("amount_cents"))["total"] == -9401 == -session["amount_total"]
    )
    asked = {(line.student_id, line.fee_id): line.amount_cents for line in checkout.lines.all()}
    assert {(e.student_id, e.fee_id): -e.amount_cents for e in payments} == asked
    assert settled_cents(pairs=asked) == asked
    assert balance_cents(household=family.household) == 0
    assert balance_cents(household=family.household, student=lucia) == 0

    thanks = jose.get(status_url(checkout)).content.decode()
    assert "Thank you: your payment is confirmed" in thanks
    for shown in ("Lunch account – Lucía García Núñez", "$45.50", "$30.01", "$18.50", "$94.01"):
        assert shown in thanks, shown
    assert f'href="{reverse("receipt_download", args=[checkout.pk])}"' in thanks

    # The cart now: the trip is paid, Sofía's lunch account has $169.99 of room.
    after = jose.get(fees_url(family.household))
    assert cart_form(after).choices == {}
    html = after.content.decode()
    assert "Aquarium visit: paid" in html
    assert "From $5.00 to $169.99." in html
    assert "Payments made" in html and "$94.01" in html


def test_double_clicking_pay_creates_one_checkout_session(jose, family, lunch, stripe_double):
    cart = {f"lunch-{key(family.sofia, lunch)}": "25"}
    first = jose.post(fees_url(family.household), cart)
    second = jose.post(fees_url(family.household), cart)
    assert first.status_code == second.status_code == 303
    assert first["Location"] == second["Location"]
    assert Checkout.objects.count() == 1
    assert len(stripe_double.state.sessions) == 1


def test_the_submit_button_is_guarded_by_an_external_script(jose, family, lunch):
    html = jose.get(fees_url(family.household)).content.decode()
    assert "data-cart" in html and 'id="cart-pay"' in html
    script = (settings.BASE_DIR / "static" / "js" / "payments-cart.js").read_text()
    assert "button.disabled = true" in script and "submitting" in script


def test_a_lunch_amount_out_of_range_is_refused_at_the_field_with_the_choices_kept(
    jose, family, lunch, field_trip, stripe_double
):
    name = f"lunch-{key(family.sofia, lunch)}"
    response = jose.post(
        fees_url(family.household),
        {"line": [key(family.sofia, field_trip)], name: "250.00"},
    )
    assert response.status_code == 200
    page = parsed(response)
    assert page.errors[f"id_{name}_error"] == "Please enter an amount from $5.00 to $200.00."
    assert f"id_{name}" in page.invalid
    html = response.content.decode()
    assert 'role="alert"' in html and f'href="#id_{name}"' in html
    form = cart_form(response)
    assert form.fields[name] == ["250.00"]  # what was typed
    assert form.fields["line"] == [key(family.sofia, field_trip)]  # what was ticked
    assert not Checkout.objects.exists() and not stripe_double.requests

    for typed, message in (
        ("4.99", "Please enter an amount from $5.00 to $200.00."),
        ("ten dollars", "Please enter an amount in dollars, such as 25.00."),
        ("-20", "Please enter an amount in dollars, such as 25.00."),
    ):
        page = parsed(jose.post(fees_url(family.household), {name: typed}))
        assert page.errors[f"id_{name}_error"] == message
    assert not Checkout.objects.exists()


def test_an_amount_posted_for_a_fixed_fee_is_never_used(jose, family, field_trip, stripe_double):
    response = jose.post(
        fees_url(family.household),
        {"line": [key(family.sofia, field_trip)], "amount": "1", "amount_cents": "1"},
    )
    assert response.status_code == 303
    assert Checkout.objects.get().total_cents == 1850
    (created,) = stripe_double.calls("POST", "/v1/checkout/sessions")
    assert created.params["line_items"][0]["price_data"]["unit_amount"] == "1850"


def test_nothing_chosen_says_so(jose, family, lunch, field_trip):
    response = jose.post(fees_url(family.household), {})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Please choose at least one fee to pay." in html and 'role="alert"' in html
    assert not Checkout.objects.exists()


@pytest.mark.parametrize("whose", ["child", "fee", "class", "lunch"])
def test_another_households_child_or_fee_is_refused_and_logged(
    jose, family, lunch, field_trip, stripe_double, caplog, whose
):
    liam = Student.objects.get(sourced_id="stu-003")
    pumpkin = FieldTripFactory(title="Pumpkin patch", section=liam.enrollments.get().section)
    posted = {
        "child": {"line": [key(liam, field_trip)]},
        "fee": {"line": [key(family.sofia, pumpkin)]},
        "class": {"line": [key(family.mateo, field_trip)]},
        "lunch": {f"lunch-{key(liam, lunch)}": "20.00"},
    }[whose]
    with caplog.at_level(logging.WARNING, logger="security"):
        response = jose.post(
            fees_url(family.household), {**posted, f"lunch-{key(family.sofia, lunch)}": "10"}
        )
    assert response.status_code == 404
    assert not Checkout.objects.exists() and not stripe_double.requests
    (logged,) = security_messages(caplog)
    assert "in the cart" in logged and fees_url(family.household) in logged


def test_another_households_page_is_404_and_logged(jose, lunch, caplog):
    other = Household.objects.get(sourced_id="hh-002")
    with caplog.at_level(logging.WARNING, logger="security"):
        assert jose.get(fees_url(other)).status_code == 404
        assert jose.post(fees_url(other), {}).status_code == 404
    assert (
        security_messages(caplog)
        == [
            f"refused: fees of another household; user {jose.session['_auth_user_id']}, "
            f"path {fees_url(other)}, ip 127.0.0.1"
        ]
        * 2
    )


def test_a_fee_paid_meanwhile_is_explained_not_refused(
    jose, family, field_trip, other_guardian_user, stripe_double, caplog
):
    page = jose.get(fees_url(family.household))
    assert cart_form(page).choices == {"line": [key(family.sofia, field_trip)]}
    field_trip.active = False  # the teacher called the trip off meanwhile
    field_trip.save()
    with caplog.at_level(logging.WARNING, logger="security"):
        response = jose.post(fees_url(family.household), {"line": [key(family.sofia, field_trip)]})
    assert response.status_code == 200
    assert "can no longer be paid" in response.content.decode()
    assert security_messages(caplog) == []
    assert not Checkout.objects.exists()


def test_an_empty_lunch_field_of_an_account_filled_meanwhile_does_not_stand_in_the_way(
    jose, guardian_user, family, lunch, field_trip, stripe_double
):
    page = cart_form(jose.get(fees_url(family.household)))
    # Meanwhile, on another device, Sofía's lunch account is filled up.
    filled = checkout_create(
        household=family.household, lines=[(family.sofia, lunch, 20_000)], user=guardian_user
    )
    checkout_pay(checkout=filled, payment_intent="pi_full")
    posted = {name: values for name, values in page.fields.items() if name != "csrfmiddlewaretoken"}
    posted["line"] = [key(family.sofia, field_trip)]
    response = jose.post(fees_url(family.household), posted)
    assert response.status_code == 303
    assert Checkout.objects.get(state=Checkout.State.OPEN).total_cents == 1850


@pytest.mark.parametrize("trouble", ["500", "timeout"])
def test_stripe_failing_says_try_again_and_the_retry_reuses_the_key(
    jose, family, lunch, field_trip, stripe_double, settings, trouble
):
    if trouble == "500":
        stripe_double.fail_next(500)
    else:
        settings.STRIPE_TIMEOUT_SECONDS = 0.3
        stripe_double.stall_next(1.0)
    cart = {"line": [key(family.sofia, field_trip)], f"lunch-{key(family.mateo, lunch)}": "40"}

    response = jose.post(fees_url(family.household), cart)

    assert response.status_code == 200
    html = response.content.decode()
    assert TRY_AGAIN in html
    assert f'<a href="#cart-pay">{TRY_AGAIN}</a>' in html  # the summary leads to "Pay"
    form = cart_form(response)
    assert form.fields["line"] == [key(family.sofia, field_trip)]
    assert form.fields[f"lunch-{key(family.mateo, lunch)}"] == ["40"]
    pending = Checkout.objects.get()
    assert pending.state == Checkout.State.OPEN
    assert not LedgerEntry.objects.exists()

    retried = jose.post(fees_url(family.household), cart)

    assert retried.status_code == 303
    checkout = Checkout.objects.get()
    assert checkout.pk == pending.pk and retried["Location"] == checkout.stripe_session_url
    keys = [r.idempotency_key for r in stripe_double.calls("POST", "/v1/checkout/sessions")]
    assert keys == [checkout.idempotency_key] * 2
    assert len(stripe_double.state.sessions) == 1


def test_a_payment_left_unpaid_is_offered_again_as_it_was(
    jose, family, lunch, field_trip, stripe_double
):
    jose.post(
        fees_url(family.household),
        {"line": [key(family.sofia, field_trip)], f"lunch-{key(family.mateo, lunch)}": "12.5"},
    )
    checkout = Checkout.objects.get()
    response = jose.get(fees_url(family.household))
    form = cart_form(response)
    assert form.fields["line"] == [key(family.sofia, field_trip)]
    assert form.fields[f"lunch-{key(family.mateo, lunch)}"] == ["12.50"]
    assert f'href="{status_url(checkout)}"' in response.content.decode()
    again = jose.post(fees_url(family.household), {k: v for k, v in form.fields.items()})
    assert again["Location"] == checkout.stripe_session_url
    assert Checkout.objects.count() == 1


def test_a_guardian_of_two_households_chooses_one(client, family, lunch):
    other = Household.objects.get(sourced_id="hh-002")
    HouseholdGuardian.objects.create(
        household=other, guardian=family.household.guardians.get(sourced_id="par-002")
    )
    sign_in(client, get_user_model().objects.get(email="jose.garcia@example.com"))
    response = client.get(reverse("guardian_fees"))
    html = response.content.decode()
    assert response.status_code == 200
    assert f'href="{fees_url(family.household)}"' in html and f'href="{fees_url(other)}"' in html
    page = client.get(fees_url(other)).content.decode()
    assert "Household at 22 Waverley St" in page and "<legend>Liam" in page


def test_only_guardians(client, sample_district, started, office_user, finance_user):
    anonymous = Client()
    response = anonymous.get(reverse("guardian_fees"))
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))
    household = Household.objects.get(sourced_id="hh-001")
    mateo = Student.objects.get(sourced_id="stu-002")
    mateo.user = get_user_model().objects.create_user(username="mateo", email="mateo@example.com")
    mateo.save(update_fields=["user"])
    pupil = Client()
    pupil.force_login(mateo.user)
    for user in (office_user, finance_user, None):
        other = pupil
        if user is not None:
            other = Client()
            sign_in(other, user)
        for url in (reverse("guardian_fees"), fees_url(household), status_url(started)):
            assert other.get(url).status_code == 403, (user, url)
        assert other.post(fees_url(household), {}).status_code == 403


def test_the_page_costs_the_same_queries_for_two_children_and_five(
    jose,
    guardian_user,
    family,
    campaign,
    lunch,
    field_trip,
    stripe_double,
    django_assert_max_num_queries,
):
    def count() -> int:
        # 17: one of them asks whether a child is eligible for free meals (waivers).
        with django_assert_max_num_queries(17) as captured:
            assert jose.get(fees_url(family.household)).status_code == 200
        return len(captured)

    paid = checkout_create(
        household=family.household, lines=[(family.sofia, field_trip, None)], user=guardian_user
    )
    checkout_pay(checkout=paid, payment_intent="pi_q")
    small = count()
    for name in ("Ana", "Bea", "Cal"):
        child_add(family.household, given_name=name, section_sourced_id="cls-hr-3")
    for index in range(5):
        FeeFactory(title=f"Required {index}", campaign=campaign)
        FieldTripFactory(title=f"Trip {index}")
        LunchFactory(title=f"Lunch {index}")
    more = checkout_create(
        household=family.household, lines=[(family.mateo, lunch, 1000)], user=guardian_user
    )
    checkout_pay(checkout=more, payment_intent="pi_q2")
    assert count() == small


def test_the_page_is_in_spanish_for_jose(jose, family, lunch, field_trip):
    jose.cookies[settings.LANGUAGE_COOKIE_NAME] = "es"
    html = jose.get(fees_url(family.household)).content.decode()
    assert '<html lang="es">' in html
    assert ">Cuotas</a>" in html  # the navigation, from the catalogue
    assert "Elija qué pagar para cada hijo o hija" in html
    assert "Fees and payments" not in html and ">Pay<" not in html
    assert "$18.50" in html and "<legend>Sofía García Núñez</legend>" in html


# -- the page Stripe sends the family back to ---------------------------------------------


@pytest.fixture
def started(jose, family, lunch, field_trip, stripe_double) -> Checkout:
    response = jose.post(
        fees_url(family.household),
        {"line": [key(family.sofia, field_trip)], f"lunch-{key(family.mateo, lunch)}": "40"},
    )
    assert response.status_code == 303
    return Checkout.objects.get()


def test_the_return_page_never_marks_anything_paid(jose, started):
    response = jose.get(status_url(started) + "?paid=1&checkout=1&state=paid")
    html = response.content.decode()
    assert response.status_code == 200
    assert "We are waiting for the payment service to confirm your payment" in html
    assert 'src="/static/js/checkout-status.js"' in html and "Stop checking" in html
    started.refresh_from_db()
    assert started.state == Checkout.State.OPEN
    assert not LedgerEntry.objects.exists()
    assert response["Cache-Control"].startswith("max-age=0")
    polled = jose.get(status_url(started), HTTP_X_REQUESTED_WITH="fetch")
    assert polled.json() == {"state": "open"}


def test_cancelling_on_stripe_says_nothing_was_charged(jose, started, family):
    html = jose.get(status_url(started) + "?cancelled=1").content.decode()
    assert "You have not been charged." in html
    assert f'href="{fees_url(family.household)}"' in html
    assert "Stop checking" not in html
    started.refresh_from_db()
    assert started.state == Checkout.State.OPEN


def test_an_expired_checkout_says_so(jose, started, family, stripe_double):
    body = stripe_double.event(
        "checkout.session.expired", stripe_double.session_expire(started.stripe_session_id)
    )
    deliver(jose, body)
    html = jose.get(status_url(started)).content.decode()
    assert "This payment was not completed" in html and "You have not been charged." in html
    assert jose.get(status_url(started), HTTP_X_REQUESTED_WITH="fetch").json() == {
        "state": "expired"
    }


def test_another_households_checkout_is_404_and_logged(started, other_guardian_user, caplog):
    siobhan = Client()
    sign_in(siobhan, other_guardian_user)
    with caplog.at_level(logging.WARNING, logger="security"):
        assert siobhan.get(status_url(started)).status_code == 404
        assert siobhan.get(status_url(started), HTTP_X_REQUESTED_WITH="fetch").status_code == 404
    assert len(security_messages(caplog)) == 2
    assert all("checkout of another household" in m for m in security_messages(caplog))
