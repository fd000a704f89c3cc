"""A guardian of the household without education rights for a child sees that
child's step read-only; walking past it must not touch what a guardian with rights
saved there."""

from __future__ import annotations

from django.test import Client

from registration.models import Guardian, StudentGuardian
from registration.services import guardian_account_create
from tests.conftest import PASSWORD, sign_in
from tests.workflow.test_wizard import _jose_answers, _registration, _student, _walk_to
from tests.workflow.wizard_walk import WizardWalk
from workflow.models import RegistrationStep


def test_walking_past_a_read_only_child_keeps_the_decision_saved_there(guardian_user, campaign):
    sofia = _student("stu-001")
    maria = Guardian.objects.get(sourced_id="par-001")
    StudentGuardian.objects.filter(guardian=maria, student=sofia).update(has_education_rights=False)
    registration = _registration("hh-001")
    step = f"child-{sofia.pk}"

    jose_client = Client()
    sign_in(jose_client, guardian_user)
    jose = WizardWalk(jose_client, registration)
    page = _walk_to(jose, step, _jose_answers())
    jose.submit(page, {"allergies": "Peanuts"})
    saved = RegistrationStep.objects.get(registration=registration, step=step)
    assert saved.answers["returning"] is True and saved.answers["health"]["allergies"] == "Peanuts"

    maria_user = guardian_account_create(
        guardian=maria, email="maria.nunez@example.com", password=PASSWORD
    )
    maria_client = Client()
    sign_in(maria_client, maria_user)
    walk = WizardWalk(maria_client, registration)
    page = walk.open(step)
    assert page.step == step, page.url
    assert "decision" not in {n.removeprefix(f"{step}-") for n in page.fields}
    walk.submit(page)
    kept = RegistrationStep.objects.get(registration=registration, step=step)
    assert kept.answers == saved.answers and kept.data == saved.data
