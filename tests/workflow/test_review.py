"""Staff review of registrations through HTTP: the queue and who sees what in it, one
registration's changes and signature, approving (records, decisions, change records
for the SIS, log, audit, email) and returning it to the family.

Actors from tests/conftest.py: Carmen (office staff of Las Lomas Elementary, where
Sofía of household hh-001 goes), office staff of Mission Ridge High School (hh-006's
Gianna goes there; hh-001 has nobody there), the registrar, a teacher, finance, and
José of hh-001.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from registration.grades import grade_next
from registration.models import (
    Consent,
    EmergencyContact,
    Guardian,
    HouseholdGuardian,
    School,
    Student,
    StudentHealth,
)
from tests.conftest import sign_in
from tests.workflow.test_wizard import JOSE, _g, _jose_answers, _sign, _walk_to
from tests.workflow.wizard_walk import WizardWalk
from workflow.models import (
    AddressChangeRequest,
    AuditEvent,
    ChangeRecord,
    EnrollmentDecision,
    Registration,
    TransitionLog,
)
from workflow.review_views import review_sections
from workflow.services import (
    Signature,
    address_change_save,
    registration_step_save,
    registration_submit,
)

NEW_MOBILE = "(650) 555-0199"


# -- getting registrations submitted --------------------------------------------------


def _registration(household: str) -> Registration:
    return Registration.objects.get(household__sourced_id=household)


def _submit(
    campaign: Any,
    household: str,
    *,
    moved: bool = False,
    answers: dict[str, dict[str, Any]] | None = None,
) -> Registration:
    """Submit a household's registration through the services: ``answers`` for some
    steps, every child returning to the next grade (or leaving after the last one),
    every document accepted. The signed content lists the steps, with no rows."""
    registration = _registration(household)
    guardian = (
        HouseholdGuardian.objects.filter(household=registration.household)
        .select_related("guardian")
        .order_by("guardian__sourced_id")
        .first()
        .guardian
    )
    user = guardian.user

    def save(step: str, answers: dict[str, Any]) -> None:
        registration_step_save(
            registration=registration,
            step=step,
            data={},
            answers=answers,
            unchanged=False,
            user=user,
        )

    for step, step_answers in (answers or {}).items():
        save(step, step_answers)
    if moved:
        address_change_save(
            registration=registration,
            guardian=guardian,
            data={},
            answers={
                "moved": True,
                "street1": "5 New Rd",
                "street2": "",
                "city": "Riverside",
                "state": "CA",
                "postal_code": "95210",
            },
            unchanged=False,
            uploads=[],
            remove_proof_ids=[],
            user=user,
        )
    for decision in EnrollmentDecision.objects.filter(registration=registration).select_related(
        "student"
    ):
        grade = grade_next(decision.student.grade)
        save(
            f"child-{decision.student_id}",
            {
                "student": decision.student_id,
                "read_only": False,
                "returning": grade is not None,
                "next_school": decision.student.school_id if grade else None,
                "next_grade": grade or "",
                "leaving_reason": "" if grade else "graduating",
                "leaving_destination": "",
                "health": {"allergies": "Peanuts", "medications": "", "conditions": ""},
                "consents": {"media": False, "directory": True},
            },
        )
    save(
        "acknowledgements",
        {"accepted": list(campaign.acknowledgements.values_list("pk", flat=True))},
    )
    registration_submit(
        registration=registration,
        signature=Signature(
            guardian=guardian,
            signed_name=guardian.full_name,
            ip_address="127.0.0.1",
            user_agent="test",
            language="en",
        ),
        content={
            "sections": [
                {"step": step, "title": step.title(), "rows": [], "unchanged": True}
                for step in registration.steps.order_by("pk").values_list("step", flat=True)
            ]
        },
        user=user,
    )
    return Registration.objects.get(pk=registration.pk)


def _jose_signs_with_a_new_mobile(client: Client, capture: Any) -> Registration:
    """José walks the wizard through HTTP, gives a new mobile number, and signs."""
    client.defaults["HTTP_USER_AGENT"] = "Mozilla/5.0 (test browser)"
    wizard = WizardWalk(client, _registration("hh-001"))
    answers = _jose_answers()
    answers["contacts"][_g("par-002", "mobile")] = NEW_MOBILE
    page = _walk_to(wizard, "review", answers)
    done = _sign(wizard, page, JOSE, capture)
    assert "Submitted" in done.html
    return _registration("hh-001")


def _staff(user: Any) -> Client:
    client = Client()
    sign_in(client, user)
    return client


def _messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _detail_url(registration: Registration) -> str:
    return reverse("staff_registration", args=[registration.pk])


# -- who sees what ----------------------------------------------------------------------


def test_office_staff_see_only_registrations_of_their_schools(
    campaign, office_user, other_school_office_user
):
    hh001, hh006 = _submit(campaign, "hh-001"), _submit(campaign, "hh-006")
    office, other = _staff(office_user), _staff(other_school_office_user)

    listed = office.get(reverse("staff_registrations")).content.decode()
    assert _detail_url(hh001) in listed and _detail_url(hh006) not in listed
    listed = other.get(reverse("staff_registrations")).content.decode()
    assert _detail_url(hh006) in listed and _detail_url(hh001) not in listed

    assert office.get(_detail_url(hh001)).status_code == 200
    assert other.get(_detail_url(hh001)).status_code == 404
    for name in ("staff_registration_approve", "staff_registration_return"):
        response = other.post(reverse(name, args=[hh001.pk]), {"comment": "x", "step": "contacts"})
        assert response.status_code == 404
    assert _registration("hh-001").state == Registration.State.SUBMITTED
    assert not AuditEvent.objects.filter(
        actor=other_school_office_user, object_type="workflow.registration"
    ).exists()


def test_teachers_finance_and_guardians_are_refused(
    campaign, teacher_user, finance_user, guardian_user
):
    registration = _submit(campaign, "hh-001")
    urls = [
        ("get", reverse("staff_registrations")),
        ("get", _detail_url(registration)),
        ("post", reverse("staff_registration_approve", args=[registration.pk])),
        ("post", reverse("staff_registration_return", args=[registration.pk])),
        ("get", reverse("staff_registration_export")),
        ("post", reverse("staff_registration_export")),
    ]
    for user in (teacher_user, finance_user, guardian_user):
        client = _staff(user)
        for method, url in urls:
            assert getattr(client, method)(url).status_code == 403, (user, url)
    assert _registration("hh-001").state == Registration.State.SUBMITTED


def test_the_registrations_link_is_shown_to_office_staff_and_registrars(
    office_user, registrar_user, teacher_user
):
    link = f'href="{reverse("staff_registrations")}"'
    for user, shown in ((office_user, True), (registrar_user, True), (teacher_user, False)):
        page = _staff(user).get(reverse("staff_home")).content.decode()
        assert (link in page) is shown, user


# -- the queue ------------------------------------------------------------------------


def test_the_queue_counts_filters_and_lists_oldest_first(campaign, registrar_user):
    for household in ("hh-001", "hh-002", "hh-004", "hh-006", "hh-007"):
        _submit(campaign, household)
    now = timezone.now()
    for days, household in enumerate(("hh-007", "hh-006", "hh-004", "hh-002", "hh-001")):
        Registration.objects.filter(household__sourced_id=household).update(
            submitted_at=now - datetime.timedelta(days=10 - days)
        )
    registrar = _staff(registrar_user)
    registrar.post(
        reverse("staff_registration_return", args=[_registration("hh-002").pk]),
        {"comment": "Please accept the handbook.", "step": "acknowledgements"},
    )
    registrar.post(reverse("staff_registration_approve", args=[_registration("hh-004").pk]))

    page = registrar.get(reverse("staff_registrations")).content.decode()
    assert "Submitted (3)" in page and "Returned for changes (1)" in page
    assert "Approved (1)" in page
    order = [page.index(_detail_url(_registration(h))) for h in ("hh-007", "hh-006", "hh-001")]
    assert order == sorted(order)
    assert _detail_url(_registration("hh-002")) not in page

    returned = registrar.get(reverse("staff_registrations"), {"state": "returned"})
    html = returned.content.decode()
    assert _detail_url(_registration("hh-002")) in html
    assert _detail_url(_registration("hh-001")) not in html

    high = School.objects.get(sourced_id="sch-high")
    at_high = registrar.get(reverse("staff_registrations"), {"school": high.pk}).content.decode()
    assert _detail_url(_registration("hh-006")) in at_high
    assert _detail_url(_registration("hh-007")) in at_high
    assert _detail_url(_registration("hh-001")) not in at_high
    assert "Submitted (2)" in at_high and "Returned for changes (1)" in at_high  # Zoë, hh-002
    assert "Approved (0)" in at_high


def test_a_tab_counts_up_to_its_cap_and_the_list_shown_exactly(
    campaign, registrar_user, monkeypatch
):
    """Counting every registration of each state took a third of the queue's time at a
    million students: the other tabs stop counting at ``REVIEW_COUNT_CAP``."""
    monkeypatch.setattr("workflow.selectors.REVIEW_COUNT_CAP", 2)
    for household in ("hh-001", "hh-002", "hh-004", "hh-006", "hh-007"):
        _submit(campaign, household)
    registrar = _staff(registrar_user)
    registrar.post(
        reverse("staff_registration_return", args=[_registration("hh-002").pk]),
        {"comment": "Please accept the handbook.", "step": "acknowledgements"},
    )

    submitted = registrar.get(reverse("staff_registrations")).content.decode()
    assert "Submitted (4)" in submitted and "Submitted: 4" in submitted
    assert "Returned for changes (1)" in submitted and "Approved (0)" in submitted
    returned = registrar.get(reverse("staff_registrations"), {"state": "returned"})
    assert "Submitted (2+)" in returned.content.decode()
    assert "Returned for changes (1)" in returned.content.decode()


def test_with_many_schools_the_queues_school_is_typed(
    campaign, registrar_user, office_user, monkeypatch
):
    monkeypatch.setattr("config.school_field.SCHOOL_SELECT_MAX", 2)
    for household in ("hh-001", "hh-006", "hh-007"):
        _submit(campaign, household)
    registrar, url = _staff(registrar_user), reverse("staff_registrations")
    high = School.objects.get(sourced_id="sch-high")

    page = registrar.get(url).content.decode()
    assert '<input type="search" name="school"' in page
    assert f'<option value="{high.pk}"' not in page and ">Sequoia Middle School<" not in page
    at_high = registrar.get(url, {"school": "mission ridge"}).content.decode()
    assert _detail_url(_registration("hh-006")) in at_high
    assert _detail_url(_registration("hh-001")) not in at_high
    assert 'value="Mission Ridge High School"' in at_high
    # The tabs keep the school, by its id; the id still works as a link.
    tab = f'href="?state=approved&amp;school={high.pk}"'
    assert tab in at_high
    by_id = registrar.get(url, {"school": high.pk, "state": "submitted"}).content.decode()
    assert _detail_url(_registration("hh-007")) in by_id
    assert 'value="Mission Ridge High School"' in by_id

    several = registrar.get(url, {"school": "School"}).content.decode()
    assert (
        '<p class="error" id="id_school_error">2 schools match “School”: Mission Ridge High '
        "School, Sequoia Middle School. Type more of the name.</p>"
    ) in several
    assert 'value="School"' in several
    assert _detail_url(_registration("hh-001")) in several  # no school chosen: all

    office = _staff(office_user)
    for typed in ("Mission Ridge", str(high.pk)):
        page = office.get(url, {"school": typed}).content.decode()
        assert f"No school of yours is named “{typed}”." in page
        assert _detail_url(_registration("hh-006")) not in page
        assert _detail_url(_registration("hh-001")) in page


def test_the_queue_costs_the_same_queries_for_two_registrations_or_eight(
    campaign, registrar_user, office_user, django_assert_max_num_queries
):
    registrar, office = _staff(registrar_user), _staff(office_user)
    url = reverse("staff_registrations")
    for household in ("hh-001", "hh-002"):
        _submit(campaign, household)
    for client in (registrar, office):
        with django_assert_max_num_queries(15):
            assert client.get(url).status_code == 200
    for household in ("hh-003", "hh-004", "hh-005", "hh-006", "hh-007", "hh-008"):
        _submit(campaign, household)
    for client in (registrar, office):
        with django_assert_max_num_queries(15):
            response = client.get(url)
        assert response.status_code == 200
    assert response.content.decode().count('href="/staff/registrations/') >= 5


# -- one registration --------------------------------------------------------------------


def test_the_detail_shows_what_changed_and_the_signature(
    client, guardian_user, campaign, office_user, django_capture_on_commit_callbacks
):
    sign_in(client, guardian_user)
    registration = _jose_signs_with_a_new_mobile(client, django_capture_on_commit_callbacks)
    submission = registration.submissions.get()

    office = _staff(office_user)
    response = office.get(_detail_url(registration))
    assert response.status_code == 200
    html = response.content.decode()
    # The changed phone, marked in words, with last year's number.
    row = html[html.index("José Ángel García: Mobile phone") :]
    row = row[: row.index("</div>")]
    assert "Changed" in row and NEW_MOBILE in row and "Last year: (650) 555-0135" in row
    # An unchanged row is not marked.
    row = html[html.index("José Ángel García: Home phone") :]
    row = row[: row.index("</div>")]
    assert "Changed" not in row and "(650) 555-0134" in row
    # Per child, by name.
    assert "Sofía García Núñez" in html and "Mateo García Núñez" in html
    for shown in (
        submission.signed_name,
        submission.content_sha256,
        "Mozilla/5.0 (test browser)",
        str(submission.ip_address),
    ):
        assert shown in html, shown
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.VIEW,
        object_type="workflow.registration",
        object_id=str(registration.pk),
        actor=office_user,
    ).exists()


def test_health_rows_are_left_out_for_those_who_may_not_see_them():
    content = {
        "sections": [
            {
                "step": "child-1",
                "title": "Sofía",
                "rows": [
                    {"label": "Allergies", "before": "—", "after": "Peanuts", "changed": True},
                    {"label": "Alergias", "before": "—", "after": "Maní", "changed": True},
                    {"label": "Grade next year", "before": "4", "after": "5", "changed": True},
                ],
            }
        ]
    }
    hidden = review_sections(content, health=False)[0]
    shown = review_sections(content, health=True)[0]
    assert [r["label"] for r in hidden["rows"]] == ["Grade next year"]
    assert hidden["changes"] == 1 and shown["changes"] == 3


# -- approving ---------------------------------------------------------------------------


def test_approving_writes_the_records_change_records_log_audit_and_email(
    client,
    guardian_user,
    campaign,
    office_user,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    sign_in(client, guardian_user)
    registration = _jose_signs_with_a_new_mobile(client, django_capture_on_commit_callbacks)
    mailoutbox.clear()  # the confirmation

    office = _staff(office_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = office.post(reverse("staff_registration_approve", args=[registration.pk]))
    assert response.status_code == 302 and response.url == reverse("staff_registrations")
    assert any("is approved" in m for m in _messages(response))

    registration.refresh_from_db()
    assert registration.state == Registration.State.APPROVED
    decisions = EnrollmentDecision.objects.filter(registration=registration)
    assert decisions and {d.state for d in decisions} == {EnrollmentDecision.State.CONFIRMED}
    jose = Guardian.objects.get(sourced_id="par-002")
    assert "+16505550199" in {str(p.phone) for p in jose.contact_points.all()}

    changes = ChangeRecord.objects.filter(registration=registration)
    assert {c.approved_by for c in changes} == {office_user}
    mobile = changes.get(record_type="guardian", record_id="par-002", field="mobile")
    assert (mobile.old_value, mobile.new_value) == ("+16505550135", "+16505550199")
    maria = changes.get(record_type="guardian", record_id="par-001", field="email")
    assert (maria.old_value, maria.new_value) == ("", "maria.nunez@example.com")
    sofia = {c.field: c for c in changes.filter(record_type="enrollment", record_id="stu-001")}
    assert sofia["returning"].new_value == "true"
    assert (sofia["next_school"].old_value, sofia["next_school"].new_value) == (
        "sch-elem",
        "sch-elem",
    )
    assert (sofia["next_grade"].old_value, sofia["next_grade"].new_value) == ("03", "04")
    # Nothing unchanged is recorded, and health never is.
    assert not changes.filter(record_type="guardian", record_id="par-002", field="home_phone")
    assert not changes.filter(field__icontains="health")
    assert not changes.filter(field__in=["allergies", "medications", "conditions"])

    assert list(
        TransitionLog.objects.filter(
            object_type="workflow.registration", object_id=str(registration.pk)
        ).values_list("transition", flat=True)
    ) == ["start", "submit", "approve"]
    assert AuditEvent.objects.filter(
        actor=office_user, detail__approved_registration=registration.pk
    ).exists()
    recipients = sorted(address for message in mailoutbox for address in message.to)
    assert recipients == ["jose.garcia@example.com", "maria.nunez@example.com"]
    # The household reads Spanish (the greeting is translated already).
    assert all(m.body.startswith("Estimado/a") for m in mailoutbox), [m.body for m in mailoutbox]


def test_approval_records_consents_preferences_and_emergency_contacts(campaign, registrar_user):
    liam = Student.objects.get(sourced_id="stu-003")
    Consent.objects.create(student=liam, kind="media", granted=True)
    siobhan = Guardian.objects.get(sourced_id="par-003")
    preferences = {
        "emergency_voice": True,
        "emergency_sms": True,
        "emergency_email": True,
        "attendance_voice": False,
        "attendance_sms": True,
        "attendance_email": True,
        "general_voice": False,
        "general_sms": False,
        "general_email": True,
        "non_emergency_opt_out": False,
    }
    registration = _submit(  # Siobhan: Liam (K) and Zoë (10)
        campaign,
        "hh-002",
        answers={
            "emergency": {
                "contacts": [{"name": "Ann Lee", "relationship": "Aunt", "phone": "+14155550100"}]
            },
            "preferences": {"guardians": {str(siobhan.pk): preferences}},
        },
    )
    registrar = _staff(registrar_user)
    registrar.post(reverse("staff_registration_approve", args=[registration.pk]))
    assert _registration("hh-002").state == Registration.State.APPROVED

    changes = ChangeRecord.objects.filter(registration=registration)
    media = changes.get(record_type="student", record_id="stu-003", field="consent.media")
    assert (media.old_value, media.new_value) == ("true", "false")
    directory = changes.get(record_type="student", record_id="stu-003", field="consent.directory")
    assert (directory.old_value, directory.new_value) == ("", "true")
    contact = {c.field: c for c in changes.filter(record_type="emergency_contact")}
    assert {c.record_id for c in contact.values()} == {"hh-002"}
    assert (contact["priority_1.name"].old_value, contact["priority_1.name"].new_value) == (
        "Maeve O'Sullivan",
        "Ann Lee",
    )
    assert contact["priority_1.phone"].new_value == "+14155550100"
    preference = changes.get(record_id="par-003", field="preference.attendance_sms")
    assert (preference.old_value, preference.new_value) == ("", "true")
    assert [c.name for c in EmergencyContact.objects.filter(household=registration.household)] == [
        "Ann Lee"
    ]
    # Health is written to the records, never recorded for the SIS.
    assert StudentHealth.objects.get(student=liam).allergies == "Peanuts"
    assert not changes.filter(field__icontains="allerg")


def test_approval_is_refused_while_the_address_change_is_open(
    campaign, office_user, mailoutbox, django_capture_on_commit_callbacks
):
    registration = _submit(campaign, "hh-001", moved=True)
    request = AddressChangeRequest.objects.get(household=registration.household)
    assert request.state == AddressChangeRequest.State.AWAITING_VISIT
    office = _staff(office_user)
    detail = office.get(_detail_url(registration)).content.decode()
    assert "Awaiting visit" in detail and "5 New Rd" in detail
    assert "can be approved once the address change is verified or rejected" in detail
    assert f'href="{reverse("staff_address", args=[request.pk])}"' in detail

    with django_capture_on_commit_callbacks(execute=True):
        response = office.post(reverse("staff_registration_approve", args=[registration.pk]))
    assert response.status_code == 302 and response.url == _detail_url(registration)
    assert "The household's address change must be verified or rejected first." in _messages(
        response
    )
    assert _registration("hh-001").state == Registration.State.SUBMITTED
    assert not ChangeRecord.objects.exists()
    assert not EnrollmentDecision.objects.filter(state=EnrollmentDecision.State.CONFIRMED)
    assert not mailoutbox


def test_a_registration_is_approved_once(campaign, office_user):
    registration = _submit(campaign, "hh-001")
    office = _staff(office_user)
    office.post(reverse("staff_registration_approve", args=[registration.pk]))
    count = ChangeRecord.objects.count()
    response = office.post(reverse("staff_registration_approve", args=[registration.pk]))
    assert "no longer waiting for review" in " ".join(_messages(response))
    assert ChangeRecord.objects.count() == count
    assert office.get(
        reverse("staff_registration_approve", args=[registration.pk])
    ).status_code == (405)


# -- returning ---------------------------------------------------------------------------


def test_returning_asks_the_family_to_correct_a_step(
    client,
    guardian_user,
    campaign,
    office_user,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    sign_in(client, guardian_user)
    registration = _jose_signs_with_a_new_mobile(client, django_capture_on_commit_callbacks)
    mailoutbox.clear()
    office = _staff(office_user)
    url = reverse("staff_registration_return", args=[registration.pk])

    detail = office.get(_detail_url(registration)).content.decode()
    assert '<option value="emergency">Emergency contacts</option>' in detail
    refused = office.post(url, {"comment": "  ", "step": "emergency"})
    assert refused.status_code == 200
    assert "Please say what the family should correct." in refused.content.decode()
    refused = office.post(url, {"comment": "Fix it", "step": "payments"})
    assert refused.status_code == 200
    assert _registration("hh-001").state == Registration.State.SUBMITTED

    comment = "Please add a second emergency contact who lives nearby."
    with django_capture_on_commit_callbacks(execute=True):
        response = office.post(url, {"comment": comment, "step": "emergency"})
    assert response.status_code == 302
    registration.refresh_from_db()
    assert registration.state == Registration.State.RETURNED
    assert (registration.return_comment, registration.return_step) == (comment, "emergency")
    log = TransitionLog.objects.filter(
        object_type="workflow.registration", object_id=str(registration.pk)
    ).last()
    assert (log.transition, log.actor, log.note) == ("return_for_changes", office_user, comment)
    assert AuditEvent.objects.filter(
        actor=office_user,
        action=AuditEvent.Action.CHANGE,
        object_type="workflow.registration",
        object_id=str(registration.pk),
        detail__step="emergency",
    ).exists()

    # The family: the comment on their status page, and the wizard at that step.
    status = client.get(reverse("registration_status", args=[registration.pk])).content.decode()
    assert comment in status
    wizard = WizardWalk(client, registration)
    assert wizard.open().step == "emergency"

    assert [m.to for m in mailoutbox] == [["jose.garcia@example.com"]]
    message = mailoutbox[0]
    assert comment in message.body
    assert f"{settings.SITE_URL}/register/" in message.body


def test_health_rows_are_left_out_for_roles_that_must_not_see_them():
    from workflow.review_views import review_sections

    content = {
        "sections": [
            {
                "step": "child-1",
                "title": "Sofía",
                "rows": [
                    {"label": "Alergias", "before": "—", "after": "Maní", "changed": True},
                    {"label": "X", "before": "a", "after": "b", "changed": True, "sensitive": True},
                    {
                        "label": "Grade next year",
                        "before": "—",
                        "after": "Grade 5",
                        "changed": True,
                    },
                ],
            }
        ]
    }
    (hidden,) = review_sections(content, health=False)
    assert [row["label"] for row in hidden["rows"]] == ["Grade next year"]
    assert hidden["changes"] == 1
    (shown,) = review_sections(content, health=True)
    assert len(shown["rows"]) == 3
