"""The proof upload of the wizard's address step, through HTTP, in each language: the
browser's own input ("Choose Files", "No file chosen" in the browser's language)
stays in the page for the keyboard, a tap and the phone's camera, under a label
drawn as a button in the page's language; a script of our own (no inline script:
the Content Security Policy forbids it) names the files chosen in a live region.

José's household (hh-001).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext

from tests.conftest import sign_in
from tests.workflow.test_wizard import _jose_answers, _registration, _walk_to
from tests.workflow.wizard_walk import WizardWalk

INPUT_ID = "id_address-proofs"


class Elements(HTMLParser):
    """Every element's tag, attributes and text (up to its first child)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str], list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}, []))

    def handle_data(self, data: str) -> None:
        if self.found:
            self.found[-1][2].append(data)

    def one(self, tag: str, **wanted: str) -> tuple[dict[str, str], str]:
        matches = [
            (attrs, "".join(text).strip())
            for name, attrs, text in self.found
            if name == tag and all(attrs.get(k.replace("_", "-")) == v for k, v in wanted.items())
        ]
        assert len(matches) == 1, (tag, wanted, matches)
        return matches[0]


def address_step(client, language: str) -> str:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    page = _walk_to(WizardWalk(client, _registration("hh-001")), "address", _jose_answers())
    return page.html


@pytest.mark.parametrize("language", ["en", "es", "zh-hans"])
def test_the_proof_field_has_a_button_in_the_pages_language(
    client, guardian_user, campaign, language
):
    sign_in(client, guardian_user)
    html = address_step(client, language)
    page = Elements()
    page.feed(html)

    # The real input: multiple files, PDF, JPEG or PNG, and no "capture", so that a
    # phone offers its camera and its files alike.
    field, _text = page.one("input", id=INPUT_ID)
    assert field["type"] == "file" and "multiple" in field
    assert set(field["accept"].split(",")) == {"application/pdf", "image/jpeg", "image/png"}
    assert "capture" not in field
    assert "hidden" not in field and "tabindex" not in field and "disabled" not in field
    assert f"{INPUT_ID}_helptext" in field["aria-describedby"].split()

    with translation.override(language):
        heading, button, none = (
            gettext("Proofs of your new address"),
            gettext("Choose files"),
            gettext("No file chosen"),
        )
    labels = [
        (attrs, "".join(text).strip())
        for tag, attrs, text in page.found
        if tag == "label" and attrs.get("for") == INPUT_ID
    ]
    assert [text for _attrs, text in labels] == [heading, button]
    assert "button" in labels[1][0]["class"].split()

    # Where the script names the files chosen: read out as it changes.
    chosen, _text = page.one("span", id=f"{INPUT_ID}_chosen")
    assert chosen["aria-live"] == "polite"
    assert chosen["data-none"] == none
    assert re.search(r'<script src="/static/js/file-picker\.js" defer></script>', html)
    assert "<script>" not in html
