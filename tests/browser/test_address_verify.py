"""Office staff verify a family's new address in a real browser: sign in with the
second factor, open the request from the queue, record the proofs seen at the
visit, verify, and the household has its new address."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.urls import reverse

from registration.models import Guardian, Household
from tests.browser.sign_in import staff_sign_in
from workflow.models import AddressChangeRequest, AddressProof
from workflow.services import _apply

pytestmark = pytest.mark.browser


@pytest.fixture
def awaiting_visit(sample_district):
    """José's household (hh-001, Sofía at Las Lomas Elementary) moved and sent a lease."""
    household = Household.objects.get(sourced_id="hh-001")
    request = AddressChangeRequest.objects.create(
        household=household,
        requested_by=Guardian.objects.get(sourced_id="par-002"),
        street1="77 Magnolia Way",
        city="Riverside",
        state_code="CA",
        postal_code="95207",
    )
    proof = AddressProof(
        request=request,
        original_name="lease.pdf",
        content_type="application/pdf",
        size=12,
        sha256="0" * 64,
    )
    proof.file.save("lease.pdf", ContentFile(b"%PDF-1.4 lease"), save=False)
    proof.save()
    with transaction.atomic():
        _apply(request, "await_visit", actor=None, actor_label="test")
    return request


def test_office_staff_verify_an_address_and_the_household_moves(
    browser_page, live_server, office_user, awaiting_visit
):
    page = browser_page
    staff_sign_in(page, live_server, office_user)

    page.goto(live_server.url + reverse("staff_addresses"))
    page.get_by_role("link", name="hh-001", exact=True).click()
    page.wait_for_url(live_server.url + reverse("staff_address", args=[awaiting_visit.pk]))
    assert page.get_by_text("77 Magnolia Way").first.is_visible()

    page.get_by_label("Lease or rental agreement").check()
    page.get_by_label("Utility bill (gas, electricity, water)").check()
    page.get_by_role("button", name="Record the visit").click()
    page.get_by_role("button", name="Verify the new address").click()
    page.wait_for_load_state()

    household = Household.objects.get(sourced_id="hh-001")
    assert (household.street1, household.postal_code) == ("77 Magnolia Way", "95207")
    awaiting_visit.refresh_from_db()
    assert awaiting_visit.state == AddressChangeRequest.State.VERIFIED
    assert sorted(awaiting_visit.proofs_seen) == ["lease", "utility"]
