"""A secondary student follows their re-registration but reaches none of it."""

from __future__ import annotations

from django.urls import reverse

from registration.models import Student, User
from workflow.models import Registration


def _student_client(client):
    student = Student.objects.get(sourced_id="stu-002")  # Mateo, grade 7, household hh-001
    student.user = User.objects.create_user(username="mateo", email="mateo@example.com")
    student.save(update_fields=["user"])
    client.force_login(student.user)
    return client


def test_a_student_sees_next_years_decision_read_only(campaign, client):
    client = _student_client(client)
    html = client.get(reverse("student_home")).content.decode()
    assert "Next year (2027–28)" in html
    assert "Not decided yet" in html
    assert "<form" not in html.split('id="main"')[1].split("</main>")[0]
    # The navigation offers only what a student may open.
    assert reverse("student_home") in html
    assert reverse("guardian_fees") not in html and reverse("guardian_home") not in html


def test_a_student_reaches_no_registration_page(campaign, client):
    client = _student_client(client)
    registration = Registration.objects.get(campaign=campaign, household__sourced_id="hh-001")
    for url in (
        reverse("registration_start"),
        reverse("registration_resume", args=[registration.pk]),
        reverse("registration_step", args=[registration.pk, "contacts"]),
        reverse("registration_status", args=[registration.pk]),
    ):
        assert client.get(url).status_code == 404, url
    assert (
        client.post(reverse("registration_step", args=[registration.pk, "contacts"])).status_code
        == 404
    )
    assert not registration.steps.exists()
