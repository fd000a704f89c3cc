"""The re-registration wizard through HTTP, as families use it: the whole walk to a
signed confirmation, "this is all still correct", resuming on another device, what
the server refuses, messages at the field, query counts, and a registration that
staff return for corrections.

The actors come from tests/conftest.py: José (household hh-001, with María José,
who has no contacts on file), Siobhan (hh-002, whose records are complete) and the
registrar.
"""

from __future__ import annotations

import datetime
import hashlib
import io
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

from documents.models import Confirmation
from registration.models import (
    Consent,
    ContactPoint,
    EmergencyContact,
    Guardian,
    Household,
    HouseholdGuardian,
    HouseholdStudent,
    School,
    Student,
    StudentGuardian,
    StudentHealth,
)
from registration.services import guardian_account_create
from tests.conftest import PASSWORD, sign_in
from tests.pdf_fonts import font_names, serif_fonts
from tests.workflow.wizard_walk import Page, WizardWalk
from workflow.models import (
    AddressChangeRequest,
    AddressProof,
    AuditEvent,
    EnrollmentDecision,
    Registration,
    RegistrationStep,
    Submission,
    TransitionLog,
)
from workflow.services import campaign_open, content_sha256, registration_return

JOSE = "José Ángel García"
MARIA_EMAIL = "maria.nunez@example.com"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
NEW_ADDRESS = {
    "moved": "yes",
    "street1": "88 Orchard Lane",
    "street2": "",
    "city": "Riverside",
    "state": "CA",
    "postal_code": "95210",
}


# -- the people and their records ------------------------------------------------------


def _guardian(sourced_id: str) -> Guardian:
    return Guardian.objects.get(sourced_id=sourced_id)


def _student(sourced_id: str) -> Student:
    return Student.objects.get(sourced_id=sourced_id)


def _registration(household_sourced_id: str) -> Registration:
    return Registration.objects.get(household__sourced_id=household_sourced_id)


def _g(sourced_id: str, name: str) -> str:
    """A contacts or preferences field of one guardian: ``g<pk>_<name>``."""
    return f"g{_guardian(sourced_id).pk}_{name}"


def _child_step(sourced_id: str) -> str:
    return f"child-{_student(sourced_id).pk}"


def _proof(name: str = "lease.pdf", content: bytes = PDF) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/pdf")


def _signed_in(user: Any, client: Client | None = None) -> Client:
    client = client or Client()
    sign_in(client, user)
    return client


def _add_child(
    household: Household,
    *,
    sourced_id: str,
    given_name: str,
    grade: str,
    school: str,
    born: datetime.date,
    guardians: list[Guardian],
    is_primary: bool = True,
) -> Student:
    student = Student.objects.create(
        sourced_id=sourced_id,
        given_name=given_name,
        family_name="García Núñez",
        grade=grade,
        school=School.objects.get(sourced_id=school),
        birth_date=born,
    )
    HouseholdStudent.objects.create(household=household, student=student, is_primary=is_primary)
    for guardian in guardians:
        StudentGuardian.objects.create(
            student=student, guardian=guardian, relationship="mother", has_education_rights=True
        )
    return student


# -- walking the wizard ---------------------------------------------------------------


def _tick_every_acknowledgement(page: Page) -> dict[str, str]:
    assert page.form is not None
    return {
        name.removeprefix(f"{page.step}-"): "on" for name in page.form.choices if "-ack_" in name
    }


def _answer(wizard: WizardWalk, page: Page, answers: dict[str, dict[str, Any]]) -> Page:
    """Answer the step ``page`` shows: the given answers, else what a family with
    nothing to change does."""
    step = page.step
    if step in answers:
        return wizard.submit(page, answers[step])
    if step == "acknowledgements":
        return wizard.submit(page, _tick_every_acknowledgement(page))
    if not page.offers_unchanged:  # a child decided elsewhere, or a saved step
        return wizard.submit(page)
    return wizard.submit(page, unchanged=True)


def _walk_to(
    wizard: WizardWalk, step: str, answers: dict[str, dict[str, Any]] | None = None
) -> Page:
    """From wherever the wizard resumes to ``step``, saving each step on the way."""
    page = wizard.open()
    for _ in range(20):
        if page.step == step:
            return page
        page = _answer(wizard, page, answers or {})
        assert page.status_code == 200 and not page.errors, (page.url, page.errors)
    raise AssertionError(f"never reached {step}")


def _sign(wizard: WizardWalk, page: Page, name: str, capture: Any = None) -> Page:
    assert page.step == "review", page.url
    if capture is None:
        return wizard.submit(page, {"signed_name": name, "attest": "on"})
    with capture(execute=True):
        return wizard.submit(page, {"signed_name": name, "attest": "on"})


def _jose_answers() -> dict[str, dict[str, Any]]:
    """María José has no phone or email on file: the contacts step needs one."""
    return {"contacts": {_g("par-001", "email"): MARIA_EMAIL}}


@pytest.fixture
def jose(client, guardian_user, campaign) -> WizardWalk:
    """José, signed in, at his household's registration."""
    sign_in(client, guardian_user)
    return WizardWalk(client, _registration("hh-001"))


@pytest.fixture
def siobhan(other_guardian_user, campaign) -> WizardWalk:
    """Siobhan, signed in on a device of her own, at her household's registration."""
    return WizardWalk(_signed_in(other_guardian_user), _registration("hh-002"))


# -- 1. the whole walk ------------------------------------------------------------------


def test_a_family_of_three_signs_and_gets_a_confirmation(
    jose,
    siobhan,
    campaign,
    registrar_user,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    household = Household.objects.get(sourced_id="hh-001")
    address_before = household.address_lines
    jose_g, maria_g, siobhan_g = (_guardian(s) for s in ("par-002", "par-001", "par-003"))
    # A third child, in grade 10, who is moving away.
    lucia = _add_child(
        household,
        sourced_id="stu-x01",
        given_name="Lucía",
        grade="10",
        school="sch-high",
        born=datetime.date(2011, 4, 2),
        guardians=[jose_g, maria_g],
    )
    # Mateo also lives with Siobhan's household, where he is not primary: his
    # parents decide, though Siobhan holds education rights too.
    mateo = _student("stu-002")
    HouseholdStudent.objects.create(
        household=Household.objects.get(sourced_id="hh-002"), student=mateo, is_primary=False
    )
    StudentGuardian.objects.create(student=mateo, guardian=siobhan_g, has_education_rights=True)
    campaign_open(campaign=campaign, actor=registrar_user)
    registration = _registration("hh-001")

    page = jose.open()
    assert page.step == "contacts"
    assert "Step 1 of 9" in page.html
    page = jose.submit(page, {_g("par-001", "email"): MARIA_EMAIL})
    assert page.step == "preferences"
    page = jose.submit(page, unchanged=True)
    assert page.step == "address"
    page = jose.submit(page, {**NEW_ADDRESS, "proofs": _proof()})
    assert page.step == "emergency", page.errors
    page = jose.submit(page, unchanged=True)
    assert page.step == f"child-{lucia.pk}"
    page = jose.submit(
        page,
        {
            "decision": "leaving",
            "leaving_reason": "moving",
            "leaving_destination": "Lincoln High School, Portland, OR",
        },
    )
    assert page.step == f"child-{mateo.pk}"
    assert "decision" in {n.removeprefix(f"{page.step}-") for n in page.fields}
    page = jose.submit(page, unchanged=True)
    assert page.step == _child_step("stu-001")
    page = jose.submit(page, unchanged=True)
    assert page.step == "acknowledgements"
    page = jose.submit(page, _tick_every_acknowledgement(page))
    assert page.step == "review"
    for shown in ("88 Orchard Lane", "lease.pdf", "Lincoln High School, Portland, OR", MARIA_EMAIL):
        assert shown in page.html, shown
    assert 'class="badge badge-changed"' in page.html
    done = _sign(jose, page, "jose angel  GARCIA", django_capture_on_commit_callbacks)
    assert done.url == reverse("registration_status", kwargs={"pk": registration.pk})
    assert "Submitted" in done.html

    registration.refresh_from_db()
    assert registration.state == Registration.State.SUBMITTED
    assert list(
        TransitionLog.objects.filter(
            object_type="workflow.registration", object_id=str(registration.pk)
        ).values_list("transition", flat=True)
    ) == ["start", "submit"]

    decisions = {d.student_id: d for d in EnrollmentDecision.objects.filter(campaign=campaign)}
    leaving = decisions[lucia.pk]
    assert leaving.state == EnrollmentDecision.State.LEAVING
    assert (leaving.leaving_reason, leaving.leaving_destination) == (
        "moving",
        "Lincoln High School, Portland, OR",
    )
    assert leaving.next_school is None
    returning = decisions[mateo.pk]
    assert returning.state == EnrollmentDecision.State.RETURNING
    assert returning.registration_id == registration.pk  # the primary household's
    assert (returning.next_school.sourced_id, returning.next_grade) == ("sch-mid", "08")
    sofia = decisions[_student("stu-001").pk]
    assert (sofia.state, sofia.next_school.sourced_id, sofia.next_grade) == (
        "returning",
        "sch-elem",
        "04",
    )

    request = AddressChangeRequest.objects.get(household=household)
    assert request.state == AddressChangeRequest.State.AWAITING_VISIT
    assert (request.street1, request.postal_code, request.requested_by) == (
        "88 Orchard Lane",
        "95210",
        jose_g,
    )
    proof = AddressProof.objects.get(request=request)
    stored = proof.file.read()
    assert stored == PDF and stored.startswith(b"%PDF-")
    assert (proof.original_name, proof.content_type, proof.size) == (
        "lease.pdf",
        "application/pdf",
        len(PDF),
    )
    assert proof.sha256 == hashlib.sha256(PDF).hexdigest()
    household.refresh_from_db()
    assert household.address_lines == address_before  # changes only after the visit

    submission = Submission.objects.get(registration=registration)
    assert submission.version == 1
    assert submission.guardian == jose_g
    assert submission.signed_name == "jose angel GARCIA"
    assert submission.content_sha256 == content_sha256(submission.content)
    assert [s["step"] for s in submission.content["sections"]] == [
        "contacts",
        "preferences",
        "address",
        "emergency",
        f"child-{lucia.pk}",
        f"child-{mateo.pk}",
        _child_step("stu-001"),
        "acknowledgements",
    ]

    confirmation = Confirmation.objects.get(submission=submission)
    pdf = confirmation.pdf.open("rb").read()
    assert pdf.startswith(b"%PDF")
    assert confirmation.sha256 == hashlib.sha256(pdf).hexdigest()
    reader = PdfReader(io.BytesIO(pdf))
    # Tagged PDF/UA in the confirmation's language, for screen readers.
    assert reader.trailer["/Root"]["/Lang"] == confirmation.language
    assert "/StructTreeRoot" in reader.trailer["/Root"]
    # Everything, the page footer too, in the document's font, not the default serif.
    assert not serif_fonts(reader), font_names(reader)
    text = " ".join(sheet.extract_text() for sheet in reader.pages)
    text = " ".join(text.split())  # table cells wrap
    assert JOSE in text
    assert "88 Orchard Lane" in text
    assert "Signed by jose angel GARCIA" in text

    assert len(mailoutbox) == 1  # María José has no email address on file yet
    message = mailoutbox[0]
    assert message.to == ["jose.garcia@example.com"]
    (filename, attached, mimetype) = message.attachments[0]
    assert filename.endswith(".pdf") and mimetype == "application/pdf"
    assert attached == pdf

    downloads = jose.client
    confirmation_url = reverse(
        "registration_confirmation", kwargs={"pk": registration.pk, "version": 1}
    )
    response = downloads.get(confirmation_url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"%PDF")
    response = downloads.get(
        reverse("registration_proof", kwargs={"pk": registration.pk, "proof_pk": proof.pk})
    )
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == PDF

    # Siobhan sees Mateo's step read-only, with the decision made in hh-001, and
    # whatever her browser posts there changes nothing.
    mateo_step = f"child-{mateo.pk}"
    page = _walk_to(siobhan, mateo_step)
    assert "decision" not in {n.removeprefix(f"{page.step}-") for n in page.fields}
    assert not page.offers_unchanged
    assert "other household decides about next year" in page.html
    assert "Returning · Sequoia Middle School" in page.html
    page = siobhan.submit(
        page,
        {"decision": "leaving", "leaving_reason": "moving", "leaving_destination": "Elsewhere"},
    )
    assert page.step != mateo_step and not page.errors
    draft = RegistrationStep.objects.get(registration=_registration("hh-002"), step=mateo_step)
    assert draft.answers == {"student": mateo.pk, "read_only": True}
    page = _walk_to(siobhan, "review")
    assert "Decided by the child&#x27;s other household." in page.html
    done = _sign(siobhan, page, "Siobhan O'Brien")
    assert "Submitted" in done.html
    returning.refresh_from_db()
    assert returning.state == EnrollmentDecision.State.RETURNING
    assert returning.registration_id == registration.pk
    assert list(
        TransitionLog.objects.filter(
            object_type="workflow.enrollmentdecision", object_id=str(returning.pk)
        ).values_list("transition", flat=True)
    ) == ["mark_returning"]


# -- 2. nothing changed -----------------------------------------------------------------


def test_nothing_changed_takes_one_tap_per_step(siobhan, campaign):
    page = siobhan.open()
    steps = []
    while page.step not in ("acknowledgements", "review"):
        assert page.offers_unchanged, page.step
        steps.append(page.step)
        page = siobhan.submit(page, unchanged=True)
        assert not page.errors, page.errors
        assert any(m.startswith("Thank you. Nothing changed in") for m in page.messages)
    assert steps == [
        "contacts",
        "preferences",
        "address",
        "emergency",
        _child_step("stu-004"),
        _child_step("stu-003"),
    ]
    assert not page.offers_unchanged  # each document is accepted on purpose
    page = siobhan.submit(page, _tick_every_acknowledgement(page))
    assert page.html.count("You confirmed this is all still correct.") == len(steps)
    assert 'class="badge badge-changed"' not in page.html
    done = _sign(siobhan, page, "Siobhan O'Brien")
    assert "Submitted" in done.html

    registration = _registration("hh-002")
    registration.refresh_from_db()
    assert registration.state == Registration.State.SUBMITTED
    drafts = {d.step: d for d in RegistrationStep.objects.filter(registration=registration)}
    assert set(drafts) == {*steps, "acknowledgements"}
    assert all(drafts[step].unchanged for step in steps)
    assert drafts["address"].answers == {"moved": False}
    assert drafts["contacts"].answers["guardians"][str(_guardian("par-003").pk)]["email"] == (
        "Siobhan.OBrien@example.com"  # as on file
    )
    submission = Submission.objects.get(registration=registration)
    assert [s["unchanged"] for s in submission.content["sections"]] == [True] * len(steps) + [False]
    assert not any(row["changed"] for s in submission.content["sections"] for row in s["rows"])
    assert not AddressChangeRequest.objects.filter(household=registration.household).exists()
    decided = dict(
        EnrollmentDecision.objects.filter(registration=registration).values_list(
            "student__sourced_id", "next_grade"
        )
    )
    assert decided == {"stu-003": "01", "stu-004": "11"}


# -- 3. resuming ------------------------------------------------------------------------


def test_a_family_resumes_on_another_device_where_they_stopped(jose, guardian_user):
    maria_email, jose_work = _g("par-001", "email"), _g("par-002", "work_phone")
    general_sms, attendance_voice = _g("par-002", "general_sms"), _g("par-002", "attendance_voice")
    page = jose.open()
    page = jose.submit(page, {maria_email: MARIA_EMAIL, jose_work: "(650) 555-0199"})
    page = jose.submit(page, {general_sms: "on", attendance_voice: None})
    page = jose.submit(page, {**NEW_ADDRESS, "proofs": _proof()})
    assert page.step == "emergency"
    # Signed out on the phone, halfway.
    jose.client.post(reverse("account_logout"))
    assert jose.client.get(jose.url()).status_code == 302

    laptop = WizardWalk(_signed_in(guardian_user), jose.pk)
    response = laptop.client.get(laptop.url())
    assert response.status_code == 302
    assert response.url == laptop.url("emergency")

    contacts = laptop.open("contacts")
    assert contacts.value(maria_email) == MARIA_EMAIL
    assert contacts.value(jose_work) == "(650) 555-0199"
    assert contacts.value(_g("par-002", "email")) == "jose.garcia@example.com"
    assert not contacts.offers_unchanged  # answered already: shown as answered
    preferences = laptop.open("preferences")
    assert preferences.checked(general_sms)
    assert not preferences.checked(attendance_voice)
    assert preferences.checked(_g("par-002", "emergency_voice"))
    address = laptop.open("address")
    assert address.values("moved") == ["yes"]
    for name in ("street1", "city", "state", "postal_code"):
        assert address.value(name) == NEW_ADDRESS[name]
    assert "lease.pdf" in address.html
    emergency = laptop.open("emergency")
    assert emergency.value("c1_name") == "Carmen Núñez"  # still what is on file
    assert emergency.value("c3_name") == ""
    assert emergency.offers_unchanged
    assert emergency.html.count('<span class="badge">saved</span>') == 3


def test_answers_outlive_an_expired_session(jose, guardian_user):
    maria_email = _g("par-001", "email")
    page = jose.open()
    page = jose.submit(page, {maria_email: MARIA_EMAIL})
    assert page.step == "preferences"

    # The session loses the wizard's own storage (another server, a cleared cache).
    session = jose.client.session
    for key in [k for k in dict(session.items()) if k.startswith("wizard_")]:
        del session[key]
    session.save()
    page = jose.open()
    assert page.step == "preferences"
    assert jose.open("contacts").value(maria_email) == MARIA_EMAIL

    # Then it expires in the middle of the next step: the post is refused...
    typed = jose.data(page, {_g("par-002", "general_sms"): "on"})
    Session.objects.all().delete()
    response = jose.client.post(jose.url("preferences"), typed)
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    assert not RegistrationStep.objects.filter(registration_id=jose.pk, step="preferences")

    # ...and after signing in again everything saved is there.
    sign_in(jose.client, guardian_user)
    page = jose.open()
    assert page.step == "preferences"
    assert jose.open("contacts").value(maria_email) == MARIA_EMAIL


# -- 4. what the server refuses ------------------------------------------------------------


def test_another_households_registration_is_not_found(jose, campaign):
    other = _registration("hh-002")
    client = jose.client
    for url in (
        reverse("registration_resume", kwargs={"pk": other.pk}),
        reverse("registration_step", kwargs={"pk": other.pk, "step": "contacts"}),
        reverse("registration_status", kwargs={"pk": other.pk}),
    ):
        assert client.get(url).status_code == 404, url
    response = client.post(
        reverse("registration_step", kwargs={"pk": other.pk, "step": "contacts"}),
        {f"registration_{other.pk}-current_step": "contacts", "unchanged": "1"},
    )
    assert response.status_code == 404
    other.refresh_from_db()
    assert other.state == Registration.State.NOT_STARTED
    assert not RegistrationStep.objects.filter(registration=other).exists()


def test_proofs_and_confirmations_of_another_household_are_not_found(
    jose, siobhan, django_capture_on_commit_callbacks
):
    page = _walk_to(siobhan, "review", {"address": {**NEW_ADDRESS, "proofs": _proof()}})
    _sign(siobhan, page, "Siobhan O'Brien", django_capture_on_commit_callbacks)
    theirs = _registration("hh-002")
    proof = AddressProof.objects.get(request__household=theirs.household)
    proof_of = {"pk": theirs.pk, "proof_pk": proof.pk}
    confirmation_of = {"pk": theirs.pk, "version": 1}
    assert siobhan.client.get(reverse("registration_proof", kwargs=proof_of)).status_code == 200
    assert (
        siobhan.client.get(reverse("registration_confirmation", kwargs=confirmation_of))
    ).status_code == 200

    for url in (
        reverse("registration_proof", kwargs=proof_of),
        reverse("registration_proof", kwargs={"pk": jose.pk, "proof_pk": proof.pk}),
        reverse("registration_confirmation", kwargs=confirmation_of),
        reverse("registration_confirmation", kwargs={"pk": jose.pk, "version": 1}),
    ):
        assert jose.client.get(url).status_code == 404, url


def test_a_later_step_cannot_be_opened_before_the_earlier_ones(jose):
    page = jose.open("emergency")
    assert page.redirect_chain[-1][0] == jose.url("contacts")
    assert "Please finish this step first." in page.messages
    page = jose.submit(jose.open(), _jose_answers()["contacts"])
    for later in ("address", "emergency", _child_step("stu-001"), "acknowledgements", "review"):
        response = jose.client.get(jose.url(later))
        assert response.status_code == 302, later
        assert response.url == jose.url("preferences"), later
    assert jose.client.get(jose.url("contacts")).status_code == 200


def test_a_later_step_cannot_be_posted_before_the_earlier_ones(jose):
    page = jose.submit(jose.open(), _jose_answers()["contacts"])
    assert page.step == "preferences"
    registration = Registration.objects.get(pk=jose.pk)
    before = _snapshot(registration)
    management = page.management_name
    emergency = {
        management: "emergency",
        "emergency-c1_name": "Ana Ruiz",
        "emergency-c1_phone": "(650) 555-0111",
    }
    review = {
        management: "review",
        "review-signed_name": JOSE,
        "review-attest": "on",
        "review-content_sha256": "0" * 64,
    }
    for url, data in (
        (jose.url("preferences"), emergency),  # the step named in the form counts
        (jose.url("emergency"), emergency),
        (jose.url("emergency"), {**emergency, "unchanged": "1"}),
        (jose.url("review"), review),
        (jose.url("preferences"), {**emergency, "wizard_goto_step": "review"}),
    ):
        response = jose.client.post(url, data)
        assert response.status_code == 302, (url, data)
        assert response.url == jose.url("preferences")
    assert _snapshot(registration) == before
    assert set(
        RegistrationStep.objects.filter(registration=registration).values_list("step", flat=True)
    ) == {"contacts"}
    response = jose.client.post(jose.url("preferences"), {"preferences-g1_opt_out": "on"})
    assert response.status_code == 400  # no management form at all


def test_a_child_of_another_household_is_refused(jose):
    liam = _student("stu-003")  # Siobhan's son
    sofia_step = _child_step("stu-001")
    page = _walk_to(jose, sofia_step, _jose_answers())
    registration = Registration.objects.get(pk=jose.pk)
    before = _snapshot(registration)

    # Liam's step does not exist in this wizard, by URL or by form.
    response = jose.client.get(jose.url(f"child-{liam.pk}"))
    assert response.status_code == 302
    assert response.url == jose.url(sofia_step)
    forged = jose.data(page, step=f"child-{liam.pk}")
    forged.update(
        {f"child-{liam.pk}-decision": "leaving", f"child-{liam.pk}-leaving_reason": "moving"}
    )
    response = jose.client.post(jose.url(f"child-{liam.pk}"), forged)
    assert response.status_code == 302
    assert response.url == jose.url(sofia_step)

    # A school that is not the district's is not a choice.
    page = jose.submit(page, {"decision": "returning", "next_school": "999999"})
    assert page.status_code == 200 and page.step == sofia_step
    assert "Select a valid choice." in page.error("next_school")
    assert page.is_invalid("next_school")
    # A school that does not teach the grade chosen is refused at the field.
    high = School.objects.get(sourced_id="sch-high")
    page = jose.submit(
        page, {"decision": "returning", "next_school": str(high.pk), "next_grade": "02"}
    )
    assert page.step == sofia_step
    assert "Mission Ridge High School does not teach Grade 2" in page.error("next_school")
    assert _snapshot(registration) == before


def _snapshot(registration: Registration) -> dict[str, Any]:
    """What a look at a page must never change."""
    registration.refresh_from_db()
    return {
        "registration": (registration.state, registration.updated_at),
        "drafts": sorted(
            RegistrationStep.objects.values_list("registration_id", "step", "saved_at")
        ),
        "transitions": TransitionLog.objects.count(),
        "audit": AuditEvent.objects.count(),
        "decisions": sorted(EnrollmentDecision.objects.values_list("pk", "state", "updated_at")),
        "address_requests": sorted(
            AddressChangeRequest.objects.values_list("pk", "state", "updated_at")
        ),
        "proofs": AddressProof.objects.count(),
        "submissions": Submission.objects.count(),
        "households": sorted(Household.objects.values_list("pk", "updated_at")),
        "household_history": Household.history.count(),
        "guardian_history": Guardian.history.count(),
        "contacts": ContactPoint.objects.count(),
    }


def test_looking_at_pages_changes_nothing(jose):
    registration = Registration.objects.get(pk=jose.pk)
    before = _snapshot(registration)
    for url in (jose.url(), jose.url("contacts"), reverse("registration_status", args=[jose.pk])):
        assert jose.client.get(url, follow=True).status_code == 200
    assert _snapshot(registration) == before
    assert before["registration"][0] == Registration.State.NOT_STARTED

    _walk_to(jose, "review", {**_jose_answers(), "address": {**NEW_ADDRESS, "proofs": _proof()}})
    steps = [
        "contacts",
        "preferences",
        "address",
        "emergency",
        _child_step("stu-002"),
        _child_step("stu-001"),
        "acknowledgements",
        "review",
    ]
    before = _snapshot(registration)
    for step in steps:
        response = jose.client.get(jose.url(step))
        assert response.status_code == 200, step
    for name in ("registration_resume", "registration_status"):
        assert jose.client.get(reverse(name, args=[jose.pk]), follow=True).status_code == 200
    assert jose.client.get(reverse("guardian_home")).status_code == 200
    assert _snapshot(registration) == before
    assert before["registration"][0] == Registration.State.IN_PROGRESS


# -- 5. bad input, and the message at the field ----------------------------------------------


def _assert_refused(page: Page, step: str, errors: dict[str, str], kept: dict[str, str]) -> None:
    """The step is shown again with each message at its field, the widget marked
    invalid, and every other value as typed."""
    assert page.status_code == 200 and page.step == step, (page.url, page.step)
    assert not page.redirect_chain
    assert 'role="alert"' in page.html  # the summary at the top
    for name, message in errors.items():
        assert message in page.error(name), (name, page.error(name))
        if not name.endswith(("decision", "moved")):  # radio groups: the fieldset
            assert page.is_invalid(name), name
    for name, value in kept.items():
        assert page.value(name) == value, (name, page.value(name))
        assert not page.error(name), name
    assert not RegistrationStep.objects.filter(step=step).exists()


def test_contacts_errors_are_shown_at_the_field(jose):
    maria_email, maria_mobile = _g("par-001", "email"), _g("par-001", "mobile")
    jose_mobile, jose_work = _g("par-002", "mobile"), _g("par-002", "work_phone")
    page = jose.open()
    refused = jose.submit(page, unchanged=True)  # María José has nothing on file
    _assert_refused(
        refused,
        "contacts",
        {maria_mobile: "Give at least one phone number or email address for María José"},
        {_g("par-002", "email"): "jose.garcia@example.com"},
    )
    assert any("Something is missing from our records" in m for m in refused.messages)

    refused = jose.submit(
        page, {maria_email: "maria.example.com", jose_mobile: "555", jose_work: "(650) 555-0199"}
    )
    _assert_refused(
        refused,
        "contacts",
        {maria_email: "Enter a valid email address.", jose_mobile: "Enter a valid phone number"},
        {
            jose_work: "(650) 555-0199",
            _g("par-002", "email"): "jose.garcia@example.com",
            _g("par-002", "home_phone"): "(650) 555-0134",
        },
    )
    assert refused.value(maria_email) == "maria.example.com"
    assert refused.value(jose_mobile) == "555"
    assert not refused.is_invalid(jose_work)

    emptied = {
        _g(g, n): "" for g in ("par-001", "par-002") for n in ("email", "mobile", "home_phone")
    }
    refused = jose.submit(page, {**emptied, jose_work: ""})
    _assert_refused(
        refused,
        "contacts",
        {
            maria_mobile: "Give at least one phone number or email address for María José",
            jose_mobile: "Give at least one phone number or email address for José Ángel",
        },
        {},
    )


def test_preferences_errors_are_shown_at_the_field(jose):
    page = _walk_to(jose, "preferences", _jose_answers())
    voice, sms, email = (_g("par-002", f"emergency_{c}") for c in ("voice", "sms", "email"))
    general_sms = _g("par-002", "general_sms")
    refused = jose.submit(page, {voice: None, sms: None, email: None, general_sms: "on"})
    _assert_refused(
        refused,
        "preferences",
        {voice: "Choose at least one way to reach José Ángel García in an emergency."},
        {},
    )
    assert refused.checked(general_sms)
    assert not refused.checked(email)
    assert refused.checked(_g("par-001", "emergency_voice"))


def test_address_errors_are_shown_at_the_field(jose, private_files):
    page = _walk_to(jose, "address", _jose_answers())
    street = {"moved": "yes", "street1": "88 Orchard Lane", "street2": "Unit 3"}
    kept = {"street1": "88 Orchard Lane", "street2": "Unit 3"}

    refused = jose.submit(page, {**street, "city": "", "state": "California", "postal_code": "12"})
    _assert_refused(
        refused,
        "address",
        {
            "city": "Please fill in your new address.",
            "state": "at most 2 characters",
            "postal_code": "A ZIP code has five digits, for example 94040.",
            "proofs": "Please add at least one proof of your new address.",
        },
        kept,
    )
    assert refused.values("moved") == ["yes"]
    assert refused.value("postal_code") == "12"

    typed = {**street, "city": "Riverside", "state": "CA", "postal_code": "95210"}
    kept.update(city="Riverside", state="CA", postal_code="95210")
    huge = SimpleUploadedFile(
        "lease.pdf", b"%PDF-" + bytes(20 * 1024 * 1024 - 5), content_type="application/pdf"
    )
    refused = jose.submit(page, {**typed, "proofs": huge})
    _assert_refused(refused, "address", {"proofs": "lease.pdf is larger than 10.0"}, kept)

    disguised = _proof("bill.pdf", b"<!DOCTYPE html><html><body>Bill</body></html>")
    refused = jose.submit(page, {**typed, "proofs": disguised})
    _assert_refused(
        refused, "address", {"proofs": "bill.pdf is not a PDF, JPEG or PNG file."}, kept
    )

    refused = jose.submit(page, typed)
    _assert_refused(
        refused, "address", {"proofs": "Please add at least one proof of your new address."}, kept
    )

    same = {
        "moved": "yes",
        "street1": "1450 Alameda de las Pulgas",
        "street2": "Apt 4, Building B",
        "city": "Riverside",
        "state": "CA",
        "postal_code": "95202",
    }
    refused = jose.submit(page, {**same, "proofs": _proof()})
    _assert_refused(refused, "address", {"street1": "This is the address we already have."}, {})

    refused = jose.submit(page, {**typed, "moved": None, "proofs": _proof()})
    _assert_refused(refused, "address", {"moved": "This field is required."}, kept)

    assert not AddressChangeRequest.objects.exists()
    assert not AddressProof.objects.exists()
    assert not [p for p in private_files.rglob("*") if p.is_file()]


def test_emergency_errors_are_shown_at_the_field(jose):
    page = _walk_to(jose, "emergency", _jose_answers())
    refused = jose.submit(
        page,
        {
            "c1_phone": "12",
            "c2_phone": "",
            "c3_relationship": "Uncle",
            "c3_phone": "(650) 555-0112",
        },
    )
    _assert_refused(
        refused,
        "emergency",
        {
            "c1_phone": "Enter a valid phone number",
            "c2_phone": "Please give a phone number for this contact.",
            "c3_name": "Please give this contact's name.",
        },
        {
            "c1_name": "Carmen Núñez",
            "c1_relationship": "Tía",
            "c2_name": "Rubén Peña",
            "c3_relationship": "Uncle",
            "c3_phone": "(650) 555-0112",
        },
    )
    assert refused.value("c1_phone") == "12"

    nobody = {f"c{n}_{f}": "" for n in (1, 2, 3) for f in ("name", "relationship", "phone")}
    refused = jose.submit(page, nobody)
    _assert_refused(
        refused,
        "emergency",
        {"c1_name": "Please give at least one person we can call in an emergency."},
        {},
    )


def test_child_errors_are_shown_at_the_field(jose):
    step = _child_step("stu-002")
    page = _walk_to(jose, step, _jose_answers())
    health = {"allergies": "Peanuts", "medications": "Inhaler"}

    refused = jose.submit(page, {"decision": "leaving", "leaving_reason": "", **health})
    _assert_refused(refused, step, {"leaving_reason": "Please choose a reason."}, health)
    assert refused.values("decision") == ["leaving"]

    refused = jose.submit(page, {"decision": "leaving", "leaving_reason": "moving", **health})
    _assert_refused(
        refused,
        step,
        {"leaving_destination": "Please tell us the new school or district."},
        {**health, "leaving_reason": "moving"},
    )

    refused = jose.submit(page, {"decision": "returning", "next_grade": "", **health})
    _assert_refused(refused, step, {"next_grade": "Please choose."}, health)
    assert refused.value("next_school") == str(School.objects.get(sourced_id="sch-mid").pk)

    refused = jose.submit(page, {"decision": None, **health})
    _assert_refused(refused, step, {"decision": "This field is required."}, health)


def test_acknowledgement_errors_are_shown_at_the_field(jose, campaign):
    page = _walk_to(jose, "acknowledgements", _jose_answers())
    handbook = f"ack_{campaign.acknowledgements.get(key='handbook').pk}"
    photo_day = f"ack_{campaign.acknowledgements.get(key='photo-day').pk}"
    refused = jose.submit(page, {handbook: None, photo_day: "on"})
    _assert_refused(
        refused, "acknowledgements", {handbook: "Please read and accept this document."}, {}
    )
    assert refused.checked(photo_day)
    assert not refused.checked(handbook)


def test_signature_errors_are_shown_at_the_field(jose):
    page = _walk_to(jose, "review", _jose_answers())
    refused = jose.submit(page, {"signed_name": "María José Núñez-Peña", "attest": "on"})
    _assert_refused(
        refused,
        "review",
        {"signed_name": "Please type your full name as we have it: José Ángel García."},
        {},
    )
    assert refused.value("signed_name") == "María José Núñez-Peña"
    assert refused.checked("attest")

    refused = jose.submit(page, {"signed_name": JOSE, "attest": None})
    _assert_refused(
        refused, "review", {"attest": "Please confirm before signing."}, {"signed_name": JOSE}
    )
    assert not Submission.objects.exists()
    assert Registration.objects.get(pk=jose.pk).state == Registration.State.IN_PROGRESS


# -- 6. query counts ----------------------------------------------------------------------


def _household_of(tag: str, children: int) -> tuple[Household, Any]:
    """A household with one guardian (who has an account) and ``children`` children
    with health notes and consents on file."""
    school = School.objects.get(sourced_id="sch-elem")
    household = Household.objects.create(
        sourced_id=tag, street1="10 Oak St", city="Riverside", state="CA", postal_code="95201"
    )
    guardian = Guardian.objects.create(
        sourced_id=f"{tag}-par", given_name="Pat", family_name="Kowalski"
    )
    HouseholdGuardian.objects.create(household=household, guardian=guardian)
    ContactPoint.objects.create(
        guardian=guardian, kind="email", label="personal", email=f"{tag}@example.com"
    )
    EmergencyContact.objects.create(
        household=household, priority=1, name="Ann Lee", relationship="Aunt", phone="+16505550111"
    )
    for index in range(children):
        student = Student.objects.create(
            sourced_id=f"{tag}-stu-{index}",
            given_name=f"Kid{index}",
            family_name="Kowalski",
            grade="03",
            school=school,
            birth_date=datetime.date(2017, 1, 1 + index),
        )
        HouseholdStudent.objects.create(household=household, student=student, is_primary=True)
        StudentGuardian.objects.create(
            student=student, guardian=guardian, relationship="mother", has_education_rights=True
        )
        StudentHealth.objects.create(student=student, allergies="Peanuts")
        Consent.objects.create(student=student, kind="media", granted=True)
    user = guardian_account_create(guardian=guardian, email=f"{tag}@example.com", password=PASSWORD)
    return household, user


def _answers_for_counting(page: Page) -> dict[str, Any]:
    """The same work in every household: something typed on each step."""
    kind = "child" if page.step.startswith("child-") else page.step
    if kind == "contacts":
        name = next(n for n in page.fields if n.endswith("_mobile"))
        return {name.removeprefix("contacts-"): "(650) 555-0123"}
    if kind == "preferences":
        name = next(n for n in page.fields if n.endswith("_general_sms"))
        return {name.removeprefix("preferences-"): "on"}
    if kind == "address":
        return {**NEW_ADDRESS, "proofs": _proof()}
    if kind == "emergency":
        return {"c2_name": "Bo Lee", "c2_phone": "(650) 555-0112"}
    if kind == "child":
        return {"allergies": "Peanuts, sesame"}
    if kind == "acknowledgements":
        return _tick_every_acknowledgement(page)
    return {"signed_name": "Pat Kowalski", "attest": "on"}


def _count_each_step(
    household: Household, user: Any, assert_max_queries: Any, *, sign: bool = False
) -> dict[str, list[tuple[int, int]]]:
    """(GET, POST) queries of each step, by kind of step (every child is "child")."""
    wizard = WizardWalk(_signed_in(user), Registration.objects.get(household=household))
    page = wizard.open()
    counts: dict[str, list[tuple[int, int]]] = {}
    while True:
        step = page.step
        with assert_max_queries(25) as got:
            response = wizard.client.get(wizard.url(step))
        assert response.status_code == 200
        data = wizard.data(page, _answers_for_counting(page))
        if step == "review" and not sign:
            counts.setdefault(step, []).append((len(got), 0))
            return counts
        with assert_max_queries(1000 if step == "review" else 25) as posted:
            response = wizard.client.post(wizard.url(step), data)
        assert response.status_code == 302, (step, response.content[:2000])
        counts.setdefault("child" if step.startswith("child-") else step, []).append(
            (len(got), len(posted))
        )
        if step == "review":
            return counts
        page = wizard.open(response.url.rstrip("/").rsplit("/", 1)[1])


@pytest.fixture
def one_and_six(campaign, registrar_user):
    """A household of one child and one of six, with registrations."""
    households = {n: _household_of(f"hh-q{n}", n) for n in (1, 6)}
    campaign_open(campaign=campaign, actor=registrar_user)
    return households


def test_each_step_costs_the_same_queries_for_one_child_and_six(
    one_and_six, django_assert_max_num_queries
):
    small = _count_each_step(*one_and_six[1], django_assert_max_num_queries)
    large = _count_each_step(*one_and_six[6], django_assert_max_num_queries)
    assert len(small["child"]) == 1 and len(large["child"]) == 6
    assert set(large["child"]) == set(small["child"])
    large["child"] = small["child"]
    assert large == small
    assert max(max(pair) for pairs in small.values() for pair in pairs) <= 25


def test_signing_costs_the_same_queries_for_one_child_and_six(
    one_and_six, django_assert_max_num_queries
):
    small = _count_each_step(*one_and_six[1], django_assert_max_num_queries, sign=True)
    large = _count_each_step(*one_and_six[6], django_assert_max_num_queries, sign=True)
    assert large["review"] == small["review"]
    assert small["review"][0][1] <= 26  # the confirmation's outbox row included


# -- 7. returned for corrections ---------------------------------------------------------------


def test_a_returned_registration_is_corrected_and_signed_again(
    jose, registrar_user, mailoutbox, django_capture_on_commit_callbacks
):
    page = _walk_to(jose, "review", _jose_answers())
    _sign(jose, page, JOSE, django_capture_on_commit_callbacks)
    registration = Registration.objects.get(pk=jose.pk)
    first = Submission.objects.get(registration=registration, version=1)
    first_confirmation = Confirmation.objects.get(submission=first)
    first_pdf = first_confirmation.pdf.open("rb").read()
    kept = (first.content, first.content_sha256, first.signed_at, first_confirmation.pdf.name)

    comment = "Please add a third emergency contact who lives nearby."
    registration_return(
        registration=registration, actor=registrar_user, comment=comment, step="emergency"
    )
    home = jose.client.get(reverse("guardian_home")).content.decode()
    assert "Returned for changes" in home and "Make the corrections" in home

    response = jose.client.get(jose.url())
    assert response.status_code == 302 and response.url == jose.url("emergency")
    page = jose.open()
    assert page.step == "emergency"
    assert comment in page.html
    page = jose.submit(
        page, {"c3_name": "Ana Ruiz", "c3_relationship": "Neighbor", "c3_phone": "(650) 555-0179"}
    )
    assert not page.errors and page.step == _child_step("stu-002")
    registration.refresh_from_db()
    assert registration.state == Registration.State.IN_PROGRESS

    page = jose.open("review")
    assert "Ana Ruiz" in page.html
    done = _sign(jose, page, JOSE, django_capture_on_commit_callbacks)
    assert "Submitted" in done.html
    registration.refresh_from_db()
    assert registration.state == Registration.State.SUBMITTED

    submissions = list(Submission.objects.filter(registration=registration).order_by("version"))
    assert [s.version for s in submissions] == [1, 2]
    first.refresh_from_db()
    first_confirmation.refresh_from_db()
    assert (
        first.content,
        first.content_sha256,
        first.signed_at,
        first_confirmation.pdf.name,
    ) == kept
    assert first_confirmation.pdf.open("rb").read() == first_pdf
    assert "Ana Ruiz" not in str(first.content)
    second = submissions[1]
    assert "Ana Ruiz" in str(second.content)
    assert second.content_sha256 == content_sha256(second.content)
    second_confirmation = Confirmation.objects.get(submission=second)
    assert second_confirmation.pdf.name != first_confirmation.pdf.name
    assert second_confirmation.pdf.open("rb").read().startswith(b"%PDF")
    assert len(mailoutbox) == 2
    assert list(
        TransitionLog.objects.filter(
            object_type="workflow.registration", object_id=str(registration.pk)
        ).values_list("transition", flat=True)
    ) == ["start", "submit", "return_for_changes", "reopen", "submit"]
    status = jose.client.get(reverse("registration_status", args=[registration.pk]))
    for version in (1, 2):
        url = reverse(
            "registration_confirmation", kwargs={"pk": registration.pk, "version": version}
        )
        assert f'href="{url}"' in status.content.decode()


def test_a_returned_registration_is_not_signed_again_before_the_correction(
    jose, registrar_user, django_capture_on_commit_callbacks
):
    page = _walk_to(jose, "review", _jose_answers())
    _sign(jose, page, JOSE, django_capture_on_commit_callbacks)
    registration = Registration.objects.get(pk=jose.pk)
    comment = "Please check the emergency contacts."
    registration_return(
        registration=registration, actor=registrar_user, comment=comment, step="emergency"
    )
    # Straight to the review, which every saved step makes reachable, and sign.
    page = jose.open("review")
    assert page.step == "review"
    page = _sign(jose, page, JOSE)
    assert page.url == jose.url("emergency"), page.messages
    assert "Please check this step again before signing." in page.messages
    assert comment in page.html
    registration.refresh_from_db()
    assert registration.state == Registration.State.RETURNED
    assert Submission.objects.filter(registration=registration).count() == 1


def test_names_in_the_signature_help_are_escaped(jose):
    Guardian.objects.filter(sourced_id="par-002").update(family_name="García <em>Núñez</em>")
    page = _walk_to(jose, "review", _jose_answers())
    assert "<em>" not in page.html
    assert "José Ángel García &lt;em&gt;Núñez&lt;/em&gt;." in page.html


# -- the guardian's home -------------------------------------------------------------------


def test_the_home_page_shows_the_registration_and_where_to_continue(
    jose, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    resume = f'href="{jose.url()}"'
    with django_assert_max_num_queries(20):
        html = jose.client.get(reverse("guardian_home")).content.decode()
    assert "Registration for 2027–28" in html
    assert "Not started" in html and "Start registration" in html and resume in html

    jose.submit(jose.open(), _jose_answers()["contacts"])
    html = jose.client.get(reverse("guardian_home")).content.decode()
    assert "In progress" in html and "Continue registration" in html and resume in html

    page = _walk_to(jose, "review")
    _sign(jose, page, JOSE, django_capture_on_commit_callbacks)
    html = jose.client.get(reverse("guardian_home")).content.decode()
    assert "Submitted" in html and resume not in html
    assert "Download your confirmation (PDF)" in html


def test_the_home_page_offers_no_registration_before_a_campaign_opens(guardian_user, client):
    sign_in(client, guardian_user)
    html = client.get(reverse("guardian_home")).content.decode()
    assert "has not opened yet" in html
    assert 'href="/register/' not in html
    response = client.get(reverse("registration_start"))
    assert response.status_code == 302 and response.url == reverse("guardian_home")
