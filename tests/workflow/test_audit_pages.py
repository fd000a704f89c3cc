"""The registrar's audit page, through HTTP: filters by who acted, by student and by
date, newest first, 100 to a page. The audit and transition logs can be read and
never changed or removed, by anyone; and staff reads of a child's record are logged."""

from __future__ import annotations

import datetime

import pytest
from allauth.account.models import EmailAddress
from django.urls import reverse
from django.utils import timezone

from registration.mfa import totp_enrol
from registration.models import Guardian, Household, Student, User
from tests.conftest import PASSWORD, sign_in
from tests.test_staff_url_matrix import staff_routes
from workflow.models import AuditEvent, TransitionLog
from workflow.services import audit_record, transition_log

URL = "/staff/audit/"


@pytest.fixture
def registrar(client, registrar_user):
    sign_in(client, registrar_user)
    return client


@pytest.fixture
def superuser(sample_district):
    user = User.objects.create_superuser(
        username="root", email="root@riverside.example.org", password=PASSWORD
    )
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    totp_enrol(user=user)
    return user


def _rows(html: str) -> int:
    return html.count("<tr>") - 1  # less the header row


def _on(day: datetime.date, event: AuditEvent) -> AuditEvent:
    moment = timezone.make_aware(datetime.datetime.combine(day, datetime.time(12, 0)))
    AuditEvent.objects.filter(pk=event.pk).update(created_at=moment)
    return event


def test_the_page_is_for_registrars_only(
    client, office_user, finance_user, teacher_user, guardian_user
):
    assert reverse("staff_audit") == URL
    assert client.get(URL).status_code == 302
    for user in (office_user, finance_user, teacher_user, guardian_user):
        client.logout()
        sign_in(client, user)
        assert client.get(URL).status_code == 403, user.email


def test_events_are_newest_first_100_to_a_page(registrar, registrar_user):
    AuditEvent.objects.all().delete()
    for n in range(150):
        audit_record(
            action="view",
            object_type="registration.household",
            object_id=str(n),
            actor=registrar_user,
        )

    first = registrar.get(URL).content.decode()
    second = registrar.get(URL, {"page": 2}).content.decode()

    assert "150 events" in first
    assert _rows(first) == 100
    assert "#149</span>" in first and "#50</span>" in first and "#49</span>" not in first
    assert first.index("#149</span>") < first.index("#148</span>")
    assert _rows(second) == 50
    assert "#49</span>" in second and "#0</span>" in second


def test_the_page_has_a_pinned_query_count(
    registrar, registrar_user, django_assert_max_num_queries
):
    sofia = Student.objects.get(sourced_id="stu-001")
    for _ in range(120):
        audit_record(action="view", obj=sofia, actor=registrar_user)
    filters = {"student": "stu-001", "actor": "registrar", "since": "2020-01-01"}
    with django_assert_max_num_queries(12):
        html = registrar.get(URL, filters).content.decode()
    assert _rows(html) == 100


def test_filter_by_who_acted(registrar, registrar_user, office_user):
    audit_record(
        action="view", object_type="registration.guardian", object_id="1", actor=office_user
    )
    audit_record(
        action="view", object_type="registration.guardian", object_id="2", actor=registrar_user
    )
    audit_record(
        action="import", object_type="registration.student", actor_label="import_roster command"
    )

    for query in ("carmen", "Carmen Ortiz", "carmen.ortiz@riverside", "ORTIZ"):
        html = registrar.get(URL, {"actor": query}).content.decode()
        assert "registration.guardian #1" in html, query
        assert "registration.guardian #2" not in html, query
    html = registrar.get(URL, {"actor": "import_roster"}).content.decode()
    assert "import_roster command" in html
    assert "registration.guardian #1" not in html


def test_filter_by_student_includes_the_students_households(registrar, registrar_user):
    sofia = Student.objects.get(sourced_id="stu-001")
    liam = Student.objects.get(sourced_id="stu-003")
    home = Household.objects.get(sourced_id="hh-001")
    other_home = Household.objects.get(sourced_id="hh-002")
    audit_record(action="view", obj=sofia, actor=registrar_user)
    audit_record(action="change", obj=home, actor=registrar_user)
    audit_record(action="view", obj=liam, actor=registrar_user)
    audit_record(action="view", obj=other_home, actor=registrar_user)

    for query in ("stu-001", "Sofía García", "sofía"):
        html = registrar.get(URL, {"student": query}).content.decode()
        assert f"registration.student #{sofia.pk}<" in html, query
        assert f"registration.household #{home.pk}<" in html, query
        assert f"registration.student #{liam.pk}<" not in html, query
        assert f"registration.household #{other_home.pk}<" not in html, query
        assert "Students matched:" in html
    html = registrar.get(URL, {"student": "nobody-by-this-name"}).content.decode()
    assert "No student matches." in html
    assert "0 events" in html


def test_filter_by_date_range(registrar, registrar_user):
    AuditEvent.objects.all().delete()
    today = timezone.localdate()
    days = [today - datetime.timedelta(days=n) for n in (10, 5, 1)]
    for n, day in enumerate(days):
        _on(
            day,
            audit_record(
                action="view",
                object_type="registration.guardian",
                object_id=f"9{n}",
                actor=registrar_user,
            ),
        )

    html = registrar.get(
        URL, {"since": days[1].isoformat(), "until": days[2].isoformat()}
    ).content.decode()

    assert "registration.guardian #90<" not in html
    assert "registration.guardian #91<" in html  # both ends of the range are included
    assert "registration.guardian #92<" in html
    html = registrar.get(URL, {"until": days[0].isoformat()}).content.decode()
    assert "registration.guardian #90<" in html and "#91<" not in html


def test_a_range_that_ends_before_it_starts_is_refused(registrar):
    html = registrar.get(URL, {"since": "2026-05-02", "until": "2026-05-01"}).content.decode()
    assert "The first day must not be after the last day." in html
    assert "0 events" in html


def test_searching_the_log_is_itself_logged(registrar, registrar_user):
    registrar.get(URL, {"actor": "carmen"})
    event = AuditEvent.objects.filter(object_type="workflow.auditevent").get()
    assert event.actor == registrar_user
    assert event.detail["actor"] == "carmen"


def test_the_audit_page_offers_no_change(registrar, registrar_user):
    audit_record(
        action="view", object_type="registration.guardian", object_id="1", actor=registrar_user
    )
    html = registrar.get(URL).content.decode()
    main = html.split("<main", 1)[1].split("</main>", 1)[0]  # the page, not the header
    assert 'method="post"' not in main
    assert 'method="get"' in main
    assert registrar.post(URL).status_code == 405
    assert registrar.delete(URL).status_code == 405


# -- the logs cannot be edited ---------------------------------------------------------


def _log_rows(actor):
    event = audit_record(
        action="view", object_type="registration.guardian", object_id="1", actor=actor
    )
    guardian = Guardian.objects.get(sourced_id="par-002")
    transition = transition_log(
        obj=guardian, transition="test", source="a", target="b", actor=actor
    )
    return {"auditevent": event, "transitionlog": transition}


@pytest.mark.parametrize("who", ["registrar", "superuser"])
def test_nobody_can_add_change_or_delete_log_rows_in_the_admin(
    client, registrar_user, superuser, who
):
    user = registrar_user if who == "registrar" else superuser
    sign_in(client, user)
    rows = _log_rows(user)
    for model, row in rows.items():
        change = reverse(f"admin:workflow_{model}_change", args=[row.pk])
        delete = reverse(f"admin:workflow_{model}_delete", args=[row.pk])
        changelist = reverse(f"admin:workflow_{model}_changelist")

        assert client.get(change).status_code == 200, model  # readable
        assert client.get(changelist).status_code == 200, model
        assert client.post(change, {"object_repr": "edited", "action": "delete"}).status_code == 403
        assert client.get(delete).status_code == 403, model
        assert client.post(delete, {"post": "yes"}).status_code == 403, model
        assert client.post(reverse(f"admin:workflow_{model}_add"), {}).status_code == 403
        client.post(
            changelist, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
        )
        assert 'value="delete_selected"' not in client.get(changelist).content.decode()

    assert AuditEvent.objects.filter(pk=rows["auditevent"].pk, object_repr="").exists()
    assert TransitionLog.objects.filter(pk=rows["transitionlog"].pk, target="b").exists()


def test_the_log_admins_deny_every_write_permission_even_to_superusers(superuser, rf):
    from django.contrib import admin

    request = rf.get("/admin/")
    request.user = superuser
    for model in (AuditEvent, TransitionLog):
        model_admin = admin.site._registry[model]
        assert not model_admin.has_add_permission(request), model
        assert not model_admin.has_change_permission(request), model
        assert not model_admin.has_delete_permission(request), model
        assert model_admin.has_view_permission(request), model


def test_no_staff_url_offers_deletion():
    """No staff URL deletes or names a deletion; ``tests/test_staff_url_matrix.py``
    also checks that no staff page, for any role, holds a form posting to one."""
    for route, name in staff_routes():
        text = f"{route} {name}".lower()
        assert "delete" not in text and "remove" not in text, route


# -- staff reads of a child's record are logged ----------------------------------------


def test_the_guardian_page_logs_a_read_of_each_child_shown(client, office_user):
    sign_in(client, office_user)
    jose = Guardian.objects.get(sourced_id="par-002")

    assert client.get(reverse("staff_guardian", args=[jose.pk])).status_code == 200

    read = set(
        AuditEvent.objects.filter(
            actor=office_user, action="view", object_type="registration.student"
        ).values_list("object_id", flat=True)
    )
    children = Student.objects.filter(sourced_id__in=["stu-001", "stu-002"])
    assert read == {str(s.pk) for s in children}
    assert AuditEvent.objects.filter(
        actor=office_user,
        action="view",
        object_type="registration.guardian",
        object_id=str(jose.pk),
    ).exists()


def test_the_children_read_on_the_guardian_page_show_under_the_student(
    client, office_user, registrar_user
):
    sign_in(client, office_user)
    jose = Guardian.objects.get(sourced_id="par-002")
    client.get(reverse("staff_guardian", args=[jose.pk]))
    client.logout()
    sign_in(client, registrar_user)

    html = client.get(URL, {"student": "stu-002", "actor": "carmen"}).content.decode()

    assert "1 event" in html
    assert "Mateo" in html


def test_an_earlier_version_opened_in_the_admin_is_logged(client, registrar_user):
    sign_in(client, registrar_user)
    sofia = Student.objects.get(sourced_id="stu-001")
    version = sofia.history.latest()

    url = reverse("admin:registration_student_simple_history", args=[sofia.pk, version.history_id])
    assert client.get(url).status_code == 200

    event = AuditEvent.objects.filter(
        actor=registrar_user, object_type="registration.student", object_id=str(sofia.pk)
    ).latest("id")
    assert event.detail == {"history_version": str(version.history_id)}


def test_a_look_up_field_search_in_the_admin_is_logged(client, registrar_user):
    sign_in(client, registrar_user)
    url = reverse("admin:autocomplete")
    response = client.get(
        url,
        {
            "term": "sofía",
            "app_label": "registration",
            "model_name": "householdstudent",
            "field_name": "student",
        },
    )
    assert response.status_code == 200
    assert "Sof" in response.content.decode()

    event = AuditEvent.objects.filter(actor=registrar_user, action="list").latest("id")
    assert event.object_type == "registration.student"
    assert event.detail == {"query": "sofía", "autocomplete": True}
