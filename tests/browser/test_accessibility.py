"""Every page a family or a member of staff reaches, checked in a real browser by
axe-core (WCAG 2.0, 2.1 and 2.2, levels A and AA, and axe's best practices) and by
what axe cannot check: visible keyboard focus, a skip link that moves focus to
<main>, and touch targets of at least 24 × 24 px on the families' pages at 360 px
(see tests/browser/axe.py). Forms are checked with their errors showing too.

Any problem fails the test, listed with its rule, impact, target and page. Each
test also counts the URL patterns it covered, so that a page dropped from the walk
is noticed.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.db import connections
from django.urls import resolve, reverse
from django.utils import timezone
from playwright.sync_api import expect

from finance.models import Payout, ReconciliationItem
from finance.services import reconcile_payouts
from payments.models import Checkout, Fee
from registration.mfa import totp_code, totp_secret
from registration.models import Guardian, Household, School, StaffProfile, Student
from registration.services import staff_account_create
from tests.browser.axe import Audit
from tests.browser.conftest import CHROMIUM, TIMEOUT_MS
from tests.conftest import PASSWORD
from tests.finance.world import ledger_build, stripe_build
from tests.payments import conftest as payment_fixtures
from tests.payments.factories import FeeFactory, FieldTripFactory, LunchFactory
from tests.test_staff_url_matrix import _world
from workflow.services import activation_code_issue

pytestmark = pytest.mark.browser

# The payment tests' local Stripe double, shared.
stripe_double = payment_fixtures.stripe_double

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}
MATEO_BORN = "2014-11-02"  # a child of household hh-001
CHIDI_BORN = "2020-02-29"  # Ngozi Okafor's son


# -- one browser for the module, a fresh profile for each test ---------------------------


@pytest.fixture(scope="module")
def chromium(live_server: Any) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM):
        pytest.fail(f"No Chromium at {CHROMIUM}: `make system-test` installs Debian's chromium")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with pytest.MonkeyPatch.context() as patch:
        # Playwright's synchronous API runs an event loop in this thread; the tests'
        # own database reads are still synchronous code.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
            try:
                yield browser
            finally:
                browser.close()


@pytest.fixture
def open_page(chromium: Any, live_server: Any) -> Iterator[Any]:
    """``open_page(locale=..., viewport=...)``: a tab in a new profile. The test fails
    if any page broke the Content Security Policy."""
    contexts: list[Any] = []
    refused: list[str] = []

    def open_(locale: str = "en-US", viewport: dict[str, int] = DESKTOP) -> Any:
        context = chromium.new_context(
            base_url=live_server.url,
            locale=locale,
            timezone_id=django_settings.TIME_ZONE,
            viewport=viewport,
        )
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                refused.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        return page

    yield open_
    for context in contexts:
        context.close()
    # The test's own database work ran on connections opened while Playwright ran:
    # close them, or PostgreSQL keeps a session open on the test database.
    connections.close_all()
    assert refused == [], refused


@pytest.fixture
def audit() -> Audit:
    return Audit()


def _assert_clean(audit: Audit, *, expected: set[str], at_least: int) -> None:
    """No problem anywhere, and every page meant to be checked was (a page that
    answered 404 or 403 by mistake counts as "404 page" or "403 page")."""
    assert not audit.problems, audit.report()
    assert expected <= audit.patterns, sorted(expected - audit.patterns)
    assert len(audit.patterns) >= at_least, (len(audit.patterns), sorted(audit.patterns))


# -- moving around ----------------------------------------------------------------------


def _go(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state()


def _submit(page: Any, button: Any) -> None:
    with page.expect_navigation():
        button.click()


def _sign_in(page: Any, email: str, password: str = PASSWORD) -> None:
    _go(page, reverse("account_login"))
    form = page.locator(f'form[action="{reverse("account_login")}"]')
    form.locator('input[name="login"]').fill(email)
    form.locator('input[name="password"]').fill(password)
    _submit(page, form.locator('button[type="submit"]'))


def _sign_out(page: Any) -> None:
    page.context.clear_cookies()


def _staff_sign_in(page: Any, audit: Audit, user: Any, *, wrong_code_first: bool = False) -> None:
    _sign_in(page, user.email)
    page.wait_for_url(re.compile(re.escape(reverse("mfa_authenticate"))))
    if wrong_code_first:
        audit.check(page, "the authenticator step")
        page.locator('input[name="code"]').fill("000000")
        _submit(page, page.locator('main form button[type="submit"]').first)
        assert page.locator('[aria-invalid="true"]').count() >= 1
        audit.check(page, "a wrong code")
    page.locator('input[name="code"]').fill(totp_code(totp_secret(user)))
    _submit(page, page.locator('main form button[type="submit"]').first)


def _link_in_mail(pattern: str) -> str:
    for message in reversed(mail.outbox):
        found = re.search(rf"https?://\S+{pattern}\S*/", message.body)
        if found:
            return found.group(0)
    raise AssertionError(f"no mail with a link to {pattern}")


def _step(page: Any) -> str:
    return urlsplit(page.url).path.rstrip("/").rsplit("/", 1)[-1]


def _walk_the_wizard(
    page: Any, audit: Audit, contacts_fix: dict[str, str], *, address_errors: bool = False
) -> None:
    """From the first step to the review, checking every step. A step sent as "all
    still correct" where the records lack something shows its errors, and is then
    corrected with ``contacts_fix`` (field name: value). With ``address_errors``, a
    move without its new address is sent first."""
    for _ in range(20):
        step = _step(page)
        audit.check(page, f"step {step}")
        if step == "review":
            return
        form = page.locator('form[enctype="multipart/form-data"]')
        unchanged = page.locator('button[name="unchanged"]')
        if step == "acknowledgements":
            for box in form.locator('input[type="checkbox"][name*="-ack_"]').all():
                box.check()
            _submit(page, form.locator(".actions button[type=submit]").first)
        elif step == "fees":
            _submit(page, form.locator('button[value="continue"]'))
        elif step == "address" and address_errors:
            form.locator('input[name="address-moved"][value="yes"]').check()
            _submit(page, form.locator(".actions button[type=submit]").first)
            assert page.locator(".error-summary").count() == 1
            audit.check(page, "step address with errors")
            _submit(page, page.locator('button[name="unchanged"]'))
        elif unchanged.count():
            _submit(page, unchanged)
        else:
            _submit(page, form.locator(".actions button[type=submit]").first)
        if _step(page) == step and page.locator(".error-summary").count():
            audit.check(page, f"step {step} with errors")
            for name, value in contacts_fix.items():
                page.locator(f'[name="{name}"]').fill(value)
            _submit(page, form.locator(".actions button[type=submit]").first)
            assert _step(page) != step, f"{step} was refused again"
    raise AssertionError("the wizard never reached the review")


def _sign_the_review(page: Any, audit: Audit, name: str) -> None:
    form = page.locator('form[enctype="multipart/form-data"]')
    _submit(page, form.locator(".actions button[type=submit]"))  # nothing signed yet
    assert page.locator(".error-summary").count() == 1
    audit.check(page, "review with errors")
    page.locator('[name="review-signed_name"]').fill(name)
    page.locator('[name="review-attest"]').check()
    _submit(page, form.locator(".actions button[type=submit]"))
    page.wait_for_url(re.compile(r"/registrations/\d+/"))


def _pay(page: Any, audit: Audit) -> None:
    """On the fees page: a lunch amount under the smallest allowed first, then
    lunch and the yearbook through the TEST checkout, to the paid checkout."""
    form = page.locator("form[data-cart]")
    lunch = form.locator('.cart-lunch input:not([type="hidden"])').first
    lunch.fill("1")
    _submit(page, form.locator(".actions button[type=submit]"))
    assert page.locator("[aria-invalid='true']").count() >= 1
    audit.check(page, "fees with errors")
    form.locator('.cart-lunch input:not([type="hidden"])').first.fill("20")
    for box in form.locator('input[type="checkbox"]').all():
        box.check()
    _submit(page, form.locator(".actions button[type=submit]"))
    page.wait_for_url(re.compile(r"/payments/test-checkout/"))
    audit.check(page, "the TEST checkout")
    _submit(page, page.locator('button[value="pay"]'))
    page.wait_for_url(re.compile(r"/payments/checkouts/\d+/"))
    page.wait_for_function("() => !document.querySelector('[data-checkout-poll]')")
    audit.check(page, "a paid checkout")


# -- the families' pages ------------------------------------------------------------------

FAMILY_PAGES = {
    "home",
    "account_login",
    "account_signup",
    "account_reset_password",
    "account_reset_password_done",
    "account_reset_password_from_key",
    "account_reset_password_from_key_done",
    "activate",
    "activate_account",
    "account_email_verification_sent",
    "account_confirm_email",
    "student_home",
    "guardian_home",
    "registration_step",
    "registration_status",
    "guardian_fees",
    "guardian_fees_household",
    "test_checkout",
    "checkout_status",
    "404 page",
    "403 page",
}


@pytest.fixture
def fees_on_offer(campaign) -> list[Fee]:
    return [
        LunchFactory(),
        FeeFactory(kind="optional", title="Yearbook", amount_cents=3500),
        FieldTripFactory(title="Aquarium visit"),
    ]


def test_every_page_of_a_family_is_accessible(
    open_page, audit, live_server, settings, campaign, guardian_user, fees_on_offer
):
    settings.STRIPE_MODE = "local"
    settings.SITE_URL = live_server.url
    mail.outbox = []
    page = open_page()

    # The front door, sign-in (with its errors), sign-up, password reset, a lost page.
    _go(page, reverse("home"))
    audit.check(page)
    _go(page, reverse("account_login"))
    audit.check(page)
    _submit(page, page.locator('main form button[type="submit"]'))
    assert page.locator(".error-summary").count() == 1
    audit.check(page, "with errors")
    _go(page, reverse("account_signup"))
    audit.check(page)
    _go(page, reverse("account_reset_password"))
    audit.check(page)
    page.locator('main input[name="email"]').fill(guardian_user.email)
    _submit(page, page.locator('main form button[type="submit"]'))
    audit.check(page)
    _go(page, _link_in_mail("/accounts/password/reset/key/"))
    audit.check(page)
    page.locator('main input[name="password1"]').fill("a new long password")
    page.locator('main input[name="password2"]').fill("a new long password")
    _submit(page, page.locator('main form button[type="submit"]:not([form])'))
    page.wait_for_url(re.compile(reverse("account_reset_password_from_key_done")))
    audit.check(page)
    _go(page, "/no-such-page/")
    audit.check(page)

    # Ngozi, who raises a child in one household and is the grandmother of a child in
    # another, activates with the code from her letter, mistyping it first.
    _code, clear = activation_code_issue(
        guardian=Guardian.objects.get(sourced_id="par-005"), channel="letter"
    )
    _go(page, reverse("activate"))
    audit.check(page)
    page.get_by_label("Activation code").fill("ABCD")
    _submit(page, page.locator('main form button[type="submit"]'))
    audit.check(page, "with errors")
    page.get_by_label("Activation code").fill(clear)
    page.locator('input[name="birth_date"]').fill(CHIDI_BORN)
    _submit(page, page.locator('main form button[type="submit"]'))
    page.wait_for_url(re.compile(reverse("activate_account")))
    audit.check(page)
    page.locator('input[name="email"]').fill("ngozi.okafor@example.com")
    page.locator('input[name="password1"]').fill("correct horse battery")
    page.locator('input[name="password2"]').fill("a different horse")
    _submit(page, page.locator('main form button[type="submit"]'))
    audit.check(page, "with errors")
    page.locator('input[name="password1"]').fill("correct horse battery")
    page.locator('input[name="password2"]').fill("correct horse battery")
    page.locator('input[name="language"][value="en"]').check()
    _submit(page, page.locator('main form button[type="submit"]'))
    page.wait_for_url(re.compile(reverse("account_email_verification_sent")))
    audit.check(page)
    _go(page, _link_in_mail("/accounts/confirm-email/"))
    audit.check(page)
    _submit(page, page.locator('main form button[type="submit"]'))
    page.wait_for_url(re.compile(reverse("guardian_home")))
    audit.check(page, "two households")
    _go(page, reverse("guardian_fees"))
    audit.check(page, "choose a household")
    _sign_out(page)

    # A secondary student's own home, and a page that is not theirs.
    _code, clear = activation_code_issue(
        student=Student.objects.get(sourced_id="stu-002"), channel="letter"
    )
    _go(page, reverse("activate"))
    page.get_by_label("Activation code").fill(clear)
    page.locator('input[name="birth_date"]').fill(MATEO_BORN)
    _submit(page, page.locator('main form button[type="submit"]'))
    page.locator('input[name="email"]').fill("mateo.garcia@example.com")
    page.locator('input[name="password1"]').fill("correct horse battery")
    page.locator('input[name="password2"]').fill("correct horse battery")
    _submit(page, page.locator('main form button[type="submit"]'))
    _go(page, _link_in_mail("/accounts/confirm-email/"))
    _submit(page, page.locator('main form button[type="submit"]'))
    page.wait_for_url(re.compile(reverse("student_home")))
    audit.check(page)
    _go(page, reverse("guardian_home"))
    audit.check(page)  # 403
    _sign_out(page)

    # José: his family, the whole wizard, the confirmation, fees and paying.
    _sign_in(page, guardian_user.email, "a new long password")
    page.wait_for_url(re.compile(reverse("guardian_home")))
    audit.check(page)
    page.evaluate("() => { document.getElementById('session-warning').hidden = false; }")
    audit.check(page, "the idle sign-out warning shown")
    _go(page, reverse("guardian_home"))
    _submit(page, page.locator("a.button-primary[href*='/register/']"))
    maria = Guardian.objects.get(sourced_id="par-001")
    _walk_the_wizard(
        page,
        audit,
        {f"contacts-g{maria.pk}_email": "maria.nunez@example.com"},
        address_errors=True,
    )
    _sign_the_review(page, audit, "José Ángel García")
    audit.check(page, "submitted")
    _go(page, reverse("guardian_fees"))
    audit.check(page)
    household = Household.objects.get(sourced_id="hh-001")
    _go(page, reverse("guardian_fees_household", args=[household.pk]))
    _pay(page, audit)
    assert Checkout.objects.get().state == Checkout.State.PAID
    _go(page, reverse("guardian_fees_household", args=[household.pk]))
    assert page.get_by_role("link", name=re.compile("receipt", re.I)).count() >= 1
    audit.check(page, "with a payment and its receipt")
    _go(page, reverse("staff_home"))
    audit.check(page)  # 403

    # A few of them in Spanish, on a phone.
    page.set_viewport_size(PHONE)
    _go(page, reverse("guardian_home"))
    _submit(page, page.locator('.language-switch button[value="es"]'))
    assert page.locator("html").get_attribute("lang") == "es"
    audit.check(page)
    registration = household.registrations.get()
    _go(page, reverse("registration_status", args=[registration.pk]))
    audit.check(page)
    _go(page, reverse("guardian_fees_household", args=[household.pk]))
    audit.check(page)
    _go(page, "/no-such-page/")
    audit.check(page)
    # And two in Simplified Chinese.
    _go(page, reverse("guardian_home"))
    _submit(page, page.locator('.language-switch button[value="zh-hans"]'))
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    audit.check(page)
    _go(page, reverse("guardian_fees_household", args=[household.pk]))
    audit.check(page)

    _assert_clean(audit, expected=FAMILY_PAGES, at_least=20)
    assert len(audit.languages.get("es", ())) >= 4, audit.languages
    assert len(audit.languages.get("zh-hans", ())) >= 2, audit.languages


def test_a_family_registers_in_spanish_on_a_phone_accessibly(
    open_page, audit, live_server, settings, campaign, other_guardian_user, fees_on_offer
):
    settings.STRIPE_MODE = "local"
    settings.SITE_URL = live_server.url
    page = open_page(locale="es-ES", viewport=PHONE)
    _go(page, reverse("home"))
    audit.check(page)
    _go(page, reverse("activate"))
    _submit(page, page.locator('main form button[type="submit"]'))
    # The errors are read out first: focus moves to their list at the top.
    expect(page.locator(".error-summary")).to_be_focused()
    audit.check(page, "with errors")
    _go(page, reverse("account_login"))
    audit.check(page)
    _sign_in(page, other_guardian_user.email)
    page.wait_for_url(re.compile(reverse("guardian_home")))
    assert page.locator("html").get_attribute("lang") == "es"
    audit.check(page)
    _submit(page, page.locator("a.button-primary[href*='/register/']"))
    _walk_the_wizard(page, audit, {})
    _sign_the_review(page, audit, "Siobhan O'Brien")
    audit.check(page, "submitted")
    household = Household.objects.get(sourced_id="hh-002")
    _go(page, reverse("guardian_fees_household", args=[household.pk]))
    _pay(page, audit)

    _assert_clean(
        audit,
        expected={
            "home",
            "activate",
            "account_login",
            "guardian_home",
            "registration_step",
            "registration_status",
            "guardian_fees_household",
            "test_checkout",
            "checkout_status",
        },
        at_least=9,
    )
    assert set(audit.languages) == {"es"}, audit.languages


# -- the staff pages ---------------------------------------------------------------------


@pytest.fixture
def staff_world(campaign, guardian_user, registrar_user, stripe_double, settings) -> dict[str, Any]:
    """A submitted registration with an address change waiting for its visit, a
    field trip, a month of payments with refunds paid out and reconciled (one
    charge Stripe has that the ledger lacks), and a member of staff who has not
    enrolled an authenticator yet."""
    world = _world(campaign, guardian_user, registrar_user)
    trip = FieldTripFactory(title="Aquarium visit")
    fees = [LunchFactory(), trip, FeeFactory(title="Activity fee")]
    settings.FINANCE_UNPAID_OUT_DAYS = 400
    now = timezone.now() - datetime.timedelta(days=2)
    ledger = ledger_build(
        payer=guardian_user, fee_ids=[f.pk for f in fees], payments=6, refunds=2, now=now, days=5
    )
    ghost = stripe_double.charge_transaction(
        payment_intent="pi_ghost", amount=1234, fee=66, created=int(now.timestamp())
    )
    stripe_build(
        stripe_double, ledger, per_payout=4, extra=[ghost], paid_out_at=now + datetime.timedelta(1)
    )
    reconcile_payouts()
    newcomer = staff_account_create(
        email="new.office@riverside.example.org",
        role=StaffProfile.Role.OFFICE,
        given_name="New",
        family_name="Office",
        password=PASSWORD,
        schools=[],
        profile=None,
    ).user
    return {
        "registration": world.registration,
        "address_request": world.address_request,
        "guardian": world.guardian,
        "household": world.household,
        "campaign": campaign,
        "acknowledgement": world.acknowledgement,
        "trip": trip,
        "fee": fees[2],
        "checkout": Checkout.objects.filter(state=Checkout.State.PAID).order_by("pk").first(),
        "payout": Payout.objects.order_by("pk").first(),
        "mismatch": ReconciliationItem.objects.exclude(mismatch_kind="").order_by("pk").first(),
        "newcomer": newcomer,
    }


def test_every_staff_page_is_accessible(
    open_page, audit, staff_world, registrar_user, finance_user, teacher_user
):
    world = staff_world
    page = open_page()
    _staff_sign_in(page, audit, registrar_user, wrong_code_first=True)
    audit.check(page)  # the dashboard
    registrar_pages = [
        reverse("staff_guardians"),
        reverse("staff_guardians") + "?q=Garc%C3%ADa",
        reverse("staff_guardian", args=[world["guardian"].pk]),
        reverse("staff_activation"),
        reverse("staff_campaigns"),
        reverse("staff_campaign", args=[world["campaign"].pk]),
        reverse("staff_campaign_edit", args=[world["campaign"].pk]),
        reverse("staff_acknowledgement_create", args=[world["campaign"].pk]),
        reverse("staff_reminders"),
        reverse("staff_quality"),
        reverse("staff_audit"),
        reverse("staff_addresses"),
        reverse("staff_address", args=[world["address_request"].pk]),
        reverse("staff_address_visits"),
        reverse("staff_address_schedule"),
        reverse("staff_registrations"),
        reverse("staff_registration", args=[world["registration"].pk]),
        reverse("staff_registration_export"),
        reverse("staff_field_trips"),
        reverse("staff_field_trip", args=[world["trip"].pk]),
        reverse("staff_fees"),
        reverse("staff_meal_eligibility"),
        reverse("staff_payments"),
        reverse("staff_payment", args=[world["checkout"].pk]),
        reverse("staff_household_payments", args=[world["household"].pk]),
        reverse("staff_finance"),
        reverse("staff_finance_payout", args=[world["payout"].pk]),
        reverse("staff_finance_mismatches"),
        reverse("staff_finance_mismatch", args=[world["mismatch"].pk]),
        reverse("staff_finance_collections"),
        reverse("staff_finance_outstanding"),
        reverse("staff_finance_refunds"),
        reverse("staff_finance_summary"),
        reverse("mfa_index"),
        reverse("staff_guardian", args=[999999]),  # 404
        reverse("staff_field_trip_create"),  # teachers only: 403
    ]
    for url in registrar_pages:
        _go(page, url)
        audit.check(page)
    # A form sent back with its errors.
    _go(page, reverse("staff_acknowledgement_create", args=[world["campaign"].pk]))
    _submit(page, page.locator('main form[method="post"] button[type="submit"]').last)
    assert page.locator(".error-summary").count() == 1
    audit.check(page, "with errors")
    _sign_out(page)

    # Finance: the catalog's forms and a refund; a teacher: a new field trip.
    _staff_sign_in(page, audit, finance_user)
    for url in (
        reverse("staff_fee_create", args=["optional"]),
        reverse("staff_fee_edit", args=[world["fee"].pk]),
        reverse("staff_finance_mismatch", args=[world["mismatch"].pk]),
    ):
        _go(page, url)
        audit.check(page)
    _sign_out(page)
    _staff_sign_in(page, audit, teacher_user)
    _go(page, reverse("staff_field_trip_create"))
    audit.check(page)
    _submit(page, page.locator('main form[method="post"] button[type="submit"]').last)
    audit.check(page, "with errors")
    _sign_out(page)

    # A member of staff without an authenticator is asked to enrol one.
    # allauth asks for the password again before an authenticator is added.
    _sign_in(page, world["newcomer"].email)
    page.wait_for_url(re.compile(reverse("account_reauthenticate")))
    audit.check(page)
    page.locator('main input[name="password"]').fill(PASSWORD)
    _submit(page, page.locator('main form button[type="submit"]:not([form])').first)
    page.wait_for_url(re.compile(reverse("mfa_activate_totp")))
    audit.check(page)

    expected = {resolve(urlsplit(url).path).url_name for url in registrar_pages[:-2]}
    expected |= {
        "mfa_authenticate",
        "staff_home",
        "staff_fee_create",
        "staff_fee_edit",
        "staff_field_trip_create",
        "account_reauthenticate",
        "mfa_activate_totp",
        "404 page",
        "403 page",
    }
    _assert_clean(audit, expected=expected, at_least=40)


def test_the_school_search_box_of_a_large_district_is_accessible(
    open_page, audit, campaign, registrar_user, finance_user, monkeypatch
):
    """Above ``SCHOOL_SELECT_MAX`` schools the school filters are search boxes: with
    a school found, with several found and with none."""
    monkeypatch.setattr("config.school_field.SCHOOL_SELECT_MAX", 0)
    middle = School.objects.get(sourced_id="sch-mid")
    page = open_page()
    _staff_sign_in(page, audit, registrar_user)
    for url, note in (
        (f"{reverse('staff_addresses')}?school=School", "several schools"),
        (f"{reverse('staff_address_visits')}?school=Lincoln", "no school"),
        (f"{reverse('staff_registrations')}?school={middle.pk}", "a school"),
    ):
        _go(page, url)
        assert page.locator('input[type="search"][name="school"]').count() == 1
        audit.check(page, note)
    _sign_out(page)
    _staff_sign_in(page, audit, finance_user)
    for url in (
        f"{reverse('staff_fees')}?school=Lincoln",
        reverse("staff_fee_create", args=["optional"]),
    ):
        _go(page, url)
        assert page.locator('input[type="search"][name="school"]').count() == 1
        audit.check(page)
    _assert_clean(
        audit,
        expected={
            "staff_addresses",
            "staff_address_visits",
            "staff_registrations",
            "staff_fees",
            "staff_fee_create",
        },
        at_least=5,
    )


def test_the_school_choice_of_a_large_district_is_accessible(
    open_page, audit, campaign, other_guardian_user, monkeypatch
):
    """Above ``SCHOOL_SELECT_MAX`` schools a child's step lists a few schools and
    offers "Another school" to type: in Spanish, on a phone, with a name that names no
    school, and with one that the wizard takes."""
    monkeypatch.setattr("config.school_field.SCHOOL_SELECT_MAX", 0)
    page = open_page(locale="es-ES", viewport=PHONE)
    _sign_in(page, other_guardian_user.email)
    _submit(page, page.locator("a.button-primary[href*='/register/']"))
    for _ in range(10):
        if _step(page).startswith("child-"):
            break
        unchanged = page.locator('button[name="unchanged"]')
        form = page.locator('form[enctype="multipart/form-data"]')
        _submit(
            page,
            unchanged if unchanged.count() else form.locator(".actions button[type=submit]").first,
        )
    step = _step(page)
    assert step.startswith("child-"), page.url
    other = page.locator(f'input[type="search"][name="{step}-other_school"]')
    assert other.count() == 1
    expect(page.get_by_label("Otra escuela")).to_have_count(1)
    audit.check(page, "a child's step with another school to type")
    other.fill("Escuela que no existe")
    _submit(
        page, page.locator('form[enctype="multipart/form-data"] .actions button[type=submit]').first
    )
    assert _step(page) == step
    expect(page.locator(".error-summary")).to_be_focused()
    message = page.locator(f"#id_{step}-other_school_error")
    expect(message).to_contain_text("Ninguna escuela del distrito se llama")
    expect(page.locator(f'[name="{step}-other_school"]')).to_have_value("Escuela que no existe")
    audit.check(page, "a school that does not exist")
    # Zoë, in grade 10 at Mission Ridge High School, comes first (oldest first).
    page.locator(f'[name="{step}-other_school"]').fill("mission ridge")
    _submit(
        page, page.locator('form[enctype="multipart/form-data"] .actions button[type=submit]').first
    )
    assert _step(page) != step
    _assert_clean(audit, expected={"registration_step"}, at_least=1)
    assert set(audit.languages) == {"es"}, audit.languages


# -- the checks themselves ---------------------------------------------------------------


def test_the_checks_find_what_they_look_for(chromium, live_server, audit):
    """A page spoilt on purpose: focus outlines removed, a tiny link on its own line,
    an image without a text alternative, a block wider than the phone, and a skip
    link that goes nowhere."""
    context = chromium.new_context(base_url=live_server.url, bypass_csp=True, viewport=PHONE)
    try:
        page = context.new_page()
        _go(page, reverse("home"))
        page.add_style_tag(content=":focus-visible { outline: none; box-shadow: none; }")
        page.evaluate(
            """() => {
              const main = document.querySelector('main .wrap');
              main.insertAdjacentHTML('beforeend',
                '<p><a href="/x" style="font-size: 9px; line-height: 1">x</a></p>'
                + '<img src="/static/favicon.svg">'
                + '<div style="width: 500px">too wide</div>');
              document.querySelector('.skip-link').setAttribute('href', '#nowhere');
            }"""
        )
        audit.check(page)
    finally:
        context.close()
        connections.close_all()
    found = {problem.rule for problem in audit.problems}
    assert {
        "focus-visible",
        "target-size-24px",
        "image-alt",
        "skip-link-focus",
        "reflow-360px",
    } <= found, audit.report()
    assert 'a "x" is' in audit.report()
