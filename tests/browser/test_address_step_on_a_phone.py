"""The wizard's address step on a 360 px phone, in English, Spanish and Chinese: every
choice of the visit drop-down shows whole when chosen (none cut off as "Ir sin cita
durante el horario d…"), and the proof upload's button, in the page's language, shows
its focus when Tab reaches the file input under it and names the file chosen.
Without JavaScript the browser's own input shows, and sends the proof.

José's household (hh-001) visits Las Lomas Elementary, which takes visits every day.
"""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation
from django.utils.translation import gettext

from registration.models import School
from tests.browser.sign_in import guardian_sign_in
from tests.browser.walk import PHONE, tab_to
from tests.conftest import sign_in
from tests.workflow.test_wizard import PDF, _jose_answers, _registration, _walk_to
from tests.workflow.wizard_walk import WizardWalk
from workflow.models import AddressChangeRequest
from workflow.services import visit_schedule_save

pytestmark = pytest.mark.browser

# Whether the select, as wide as it is on the page, shows an option whole: a copy of
# it holding only that option, as wide as its widest option needs, is no wider.
OPTIONS_CUT = """(select) => {
  const cut = [];
  for (const option of Array.from(select.options)) {
    const copy = select.cloneNode(false);
    copy.removeAttribute('id');
    copy.style.width = 'auto';
    copy.appendChild(option.cloneNode(true));
    select.parentElement.appendChild(copy);
    if (copy.getBoundingClientRect().width > select.getBoundingClientRect().width) {
      cut.push(option.text);
    }
    copy.remove();
  }
  return cut;
}"""
FOCUS_DRAWN = """(el) => {
  const style = getComputedStyle(el);
  return (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0)
    || (style.boxShadow !== 'none' && style.boxShadow !== '');
}"""


@pytest.fixture
def at_the_address_step(sample_district, registrar_user, guardian_user, campaign) -> str:
    """Las Lomas's office hours, and José's wizard up to the address step (saved
    through HTTP); the step's address."""
    visit_schedule_save(
        school=School.objects.get(sourced_id="sch-elem"),
        hours=[(day, datetime.time(9), datetime.time(17)) for day in range(7)],
        slot_minutes=30,
        capacity=2,
        actor=registrar_user,
    )
    client = Client()
    sign_in(client, guardian_user)
    wizard = WizardWalk(client, _registration("hh-001"))
    assert _walk_to(wizard, "address", _jose_answers()).step == "address"
    return wizard.url("address")


def test_the_address_step_fits_a_phone_in_every_language(
    phone_page, live_server, guardian_user, at_the_address_step, tmp_path: Path
):
    page = phone_page
    guardian_sign_in(page, live_server, guardian_user)
    proof = tmp_path / "recibo-de-luz.pdf"
    proof.write_bytes(b"%PDF-1.4\n%%EOF\n")
    for language in ("en", "es", "zh-hans"):
        page.context.add_cookies(
            [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
        )
        page.goto(at_the_address_step)
        assert page.evaluate("document.documentElement.lang") == language
        page.locator('input[name="address-moved"][value="yes"]').check()
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        visit = page.locator('select[name="address-visit"]')
        assert visit.locator("option").count() > 14  # walking in, and times on many days
        assert visit.evaluate(OPTIONS_CUT) == [], language

        with translation.override(language):
            choose, none = gettext("Choose files"), gettext("No file chosen")
        button = page.locator("label.file-picker-button")
        chosen = page.locator("[data-file-chosen]")
        assert button.inner_text().strip() == choose
        assert chosen.inner_text().strip() == none
        upload = page.locator("#id_address-proofs")
        box, under = upload.bounding_box(), button.bounding_box()
        assert box == under and box["height"] >= 44  # a finger's target, over the label

        # Tab reaches the input itself, and the label drawn as its button shows it.
        page.locator('input[name="address-postal_code"]').focus()
        tab_to(page, upload)
        assert button.evaluate(FOCUS_DRAWN), f"no focus ring on the button in {language}"
        upload.set_input_files(str(proof))
        assert re.sub(r"\s+", " ", chosen.inner_text()).strip() == proof.name
        page.keyboard.press("Tab")
        assert not button.evaluate(FOCUS_DRAWN)


def test_without_javascript_the_browsers_own_input_sends_the_proof(
    browser, live_server, guardian_user, at_the_address_step, tmp_path: Path
):
    context = browser.new_context(
        base_url=live_server.url,
        locale="en-US",
        timezone_id=settings.TIME_ZONE,
        viewport=PHONE,
        java_script_enabled=False,
    )
    try:
        page = context.new_page()
        guardian_sign_in(page, live_server, guardian_user)
        page.goto(at_the_address_step)
        upload = page.locator("#id_address-proofs")
        assert upload.evaluate("el => getComputedStyle(el).opacity") == "1"
        assert not page.locator("label.file-picker-button").is_visible()
        assert not page.locator("[data-file-chosen]").is_visible()

        proof = tmp_path / "lease.pdf"
        proof.write_bytes(PDF)
        page.locator('input[name="address-moved"][value="yes"]').check()
        page.locator('input[name="address-street1"]').fill("88 Orchard Lane")
        page.locator('input[name="address-city"]').fill("Riverside")
        page.locator('input[name="address-postal_code"]').fill("95210")
        upload.set_input_files(str(proof))
        page.locator('.actions button[type="submit"]').click()
        page.wait_for_url(re.compile(r"/emergency/$"))
        request = AddressChangeRequest.objects.get(household__sourced_id="hh-001")
        assert [p.original_name for p in request.proofs.all()] == ["lease.pdf"]
    finally:
        context.close()
