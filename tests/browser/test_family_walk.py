"""A guardian's whole year in a real browser: activate with the code the district
mailed (from ``issue_activation_codes``), create the sign-in and confirm its email,
walk every step of the re-registration wizard (reporting a move, with a photo of the
lease from the phone), sign, pay on the local TEST checkout and download the
confirmation PDF.

Three walks: in English with a mouse on a desktop, in Spanish with a finger on a
360 px phone (every page no wider than the phone, the wizard's progress on the first
screen), and in English with the keyboard alone (visible focus at every stop). The
English and Spanish walks leave screenshots of every wizard step at 360 px in
``var/screenshots/wizard/<language>/``.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import pytest
from django.urls import reverse
from pypdf import PdfReader

from payments.models import Checkout, Fee, LedgerEntry
from registration.models import Guardian
from tests.browser.sign_in import sign_in_form
from tests.browser.walk import (
    DESKTOP,
    SCREENSHOTS,
    Child,
    Family,
    FamilyWalk,
    Keyboard,
    Mouse,
    Touch,
    activation_code,
    emails_to,
    lease_photo,
)
from tests.payments.factories import FeeFactory, LunchFactory
from workflow.models import AddressChangeRequest, AddressProof, Registration, Submission

pytestmark = pytest.mark.browser

ACTIVITY_FEE_CENTS = 2500
LUNCH_CENTS = 2000

SIOBHAN = Family(
    sourced_id="par-003",
    given_name="Siobhan",
    full_name="Siobhan O'Brien",
    birth_date="2021-06-30",  # Liam's
    email="siobhan.obrien@example.net",
    children=[
        Child(
            "Liam O'Brien",
            allergies="Peanuts",
            consents=("Photos and video of my child may be published",),
        ),
        Child(
            "Zoë O'Brien",
            consents=("My child may use the internet and school accounts",),
        ),
    ],
    guardians=["Siobhan O'Brien"],
    new_mobile="(415) 555-0199",
    new_street="310 Ramona St",
)
MARIA_JOSE = Family(
    sourced_id="par-001",
    given_name="María José",
    full_name="María José Núñez-Peña",
    birth_date="2018-03-14",  # Sofía's
    email="mariajose.nunez@example.net",
    children=[
        Child(
            "Sofía García Núñez",
            allergies="Penicilina",
            consents=("The school may seek emergency medical treatment for my child",),
        ),
        Child(
            "Mateo García Núñez",
            consents=("My child may go on walking trips near school",),
        ),
    ],
    guardians=["María José Núñez-Peña", "José Ángel García"],
    new_mobile="(650) 555-0166",
    new_street="77 Magnolia Way",
    emergency_contact=("Lucía Peña", "Abuela", "(650) 555-0181"),
)
ADAEZE = Family(
    sourced_id="par-006",
    given_name="Adaeze",
    full_name="Adaeze Okafor",
    birth_date="2020-02-29",  # Amara's
    email="adaeze.okafor@example.net",
    children=[Child("Amara Okafor", allergies="Dust", consents=())],
    guardians=["Adaeze Okafor", "Emeka Okafor", "Ngozi Okafor"],
    new_mobile="(408) 555-0107",
    new_street="12 Hawthorne Ave",
    emergency_contact=("Chinwe Eze", "Family friend", "(408) 555-0180"),
)


# The district writes its fees' titles in each language, as the demo district does.
LUNCH_TITLES = {"en": "Lunch account", "es": "Cuenta del almuerzo", "zh-hans": "午餐账户"}


@pytest.fixture
def fees(campaign):
    """The year's activity fee, required of every child, and lunch accounts."""
    FeeFactory(
        kind=Fee.Kind.REQUIRED,
        title="Activity fee",
        title_es="Cuota de actividades",
        title_zh="活动费",
        amount_cents=ACTIVITY_FEE_CENTS,
        campaign=campaign,
    )
    LunchFactory(title_es=LUNCH_TITLES["es"], title_zh=LUNCH_TITLES["zh-hans"])
    return campaign


@pytest.fixture
def local_checkout(settings, live_server):
    settings.STRIPE_MODE = "local"
    settings.SITE_URL = live_server.url  # where the TEST checkout sends the family back


def walk_the_year(walk: FamilyWalk, family: Family, tmp_path: Path) -> bytes:
    """Activation to the confirmation PDF; returns the PDF."""
    walk.activate(activation_code(family.sourced_id, tmp_path), family.birth_date)
    walk.create_sign_in(family)
    walk.confirm_email(family)
    walk.start_registration()
    walk.step_contacts(family)
    walk.step_preferences(family)
    walk.step_address(family, lease_photo(tmp_path))
    walk.step_emergency(family)
    walk.step_children(family)
    handbook = "Manual para familias" if walk.language == "es" else "Family handbook"
    walk.step_acknowledgements([handbook], "fees")
    paid = ACTIVITY_FEE_CENTS * len(family.children) + LUNCH_CENTS
    first_name = family.children[0].full_name.split()[0]
    walk.step_fees_pay(
        lunch=LUNCH_TITLES[walk.language],
        lunch_for=first_name,
        lunch_cents=LUNCH_CENTS,
        total_cents=paid,
    )
    walk.step_review_and_sign(family)
    return walk.download_confirmation()


def assert_the_year_is_on_file(family: Family, proof: Path, language: str) -> None:
    """What the walk left in the database: the guardian's language, the move with the
    photo as sent, the payment, the signed submission."""
    guardian = Guardian.objects.get(sourced_id=family.sourced_id)
    assert guardian.user is not None and guardian.user.email == family.email
    assert guardian.language == language
    request = AddressChangeRequest.objects.get(requested_by=guardian)
    assert request.street1 == family.new_street
    assert request.state == AddressChangeRequest.State.AWAITING_VISIT
    (stored,) = AddressProof.objects.filter(request=request)
    assert stored.content_type == "image/jpeg"
    assert stored.sha256 == hashlib.sha256(proof.read_bytes()).hexdigest()
    checkout = Checkout.objects.get(household=request.household)
    expected = ACTIVITY_FEE_CENTS * len(family.children) + LUNCH_CENTS
    assert (checkout.state, checkout.total_cents) == (Checkout.State.PAID, expected)
    payments = LedgerEntry.objects.filter(household=request.household, kind="payment")
    assert sum(entry.amount_cents for entry in payments) == -expected
    registration = Registration.objects.get(household=request.household)
    assert registration.state == Registration.State.SUBMITTED
    submission = Submission.objects.get(registration=registration)
    assert (submission.signed_name, submission.language) == (family.full_name, language)


def assert_confirmation(pdf: bytes, family: Family, walk: FamilyWalk) -> None:
    """The family's confirmation: its heading in the walk's language (and not in the
    other), the document's language set, every child named, the signature."""
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join((page.extract_text() or "") for page in reader.pages)
    text = " ".join(text.split())
    heading = walk.t("Registration for %(year)s: confirmation", year="2027–28")
    assert heading in text, text[:400]
    english = "Registration for 2027–28: confirmation"
    assert (english in text) == (walk.language == "en")
    assert reader.trailer["/Root"].get("/Lang") == walk.language
    for child in family.children:
        assert child.full_name in text, child.full_name
    assert family.full_name in text
    assert family.new_street in text


def assert_emails(family: Family, walk: FamilyWalk, pdf: bytes) -> None:
    """What was sent to the family after the walk is in the walk's language: the
    confirmation (the PDF downloaded, attached) and the receipt."""
    subjects = {message.subject: message for message in emails_to(family.email)}
    submitted = walk.t("Your registration for %(year)s is submitted", year="2027–28")
    (confirmation,) = [m for subject, m in subjects.items() if subject.endswith(submitted)]
    ((filename, attached, _type),) = confirmation.attachments
    assert filename == walk.t("registration-%(year)s.pdf", year="2027–28")
    assert attached == pdf
    receipt = walk.t(
        "Receipt %(number)s for your payment to %(district)s", number="\0", district="\0"
    )
    receipt_subject = re.compile(".+".join(re.escape(part) for part in receipt.split("\0")))
    assert any(receipt_subject.search(subject) for subject in subjects), sorted(subjects)


def test_an_english_family_walks_the_year_on_a_desktop(
    browser_page, live_server, fees, local_checkout, tmp_path
):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    walk = FamilyWalk(page, Mouse(page), language="en", screenshots=SCREENSHOTS / "en")
    pdf = walk_the_year(walk, SIOBHAN, tmp_path)
    assert_confirmation(pdf, SIOBHAN, walk)
    assert_emails(SIOBHAN, walk, pdf)
    assert_the_year_is_on_file(SIOBHAN, tmp_path / "lease-photo.jpg", "en")


def test_a_spanish_family_walks_the_year_on_a_phone(
    phone_page, live_server, fees, local_checkout, tmp_path
):
    """The phone's browser asks for English; the family switches to Spanish on the
    activation page and chooses Spanish for what is sent to them."""
    page = phone_page
    walk = FamilyWalk(page, Touch(page), language="es", phone=True, screenshots=SCREENSHOTS / "es")
    pdf = walk_the_year(walk, MARIA_JOSE, tmp_path)
    assert_confirmation(pdf, MARIA_JOSE, walk)
    assert_emails(MARIA_JOSE, walk, pdf)
    assert_the_year_is_on_file(MARIA_JOSE, tmp_path / "lease-photo.jpg", "es")

    # The choice follows her: signing in on another device, whose browser asks for
    # English, opens her pages in Spanish.
    other_device = page.context.browser.new_context(base_url=live_server.url, locale="en-US")
    try:
        other = other_device.new_page()
        sign_in_form(other, live_server, MARIA_JOSE.email, MARIA_JOSE.password)
        other.wait_for_url(live_server.url + reverse("guardian_home"))
        assert other.evaluate("document.documentElement.lang") == "es"
    finally:
        other_device.close()


def test_a_family_walks_the_year_with_the_keyboard_alone(
    browser_page, live_server, fees, local_checkout, tmp_path
):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    walk = FamilyWalk(page, Keyboard(page), language="en")
    pdf = walk_the_year(walk, ADAEZE, tmp_path)
    assert_confirmation(pdf, ADAEZE, walk)
    assert_emails(ADAEZE, walk, pdf)
    assert_the_year_is_on_file(ADAEZE, tmp_path / "lease-photo.jpg", "en")
