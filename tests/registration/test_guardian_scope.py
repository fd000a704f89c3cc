"""Office staff see a guardian's households only where a child attends their schools."""

from __future__ import annotations

from django.urls import reverse

from registration.models import Guardian, School, Student
from tests.conftest import sign_in


def test_a_guardians_other_household_stays_hidden_from_another_schools_office(
    client, office_user, other_school_office_user
):
    # Ngozi raises Chidi (hh-004, Las Lomas) and is a grandparent in hh-005, whose
    # Amara now attends Mission Ridge High.
    Student.objects.filter(sourced_id="stu-006").update(
        school=School.objects.get(sourced_id="sch-high")
    )
    ngozi = Guardian.objects.get(sourced_id="par-005")
    url = reverse("staff_guardian", args=[ngozi.pk])

    sign_in(client, office_user)
    html = client.get(url).content.decode()
    assert "Chidi Okafor" in html and "780 El Dorado Ave" in html
    assert "Amara" not in html and "781 El Dorado Ave" not in html

    client.logout()
    sign_in(client, other_school_office_user)
    html = client.get(url).content.decode()
    assert "Amara Okafor" in html
    assert "Chidi" not in html and "780 El Dorado Ave" not in html
