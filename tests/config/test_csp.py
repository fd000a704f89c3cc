"""Every page carries a Content Security Policy with no inline script or style."""

from __future__ import annotations

from django.urls import reverse

from tests.conftest import sign_in


def _policy(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in header.split("; ")}


def test_guardian_and_staff_pages_allow_only_this_site(client, guardian_user, office_user):
    for response in (client.get(reverse("account_login")), client.get("/healthz")):
        policy = _policy(response)
        assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
        assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
        assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    sign_in(client, guardian_user)
    policy = _policy(client.get(reverse("guardian_home")))
    # The cart's POST is redirected to Stripe's hosted page.
    assert policy["form-action"] == "'self' https://checkout.stripe.com"


def test_no_served_template_has_an_inline_script_or_style():
    from pathlib import Path

    from django.conf import settings

    # PDF templates are rendered by WeasyPrint, never served: they may style inline.
    served = [
        path
        for path in Path(settings.BASE_DIR, "templates").rglob("*.html")
        if "documents" not in path.parts and path.name != "month_report.html"
    ]
    offending = []
    for path in served:
        html = path.read_text(encoding="utf-8")
        if "<script>" in html or "<script type" in html or "<style" in html:
            offending.append(str(path))
        if " style=" in html or " onclick=" in html or " onsubmit=" in html:
            offending.append(str(path))
    assert offending == []
