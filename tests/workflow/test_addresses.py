"""The address verification pages through HTTP: the queue (scoped to the schools of
office staff, filtered, counted, paginated), one request with its proofs, recording
the visit, verifying (the household's address, the SIS change rows, the log, the
emails) or rejecting, the day's visits and the schools' office hours.

Actors from tests/conftest.py: Carmen Ortiz (office of Las Lomas Elementary, where
Sofía of hh-001 and Liam of hh-002 go), the office of Mission Ridge High School
(Zoë of hh-002), the registrar, finance and a teacher.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from registration.models import (
    Guardian,
    Household,
    HouseholdGuardian,
    HouseholdStudent,
    School,
    Student,
)
from tests.conftest import sign_in
from tests.workflow.test_approval import _submitted
from workflow.models import (
    AddressChangeRequest,
    AddressProof,
    AddressVisit,
    AuditEvent,
    ChangeRecord,
    OfficeHours,
    TransitionLog,
    VisitSchedule,
)
from workflow.services import address_visit_book
from workflow.visits import VisitChoice

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
OLD_ADDRESS = ["1450 Alameda de las Pulgas", "Apt 4, Building B", "Riverside, CA 95202"]


def _signed_in(user: Any) -> Client:
    client = Client()
    sign_in(client, user)
    return client


def _school(sourced_id: str) -> School:
    return School.objects.get(sourced_id=sourced_id)


def _tomorrow_at(hour: int) -> datetime.datetime:
    day = timezone.localdate() + datetime.timedelta(days=1)
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(hour)))


def _add_proof(request: AddressChangeRequest, name: str = "lease.pdf") -> AddressProof:
    proof = AddressProof(
        request=request,
        original_name=name,
        content_type="application/pdf",
        size=len(PDF),
        sha256="0" * 64,
    )
    proof.file.save(name, ContentFile(PDF), save=False)
    proof.save()
    return proof


@pytest.fixture
def jose_moved(campaign, guardian_user) -> AddressChangeRequest:
    """José's household (hh-001) submitted its registration with a new address (5 New
    Rd, 95210) and a lease, and booked a visit at Las Lomas tomorrow at 9."""
    _submitted(campaign, moved=True)
    request = AddressChangeRequest.objects.get(household__sourced_id="hh-001")
    _add_proof(request)
    address_visit_book(
        request=request,
        choice=VisitChoice(school=_school("sch-elem"), starts_at=_tomorrow_at(9)),
        guardian=Guardian.objects.get(sourced_id="par-002"),
    )
    request.refresh_from_db()
    assert request.state == AddressChangeRequest.State.AWAITING_VISIT
    return request


def _request_of(household: Household, *, days_old: int = 0, **fields: Any) -> AddressChangeRequest:
    guardian = Guardian.objects.filter(householdguardian__household=household).first()
    if guardian is None:
        guardian = Guardian.objects.create(
            sourced_id=f"{household.sourced_id}-par", given_name="Pat", family_name="Lee"
        )
        HouseholdGuardian.objects.create(household=household, guardian=guardian)
    request = AddressChangeRequest.objects.create(
        household=household,
        requested_by=guardian,
        street1=fields.pop("street1", "1 New St"),
        city="Riverside",
        state_code="CA",
        postal_code="95201",
        **fields,
    )
    if days_old:
        AddressChangeRequest.objects.filter(pk=request.pk).update(
            created_at=timezone.now() - datetime.timedelta(days=days_old)
        )
    return request


def _siobhan_moved(days_old: int = 30) -> AddressChangeRequest:
    """hh-002 (Liam at Las Lomas, Zoë at Mission Ridge High) asked a month ago."""
    return _request_of(
        Household.objects.get(sourced_id="hh-002"), days_old=days_old, street1="9 Elm St"
    )


def _household_at(school: School, tag: str) -> Household:
    household = Household.objects.create(
        sourced_id=tag, street1="10 Oak St", city="Riverside", state="CA", postal_code="95201"
    )
    student = Student.objects.create(
        sourced_id=f"{tag}-stu",
        given_name="Kim",
        family_name="Lee",
        grade="03",
        school=school,
        birth_date=datetime.date(2017, 1, 1),
    )
    HouseholdStudent.objects.create(household=household, student=student, is_primary=True)
    return household


def _rows(response: Any) -> list[str]:
    """The households listed in the queue, in order."""
    return [item.household.sourced_id for item in response.context["page"].object_list]


# -- who may open the pages ------------------------------------------------------------


def test_finance_and_teachers_are_refused(finance_user, teacher_user, jose_moved):
    proof = jose_moved.proofs.get()
    urls = [
        reverse("staff_addresses"),
        reverse("staff_address", args=[jose_moved.pk]),
        reverse("staff_address_proof", args=[jose_moved.pk, proof.pk]),
        reverse("staff_address_visits"),
        reverse("staff_address_schedule"),
    ]
    posts = [
        reverse("staff_address_visit_record", args=[jose_moved.pk]),
        reverse("staff_address_verify", args=[jose_moved.pk]),
        reverse("staff_address_reject", args=[jose_moved.pk]),
    ]
    for user in (finance_user, teacher_user):
        client = _signed_in(user)
        for url in urls:
            assert client.get(url).status_code == 403, (user, url)
        for url in posts:
            assert client.post(url, {"reason": "x"}).status_code == 403, (user, url)
        home = client.get(reverse("staff_home"))
        assert reverse("staff_addresses") not in home.content.decode()
    assert not AuditEvent.objects.filter(action="view").exists()


def test_the_navigation_shows_addresses_to_office_staff_and_registrars(office_user, registrar_user):
    for user in (office_user, registrar_user):
        page = _signed_in(user).get(reverse("staff_addresses"))
        assert page.status_code == 200
        assert f'href="{reverse("staff_addresses")}" aria-current="page"' in page.content.decode()


def test_office_staff_of_another_school_see_nothing_of_hh_001(other_school_office_user, jose_moved):
    siobhan = _siobhan_moved()  # Zoë goes to Mission Ridge High
    client = _signed_in(other_school_office_user)

    queue = client.get(reverse("staff_addresses"))
    assert _rows(queue) == ["hh-002"]
    assert "hh-001" not in queue.content.decode()
    proof = jose_moved.proofs.get()
    for url in (
        reverse("staff_address", args=[jose_moved.pk]),
        reverse("staff_address_proof", args=[jose_moved.pk, proof.pk]),
    ):
        assert client.get(url).status_code == 404
    # Nor can they act on it, or reach its proof through their own request.
    record = client.post(
        reverse("staff_address_visit_record", args=[jose_moved.pk]),
        {"proofs_seen": ["lease", "utility"]},
    )
    assert record.status_code == 404
    assert client.post(reverse("staff_address_verify", args=[jose_moved.pk])).status_code == 404
    assert (
        client.get(reverse("staff_address_proof", args=[siobhan.pk, proof.pk])).status_code == 404
    )
    visits = client.get(reverse("staff_address_visits"), {"date": _tomorrow_at(9).date()})
    assert visits.context["visits"] == []
    jose_moved.refresh_from_db()
    assert jose_moved.visit_recorded_at is None
    assert not AuditEvent.objects.filter(action="view").exists()
    assert client.get(reverse("staff_address", args=[siobhan.pk])).status_code == 200


# -- the queue -------------------------------------------------------------------------


def test_the_queue_lists_oldest_first_with_filters_and_counts(
    office_user, jose_moved, django_assert_max_num_queries
):
    siobhan = _siobhan_moved(days_old=30)  # requested: not submitted yet
    elsewhere = _request_of(_household_at(_school("sch-high"), "hh-x01"), days_old=40)
    _request_of(
        Household.objects.create(sourced_id="hh-x02"),
        state=AddressChangeRequest.State.VERIFIED,
    )
    client = _signed_in(office_user)

    with django_assert_max_num_queries(15):
        response = client.get(reverse("staff_addresses"))
    assert response.status_code == 200
    assert _rows(response) == ["hh-002", "hh-001"]  # oldest first; not hh-x01's school
    queue = response.context["queue"]
    assert queue.counts == {"requested": 1, "awaiting_visit": 1}
    html = response.content.decode()
    assert "Awaiting visit: <strong>1</strong>" in html
    assert "Requested: <strong>1</strong>" in html
    assert "1450 Alameda de las Pulgas" in html and "5 New Rd" in html

    response = client.get(reverse("staff_addresses"), {"state": "awaiting_visit"})
    assert _rows(response) == ["hh-001"]
    assert response.context["queue"].counts == {"requested": 1, "awaiting_visit": 1}

    response = client.get(reverse("staff_addresses"), {"older_than": "10"})
    assert _rows(response) == ["hh-002"]
    assert response.context["queue"].counts == {"requested": 1}

    response = client.get(reverse("staff_addresses"), {"school": _school("sch-elem").pk})
    assert _rows(response) == ["hh-002", "hh-001"]
    # Mateo's school is not one of Carmen's: the filter is refused, not applied.
    response = client.get(reverse("staff_addresses"), {"school": _school("sch-mid").pk})
    assert response.status_code == 200
    assert "school" in response.context["form"].errors
    assert _rows(response) == ["hh-002", "hh-001"]
    assert siobhan.state == elsewhere.state == AddressChangeRequest.State.REQUESTED


def test_the_registrar_sees_every_school_and_filters_by_one(registrar_user, jose_moved):
    _siobhan_moved()
    _request_of(_household_at(_school("sch-high"), "hh-x01"), days_old=40)
    client = _signed_in(registrar_user)

    assert _rows(client.get(reverse("staff_addresses"))) == ["hh-x01", "hh-002", "hh-001"]
    middle = client.get(reverse("staff_addresses"), {"school": _school("sch-mid").pk})
    assert _rows(middle) == ["hh-001"]
    high = client.get(reverse("staff_addresses"), {"school": _school("sch-high").pk})
    assert _rows(high) == ["hh-x01", "hh-002"]


def test_with_many_schools_the_school_is_typed(registrar_user, jose_moved, monkeypatch):
    monkeypatch.setattr("config.school_field.SCHOOL_SELECT_MAX", 2)
    _siobhan_moved()
    _request_of(_household_at(_school("sch-high"), "hh-x01"), days_old=40)
    client = _signed_in(registrar_user)

    page = client.get(reverse("staff_addresses"))
    html = page.content.decode()
    assert '<input type="search" name="school"' in html and "Sequoia Middle" not in html
    assert '<p class="help" id="id_school_helptext">Type the school\'s name or number.</p>' in html
    high = client.get(reverse("staff_addresses"), {"school": "mission RIDGE"})
    assert _rows(high) == ["hh-x01", "hh-002"]
    assert 'value="Mission Ridge High School"' in high.content.decode()
    # A link from another page still names the school by its id.
    middle = client.get(reverse("staff_addresses"), {"school": _school("sch-mid").pk})
    assert _rows(middle) == ["hh-001"]
    assert 'value="Sequoia Middle School"' in middle.content.decode()

    unknown = client.get(reverse("staff_addresses"), {"school": "Lincoln", "state": "requested"})
    html = unknown.content.decode()
    assert (
        '<p class="error" id="id_school_error">No school of yours is named “Lincoln”.</p>' in html
    )
    assert 'value="Lincoln"' in html
    assert _rows(unknown) == ["hh-x01", "hh-002"]  # the other filters still apply


def test_with_many_schools_office_staff_type_only_their_own(office_user, jose_moved, monkeypatch):
    monkeypatch.setattr("config.school_field.SCHOOL_SELECT_MAX", 0)
    _request_of(_household_at(_school("sch-high"), "hh-x01"), days_old=40)
    client = _signed_in(office_user)
    for typed in ("Mission Ridge", str(_school("sch-high").pk)):
        response = client.get(reverse("staff_addresses"), {"school": typed})
        assert "school" in response.context["form"].errors
        assert _rows(response) == ["hh-001"]
    own = client.get(reverse("staff_addresses"), {"school": "lomas"})
    assert not own.context["form"].errors
    assert _rows(own) == ["hh-001"]
    visits = client.get(reverse("staff_address_visits"), {"school": "Mission Ridge"})
    assert "No school of yours is named" in visits.content.decode()


def test_the_queue_costs_the_same_queries_for_two_requests_and_sixty(registrar_user, jose_moved):
    client = _signed_in(registrar_user)
    school = _school("sch-elem")

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("staff_addresses"))
        assert response.status_code == 200
        return len(queries)

    _siobhan_moved()
    few = count()
    for index in range(58):
        request = _request_of(_household_at(school, f"hh-q{index:02}"), days_old=index % 5)
        _add_proof(request, f"bill-{index}.pdf")
        address_visit_book(request=request, choice=VisitChoice(school=school), guardian=None)
    many = count()
    assert many == few
    response = client.get(reverse("staff_addresses"))
    assert len(response.context["page"].object_list) == 50
    assert response.context["page"].paginator.count == 60
    page_two = client.get(reverse("staff_addresses"), {"page": "2"})
    assert len(page_two.context["page"].object_list) == 10


# -- one request ----------------------------------------------------------------------


def test_the_detail_shows_both_addresses_proofs_and_visit_and_is_audited(office_user, jose_moved):
    client = _signed_in(office_user)
    response = client.get(reverse("staff_address", args=[jose_moved.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    for line in (*OLD_ADDRESS, "5 New Rd", "Riverside, CA 95210", "lease.pdf"):
        assert line in html, line
    assert "Las Lomas Elementary" in html
    proof = jose_moved.proofs.get()
    assert reverse("staff_address_proof", args=[jose_moved.pk, proof.pk]) in html

    (event,) = AuditEvent.objects.filter(action="view")
    assert (event.object_type, event.object_id, event.actor) == (
        "workflow.addresschangerequest",
        str(jose_moved.pk),
        office_user,
    )


def test_a_proof_is_downloaded_as_an_attachment_and_audited(office_user, jose_moved):
    client = _signed_in(office_user)
    proof = jose_moved.proofs.get()
    url = reverse("staff_address_proof", args=[jose_moved.pk, proof.pk])

    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 200
        assert response["Content-Disposition"].startswith("attachment")
        assert "lease.pdf" in response["Content-Disposition"]
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Type"] == "application/pdf"
        assert b"".join(response.streaming_content) == PDF

    views = AuditEvent.objects.filter(action="view", object_type="workflow.addressproof")
    assert views.count() == 2
    assert {(e.object_id, e.actor_id) for e in views} == {(str(proof.pk), office_user.pk)}


def test_recording_a_visit_with_one_proof_is_refused_at_the_field(office_user, jose_moved):
    client = _signed_in(office_user)
    url = reverse("staff_address_visit_record", args=[jose_moved.pk])

    response = client.post(url, {"proofs_seen": ["lease"]})
    assert response.status_code == 200
    assert "Tick at least two proofs you saw." in response.content.decode()
    assert response.context["record_form"].errors["proofs_seen"]
    jose_moved.refresh_from_db()
    assert jose_moved.visit_recorded_at is None and jose_moved.proofs_seen == []

    # Verifying before the visit is recorded is refused too.
    response = client.post(reverse("staff_address_verify", args=[jose_moved.pk]), follow=True)
    assert "Record the visit" in response.content.decode()
    jose_moved.refresh_from_db()
    assert jose_moved.state == AddressChangeRequest.State.AWAITING_VISIT

    # Without the CSRF token, nothing is recorded.
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.cookies = client.cookies  # the same signed-in session, without a token
    assert csrf_client.post(url, {"proofs_seen": ["lease", "utility"]}).status_code == 403
    jose_moved.refresh_from_db()
    assert jose_moved.visit_recorded_at is None


def test_a_verified_address_becomes_the_households(
    office_user, jose_moved, mailoutbox, django_capture_on_commit_callbacks
):
    client = _signed_in(office_user)
    response = client.post(
        reverse("staff_address_visit_record", args=[jose_moved.pk]),
        {"proofs_seen": ["utility", "lease"]},
    )
    assert response.status_code == 302
    jose_moved.refresh_from_db()
    assert jose_moved.proofs_seen == ["lease", "utility"]
    assert jose_moved.visit_recorded_by == office_user
    household = Household.objects.get(sourced_id="hh-001")
    assert household.address_lines == OLD_ADDRESS  # not until verified

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("staff_address_verify", args=[jose_moved.pk]))
    assert response.status_code == 302
    assert response.url == reverse("staff_address", args=[jose_moved.pk])

    jose_moved.refresh_from_db()
    household.refresh_from_db()
    assert jose_moved.state == AddressChangeRequest.State.VERIFIED
    assert jose_moved.decided_by == office_user
    assert household.address_lines == ["5 New Rd", "Riverside, CA 95210"]

    changes = ChangeRecord.objects.filter(record_type="household").order_by("field")
    assert [(c.field, c.old_value, c.new_value) for c in changes] == [
        ("postal_code", "95202", "95210"),
        ("street1", "1450 Alameda de las Pulgas", "5 New Rd"),
        ("street2", "Apt 4, Building B", ""),
    ]
    for change in changes:
        assert change.record_id == "hh-001"
        assert change.registration_id == jose_moved.registration_id
        assert change.approved_by == office_user
        assert change.approved_at == jose_moved.decided_at
        assert change.export is None

    (log,) = TransitionLog.objects.filter(
        object_type="workflow.addresschangerequest",
        object_id=str(jose_moved.pk),
        transition="verify",
    )
    assert (log.source, log.target, log.actor, log.note) == (
        "awaiting_visit",
        "verified",
        office_user,
        "lease, utility",
    )

    (message,) = mailoutbox  # José; María José has no email address
    assert message.to == ["jose.garcia@example.com"]
    assert "5 New Rd" in message.body and "Riverside, CA 95210" in message.body
    assert message.body.startswith("Estimado/a José")  # the household reads Spanish

    audit = AuditEvent.objects.filter(actor=office_user)
    assert audit.filter(action="change", object_type="workflow.addresschangerequest").count() == 1
    household_change = audit.get(action="change", object_type="registration.household")
    assert household_change.detail["address_after"] == ["5 New Rd", "Riverside, CA 95210"]
    # The booking not yet used is released.
    assert AddressVisit.objects.get(request=jose_moved).cancelled_at is not None

    page = client.get(reverse("staff_address", args=[jose_moved.pk]))
    assert "Verified" in page.content.decode()
    assert "Verify the new address" not in page.content.decode()
    assert audit.filter(action="view").count() == 1  # the page after the redirect
    queue = client.get(reverse("staff_addresses"))
    assert _rows(queue) == []


def test_a_rejected_address_is_emailed_with_its_reason(
    office_user, jose_moved, mailoutbox, django_capture_on_commit_callbacks
):
    client = _signed_in(office_user)
    url = reverse("staff_address_reject", args=[jose_moved.pk])

    response = client.post(url, {"reason": "   "})
    assert response.status_code == 200
    assert response.context["reject_form"].errors["reason"]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"reason": "The lease is not signed."})
    assert response.status_code == 302

    jose_moved.refresh_from_db()
    assert jose_moved.state == AddressChangeRequest.State.REJECTED
    assert jose_moved.reason == "The lease is not signed."
    household = Household.objects.get(sourced_id="hh-001")
    assert household.address_lines == OLD_ADDRESS
    assert not ChangeRecord.objects.filter(record_type="household").exists()
    assert TransitionLog.objects.filter(
        object_id=str(jose_moved.pk), transition="reject", actor=office_user
    ).exists()
    (message,) = mailoutbox
    assert message.to == ["jose.garcia@example.com"]
    assert "The lease is not signed." in message.body
    assert "5 New Rd" in message.body
    assert message.body.startswith("Estimado/a José")  # the household reads Spanish


# -- visits and office hours ------------------------------------------------------------


def test_the_days_visits_of_the_users_schools(
    office_user, registrar_user, jose_moved, django_assert_max_num_queries
):
    school = _school("sch-elem")
    for index in range(3):
        request = _request_of(_household_at(school, f"hh-v{index}"))
        address_visit_book(request=request, choice=VisitChoice(school=school), guardian=None)
    client = _signed_in(office_user)
    tomorrow = _tomorrow_at(9).date()

    with django_assert_max_num_queries(12):
        response = client.get(reverse("staff_address_visits"), {"date": tomorrow.isoformat()})
    assert response.status_code == 200
    assert [v.request.household.sourced_id for v in response.context["visits"]] == ["hh-001"]
    assert len(response.context["walk_ins"]) == 3
    assert "5 New Rd" in response.content.decode()

    today = client.get(reverse("staff_address_visits"))
    assert today.context["day"] == timezone.localdate()
    assert today.context["visits"] == []

    registrar = _signed_in(registrar_user)
    other_school = registrar.get(
        reverse("staff_address_visits"),
        {"date": tomorrow.isoformat(), "school": _school("sch-high").pk},
    )
    assert other_school.context["visits"] == []


def test_the_registrar_sets_office_hours_and_slot_length(registrar_user):
    client = _signed_in(registrar_user)
    school = _school("sch-mid")
    url = reverse("staff_address_schedule") + f"?school={school.pk}"

    assert client.get(url).status_code == 200
    refused = client.post(
        url,
        {"slot_minutes": "20", "capacity": "2", "d0_opens_1": "10:00", "d0_closes_1": "09:00"},
    )
    assert refused.status_code == 200
    assert "The office must close after it opens." in refused.content.decode()
    assert not OfficeHours.objects.filter(school=school).exists()

    response = client.post(
        url,
        {
            "slot_minutes": "20",
            "capacity": "2",
            "d0_opens_1": "08:00",
            "d0_closes_1": "11:30",
            "d0_opens_2": "13:00",
            "d0_closes_2": "15:00",
            "d2_opens_1": "08:00",
            "d2_closes_1": "12:00",
        },
    )
    assert response.status_code == 302
    schedule = VisitSchedule.objects.get(school=school)
    assert (schedule.slot_minutes, schedule.capacity) == (20, 2)
    assert [
        (h.weekday, h.opens_at, h.closes_at)
        for h in OfficeHours.objects.filter(school=school).order_by("weekday", "opens_at")
    ] == [
        (0, datetime.time(8), datetime.time(11, 30)),
        (0, datetime.time(13), datetime.time(15)),
        (2, datetime.time(8), datetime.time(12)),
    ]
    assert AuditEvent.objects.filter(
        action="change", object_type="workflow.visitschedule", actor=registrar_user
    ).exists()


def test_office_staff_set_only_their_own_schools_hours(office_user, registrar_user):
    elementary = _school("sch-elem")
    client = _signed_in(office_user)
    url = reverse("staff_address_schedule")

    page = client.get(url)
    assert page.status_code == 200
    assert [s.sourced_id for s in page.context["schools"]] == ["sch-elem"]
    assert page.context["form"].fields["slot_minutes"].disabled

    response = client.post(
        f"{url}?school={elementary.pk}",
        {"slot_minutes": "60", "capacity": "9", "d4_opens_1": "07:30", "d4_closes_1": "09:00"},
    )
    assert response.status_code == 302
    schedule = VisitSchedule.objects.get(school=elementary)
    assert (schedule.slot_minutes, schedule.capacity) == (15, 1)  # the registrar's to set
    assert list(
        OfficeHours.objects.filter(school=elementary).values_list("weekday", flat=True)
    ) == [4]
    high = _school("sch-high")
    assert client.get(f"{url}?school={high.pk}").status_code == 404
    assert client.post(f"{url}?school={high.pk}", {"d0_opens_1": "08:00"}).status_code == 404
    assert not OfficeHours.objects.filter(school=high).exists()


def test_the_office_hours_of_many_schools_are_listed_a_page_at_a_time(registrar_user):
    """A district of a thousand schools: 50 a page, each page the same few queries,
    and any school's hours open from its page."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from workflow.address_views import SCHOOLS_PER_PAGE

    School.objects.bulk_create(
        School(sourced_id=f"sch-many-{n:03}", name=f"Zz School {n:03}", low_grade="KG")
        for n in range(SCHOOLS_PER_PAGE)
    )
    client = _signed_in(registrar_user)
    url = reverse("staff_address_schedule")
    with CaptureQueriesContext(connection) as on_first:
        first = client.get(url).content.decode()
    last = School.objects.order_by("-name").first()
    assert last is not None
    with CaptureQueriesContext(connection) as on_second:
        client.get(f"{url}?page=2")
    assert len(on_first) == len(on_second)
    second = client.get(f"{url}?page=2&school={last.pk}").content.decode()
    assert first.count('<th scope="row"><a href="?school=') == SCHOOLS_PER_PAGE
    assert second.count('<th scope="row"><a href="?school=') == School.objects.count() - 50
    assert "Zz School 049" in second and "Zz School 049" not in first
    assert f"<h2>{last.name}</h2>" in second
    assert client.get(f"{url}?school=999999").status_code == 404
