"""Browser tests: Playwright drives Debian's Chromium (``/usr/bin/chromium``, or
``$CHROMIUM``) against the app served by pytest-django's ``live_server``.

Each xdist worker starts its own live server on a free port, and the database is
a transactional one (the server thread must see what the test wrote), emptied
after each test. Mark every browser test ``@pytest.mark.browser``::

    pytestmark = pytest.mark.browser

    def test_something(browser_page, live_server, office_user):
        staff_sign_in(browser_page, live_server, office_user)
        browser_page.goto(live_server.url + reverse("staff_guardians"))

``browser_page`` opens pages relative to the live server (``page.goto("/staff/")``
works); ``browser`` gives the Chromium instance for a test that needs a second,
separate person (``browser.new_context()``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
TIMEOUT_MS = 20_000


@pytest.fixture
def browser(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Headless Chromium, for one test."""
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM):
        pytest.fail(f"No Chromium at {CHROMIUM}: `make system-test` installs Debian's chromium")
    # Playwright's synchronous API runs an event loop in this thread; the test's own
    # database reads (a TOTP secret, a record to check) are still synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield chromium
        finally:
            chromium.close()
            # Database work the test did while Playwright ran used connections of
            # Playwright's context, not the test's: close them, or PostgreSQL keeps a
            # session open and the test database cannot be dropped.
            connections.close_all()


@pytest.fixture
def browser_context(browser: Any, live_server: Any) -> Iterator[Any]:
    """A fresh browser profile (no cookies), in English, in the district's time zone."""
    context = browser.new_context(
        base_url=live_server.url, locale="en-US", timezone_id=settings.TIME_ZONE
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


def _page_watched(context: Any) -> Iterator[Any]:
    """A tab of ``context``; the test fails if any page it opened broke the Content
    Security Policy (an inline script or style, a resource from elsewhere)."""
    page = context.new_page()
    refused: list[str] = []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    yield page
    assert refused == [], refused


@pytest.fixture
def browser_page(browser_context: Any) -> Iterator[Any]:
    """A tab in ``browser_context``, watched for Content Security Policy breaks."""
    yield from _page_watched(browser_context)


PHONE = {"width": 360, "height": 740}


@pytest.fixture
def phone_page(browser: Any, live_server: Any) -> Iterator[Any]:
    """A tab on a 360 × 740 touch phone (a fresh profile, in English, in the district's
    time zone), watched for Content Security Policy breaks like ``browser_page``."""
    context = browser.new_context(
        base_url=live_server.url,
        locale="en-US",
        timezone_id=settings.TIME_ZONE,
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield from _page_watched(context)
    finally:
        context.close()
