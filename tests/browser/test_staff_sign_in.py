"""A member of office staff signs in through a real browser: email and password,
then the code from their authenticator app, and lands on the staff home."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.browser.sign_in import staff_sign_in

pytestmark = pytest.mark.browser


def test_office_staff_sign_in_with_their_authenticator_and_land_on_the_staff_home(
    browser_page, live_server, office_user
):
    staff_sign_in(browser_page, live_server, office_user)

    assert browser_page.url == live_server.url + reverse("staff_home")
    nav = browser_page.get_by_role("navigation", name="Staff")
    assert nav.get_by_role("link", name="Guardians").is_visible()
    # Office staff work their schools' queues; the registrar's pages are not offered.
    assert nav.get_by_role("link", name="Campaigns").count() == 0
    assert browser_page.locator("h1").first.is_visible()
