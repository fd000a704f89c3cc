"""Signing in through the browser, as people do: the sign-in form, then the
authenticator code for staff. Reused by every browser test."""

from __future__ import annotations

import re
from typing import Any

from django.urls import reverse

from registration.mfa import totp_code, totp_secret
from tests.conftest import PASSWORD


def sign_in_form(page: Any, live_server: Any, email: str, password: str = PASSWORD) -> None:
    """Open the sign-in page and submit an email address and password."""
    page.goto(live_server.url + reverse("account_login"))
    form = page.locator(f'form[action="{reverse("account_login")}"]')
    form.locator('input[name="login"]').fill(email)
    form.locator('input[name="password"]').fill(password)
    form.locator('button[type="submit"]').click()


def staff_sign_in(page: Any, live_server: Any, user: Any, password: str = PASSWORD) -> None:
    """Sign a member of staff in and answer the authenticator step with the current
    code; returns on the staff home page. Once per user and test: a code is
    accepted only once."""
    sign_in_form(page, live_server, user.email, password)
    page.wait_for_url(re.compile(re.escape(reverse("mfa_authenticate"))))
    page.locator('input[name="code"]').fill(totp_code(totp_secret(user)))
    page.locator('input[name="code"]').press("Enter")
    page.wait_for_url(live_server.url + reverse("staff_home"))


def guardian_sign_in(page: Any, live_server: Any, user: Any, password: str = PASSWORD) -> None:
    """Sign a guardian in; returns on their home page."""
    sign_in_form(page, live_server, user.email, password)
    page.wait_for_url(live_server.url + reverse("guardian_home"))
