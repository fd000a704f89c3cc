"""The registrar's campaign pages, through HTTP: dates and rules, documents with
versions, opening a campaign, and who may open these pages at all."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.messages import get_messages
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from registration.models import AcademicSession, HouseholdStudent, Student
from tests.conftest import sign_in
from workflow.models import Acknowledgement, AuditEvent, Campaign, EnrollmentDecision, Registration
from workflow.services import campaign_save

TODAY = timezone.localdate()
HANDBOOK = {
    "key": "handbook",
    "title_en": "Family handbook",
    "body_en": "Attendance, behaviour and safety rules.",
    "title_es": "Manual para familias",
    "body_es": "Reglas de asistencia, conducta y seguridad.",
    "title_zh": "家庭手册",
    "body_zh": "出勤、行为和安全规定。",
    "required": "on",
    "position": "1",
}


def _campaign_data(**changes):
    data = {
        "school_year": AcademicSession.objects.get(sourced_id="sy-2028").pk,
        "opens_on": (TODAY + datetime.timedelta(days=1)).isoformat(),
        "closes_on": (TODAY + datetime.timedelta(days=45)).isoformat(),
        "fees_before_submit": "on",
    }
    data.update(changes)
    return data


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture(autouse=True)
def _counted_on_every_view(settings):
    """These tests change registrations and look again at once: every view counts
    (the counts as last made, and their age, are ``test_summaries``' matter)."""
    settings.SUMMARY_MAX_AGE_SECONDS = 0


@pytest.fixture
def registrar(client, registrar_user):
    sign_in(client, registrar_user)
    return client


@pytest.fixture
def draft_campaign(sample_district, registrar_user):
    """A campaign for 2027–28 that has not been opened, with no documents."""
    return campaign_save(
        school_year=AcademicSession.objects.get(sourced_id="sy-2028"),
        opens_on=TODAY - datetime.timedelta(days=1),
        closes_on=TODAY + datetime.timedelta(days=30),
        fees_before_submit=False,
        approve_with_open_address_request=False,
        actor=registrar_user,
    )


# -- campaigns -----------------------------------------------------------------------


def test_the_registrar_creates_a_campaign_for_next_year(registrar, registrar_user):
    page = registrar.get(reverse("staff_campaign_create"))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<label for="id_school_year">' in html
    assert 'type="date"' in html
    assert "2027–28" in html

    response = registrar.post(reverse("staff_campaign_create"), _campaign_data())

    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("staff_campaign", args=[campaign.pk])
    assert campaign.school_year.sourced_id == "sy-2028"
    assert campaign.opens_on == TODAY + datetime.timedelta(days=1)
    assert campaign.fees_before_submit is True
    assert campaign.approve_with_open_address_request is False
    assert campaign.opened_at is None
    assert campaign.created_by == registrar_user
    assert AuditEvent.objects.filter(
        action="create",
        object_type="workflow.campaign",
        object_id=str(campaign.pk),
        actor=registrar_user,
    ).exists()
    # A year that has its campaign is no longer offered.
    html = registrar.get(reverse("staff_campaign_create")).content.decode()
    assert "2027–28 (2027–28 School Year)" not in html
    assert "2026–27 (2026–27 School Year)" in html


def test_closing_before_opening_is_explained_next_to_the_field(registrar):
    data = _campaign_data(opens_on="2028-03-10", closes_on="2028-03-01")

    response = registrar.post(reverse("staff_campaign_create"), data)

    assert response.status_code == 200
    assert not Campaign.objects.exists()
    form = response.context["form"]
    assert list(form.errors) == ["closes_on"]
    html = response.content.decode()
    assert 'id="id_closes_on_error"' in html
    assert 'aria-invalid="true"' in html
    assert 'href="#id_closes_on"' in html  # the summary links to the field
    # What was typed is still there.
    assert 'value="2028-03-10"' in html
    assert 'value="2028-03-01"' in html
    assert f'<option value="{data["school_year"]}" selected>' in html


def test_a_school_year_with_a_campaign_cannot_be_chosen_again(registrar, draft_campaign):
    response = registrar.post(reverse("staff_campaign_create"), _campaign_data())
    assert response.status_code == 200
    assert "school_year" in response.context["form"].errors
    assert Campaign.objects.count() == 1


def test_the_registrar_changes_dates_but_not_the_year(registrar, registrar_user, draft_campaign):
    edit = reverse("staff_campaign_edit", args=[draft_campaign.pk])
    html = registrar.get(edit).content.decode()
    assert "disabled" in html
    other_year = AcademicSession.objects.get(sourced_id="sy-2027")

    response = registrar.post(
        edit,
        _campaign_data(
            school_year=other_year.pk,  # ignored: the year never changes
            opens_on=TODAY.isoformat(),
            closes_on=(TODAY + datetime.timedelta(days=60)).isoformat(),
            approve_with_open_address_request="on",
        ),
    )

    assert response.status_code == 302
    draft_campaign.refresh_from_db()
    assert draft_campaign.school_year.sourced_id == "sy-2028"
    assert draft_campaign.closes_on == TODAY + datetime.timedelta(days=60)
    assert draft_campaign.approve_with_open_address_request is True
    assert draft_campaign.fees_before_submit is True
    assert AuditEvent.objects.filter(
        action="change", object_type="workflow.campaign", actor=registrar_user
    ).exists()


def test_an_unknown_campaign_is_not_found(registrar):
    assert registrar.get(reverse("staff_campaign", args=[999])).status_code == 404
    assert registrar.post(reverse("staff_campaign_open", args=[999])).status_code == 404


# -- documents -----------------------------------------------------------------------


def test_editing_a_documents_text_adds_a_version(registrar, draft_campaign):
    add = reverse("staff_acknowledgement_create", args=[draft_campaign.pk])
    assert registrar.get(add).status_code == 200
    response = registrar.post(add, HANDBOOK)
    assert response.status_code == 302
    first = Acknowledgement.objects.get()
    assert (first.key, first.version, first.is_current, first.required) == (
        "handbook",
        1,
        True,
        True,
    )
    assert first.title_es == "Manual para familias"

    edit = reverse("staff_acknowledgement_edit", args=[draft_campaign.pk, first.pk])
    page = registrar.get(edit).content.decode()
    assert "This is version 1" in page
    assert "saves a new version 2" in page
    response = registrar.post(
        edit,
        {**HANDBOOK, "key": "ignored", "body_en": "Attendance, behaviour, safety and uniforms."},
    )

    assert response.status_code == 302
    assert any("Version 2" in m for m in _messages(response))
    versions = list(Acknowledgement.objects.order_by("version"))
    assert [(a.key, a.version, a.is_current) for a in versions] == [
        ("handbook", 1, False),
        ("handbook", 2, True),
    ]
    assert versions[0].body_en == HANDBOOK["body_en"]
    assert versions[1].body_en == "Attendance, behaviour, safety and uniforms."

    detail = registrar.get(reverse("staff_campaign", args=[draft_campaign.pk]))
    html = detail.content.decode()
    assert "version 2" in html
    assert "Earlier versions" in html
    assert "Version 1, “Family handbook”" in html

    # Only the rules changed: the same version, updated in place.
    current = versions[1]
    edit = reverse("staff_acknowledgement_edit", args=[draft_campaign.pk, current.pk])
    response = registrar.post(
        edit, {**HANDBOOK, "body_en": current.body_en, "required": "", "position": "5"}
    )
    assert response.status_code == 302
    current.refresh_from_db()
    assert (current.version, current.is_current, current.required, current.position) == (
        2,
        True,
        False,
        5,
    )
    assert Acknowledgement.objects.count() == 2

    # The replaced version cannot be edited any more; nothing changes.
    stale = reverse("staff_acknowledgement_edit", args=[draft_campaign.pk, versions[0].pk])
    response = registrar.post(stale, {**HANDBOOK, "body_en": "Something else."})
    assert response.status_code == 302
    assert Acknowledgement.objects.count() == 2


def test_a_document_needs_every_language_and_a_free_short_name(registrar, draft_campaign):
    add = reverse("staff_acknowledgement_create", args=[draft_campaign.pk])
    registrar.post(add, HANDBOOK)

    response = registrar.post(add, {**HANDBOOK, "title_es": "", "body_es": "", "body_zh": ""})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"key", "title_es", "body_es", "body_zh"}
    assert 'value="Family handbook"' in response.content.decode()

    response = registrar.post(add, {**HANDBOOK, "key": "Not a slug!"})
    assert "key" in response.context["form"].errors
    assert Acknowledgement.objects.count() == 1


def test_a_retired_document_is_no_longer_asked_for(registrar, registrar_user, draft_campaign):
    add = reverse("staff_acknowledgement_create", args=[draft_campaign.pk])
    registrar.post(add, HANDBOOK)
    handbook = Acknowledgement.objects.get()
    retire = reverse("staff_acknowledgement_retire", args=[draft_campaign.pk, handbook.pk])

    assert registrar.get(retire).status_code == 405
    response = registrar.post(retire)

    assert response.status_code == 302
    handbook.refresh_from_db()
    assert handbook.is_current is False
    assert AuditEvent.objects.filter(
        action="delete", object_type="workflow.acknowledgement", actor=registrar_user
    ).exists()
    html = registrar.get(reverse("staff_campaign", args=[draft_campaign.pk])).content.decode()
    assert "Retired documents" in html
    # Its short name stays taken: the versions of a document are never renumbered.
    response = registrar.post(add, HANDBOOK)
    assert response.status_code == 200
    assert "key" in response.context["form"].errors


# -- opening -------------------------------------------------------------------------


def test_opening_creates_a_registration_per_household_and_a_decision_per_child(
    registrar, registrar_user, draft_campaign
):
    # A household whose only child left the district gets no registration.
    only_child = (
        HouseholdStudent.objects.values("household_id")
        .annotate(n=Count("student_id"))
        .filter(n=1)
        .order_by("household_id")
        .values_list("household_id", flat=True)
        .first()
    )
    Student.objects.filter(householdstudent__household_id=only_child).update(enabled=False)
    households = (
        HouseholdStudent.objects.filter(student__enabled=True)
        .values("household_id")
        .distinct()
        .count()
    )
    children = Student.objects.filter(enabled=True, households__isnull=False).distinct().count()
    assert households < HouseholdStudent.objects.values("household_id").distinct().count()
    open_url = reverse("staff_campaign_open", args=[draft_campaign.pk])
    detail = reverse("staff_campaign", args=[draft_campaign.pk])
    assert "Open campaign" in registrar.get(detail).content.decode()

    response = registrar.post(open_url)

    assert response.status_code == 302
    assert response.url == detail
    assert Registration.objects.filter(campaign=draft_campaign).count() == households
    assert EnrollmentDecision.objects.filter(campaign=draft_campaign).count() == children
    assert not Registration.objects.filter(household_id=only_child).exists()
    assert _messages(response) == [
        f"The campaign is open. Registrations created: {households}; "
        f"enrollment decisions created: {children}."
    ]
    draft_campaign.refresh_from_db()
    assert draft_campaign.opened_at is not None
    opened = AuditEvent.objects.get(
        object_type="workflow.campaign", object_id=str(draft_campaign.pk), detail__opened=True
    )
    assert opened.actor == registrar_user
    assert opened.detail["registrations"] == households
    page = registrar.get(detail).content.decode()
    assert "Not started" in page
    assert "Add new households and students" in page

    response = registrar.post(open_url)

    assert response.status_code == 302
    assert Registration.objects.filter(campaign=draft_campaign).count() == households
    assert EnrollmentDecision.objects.filter(campaign=draft_campaign).count() == children
    (message,) = _messages(response)
    assert message.startswith("The campaign was already open.")
    assert message.endswith("new enrollment decisions added: 0.")


def test_opening_again_says_that_nothing_was_added(registrar, campaign):
    response = registrar.post(reverse("staff_campaign_open", args=[campaign.pk]))

    assert _messages(response)[-1] == (
        "The campaign was already open. New registrations added: 0; "
        "new enrollment decisions added: 0."
    )


def test_the_campaign_list_counts_registrations_by_state(
    registrar, campaign, django_assert_max_num_queries
):
    households = Registration.objects.filter(campaign=campaign).count()
    with django_assert_max_num_queries(18):  # with the registrations counted
        response = registrar.get(reverse("staff_campaigns"))
    assert response.status_code == 200
    (summary,) = response.context["summaries"]
    assert summary.counts == {"not_started": households}
    assert summary.status == "running"
    html = response.content.decode()
    assert '<th scope="col" class="number">Not started</th>' in html
    assert f'<td class="number">{households}</td>' in html


def test_the_campaign_list_does_not_grow_with_the_campaigns(
    registrar, registrar_user, campaign, django_assert_max_num_queries
):
    from django.db import connection

    registrar.get(reverse("staff_campaigns"))  # the count's row made; later ones update it
    with CaptureQueriesContext(connection) as one:
        registrar.get(reverse("staff_campaigns"))
    for year in (2029, 2030, 2031):
        session = AcademicSession.objects.create(
            sourced_id=f"sy-{year}",
            title=f"{year - 1}–{str(year)[-2:]} School Year",
            session_type=AcademicSession.SessionType.SCHOOL_YEAR,
            start_date=datetime.date(year - 1, 8, 15),
            end_date=datetime.date(year, 6, 12),
            school_year=year,
        )
        campaign_save(
            school_year=session,
            opens_on=datetime.date(year - 1, 3, 1),
            closes_on=datetime.date(year - 1, 4, 30),
            fees_before_submit=False,
            approve_with_open_address_request=False,
            actor=registrar_user,
        )
    with django_assert_max_num_queries(18):  # with the registrations counted
        response = registrar.get(reverse("staff_campaigns"))
    assert len(response.context["summaries"]) == 4
    with CaptureQueriesContext(connection) as four:
        registrar.get(reverse("staff_campaigns"))
    assert len(four) == len(one)


def test_the_detail_page_does_not_grow_with_the_documents(
    registrar, campaign, django_assert_max_num_queries
):
    with django_assert_max_num_queries(19):  # with the registrations counted
        response = registrar.get(reverse("staff_campaign", args=[campaign.pk]))
    assert len(response.context["documents"]) == 2
    html = response.content.decode()
    assert 'lang="es"' in html
    assert "Día de fotos" in html


# -- who may open these pages ------------------------------------------------------------


def _every_page(campaign, acknowledgement):
    c, a = campaign.pk, acknowledgement.pk
    return [
        reverse("staff_campaigns"),
        reverse("staff_campaign_create"),
        reverse("staff_campaign", args=[c]),
        reverse("staff_campaign_edit", args=[c]),
        reverse("staff_campaign_open", args=[c]),
        reverse("staff_acknowledgement_create", args=[c]),
        reverse("staff_acknowledgement_edit", args=[c, a]),
        reverse("staff_acknowledgement_retire", args=[c, a]),
    ]


@pytest.mark.parametrize("actor", ["office_user", "teacher_user", "finance_user", "guardian_user"])
def test_only_the_registrar_may_open_campaign_pages(request, client, campaign, actor):
    user = request.getfixturevalue(actor)
    sign_in(client, user)
    acknowledgement = campaign.acknowledgements.first()
    registrations = Registration.objects.count()

    for url in _every_page(campaign, acknowledgement):
        assert client.get(url).status_code == 403, url
        assert client.post(url, {**HANDBOOK, **_campaign_data()}).status_code == 403, url

    assert Registration.objects.count() == registrations
    assert Campaign.objects.count() == 1
    assert campaign.acknowledgements.filter(is_current=True).count() == 2
    home = client.get(reverse("staff_home"))
    assert reverse("staff_campaigns") not in home.content.decode()


def test_signed_out_visitors_are_sent_to_sign_in(client, campaign):
    response = client.get(reverse("staff_campaigns"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_the_registrar_finds_campaigns_in_the_staff_menu(registrar):
    home = registrar.get(reverse("staff_home")).content.decode()
    assert f'href="{reverse("staff_campaigns")}"' in home
    page = registrar.get(reverse("staff_campaigns")).content.decode()
    assert f'<a href="{reverse("staff_campaigns")}" aria-current="page">' in page
