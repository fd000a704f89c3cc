"""A family's whole walk through the product in a real browser, as shared steps:
activation with a code from ``issue_activation_codes``, the sign-in and its email
link, every step of the re-registration wizard, the payment on the local TEST
checkout, and the confirmation PDF.

The same walk is taken with three pairs of hands: a mouse on a desktop (``Mouse``),
a finger on a phone (``Touch``) and the keyboard alone (``Keyboard``: Tab, Shift+Tab,
Enter, Space, the arrow keys and typing, never a click). Every text a walk looks for
is read from the translation catalogues in the walk's language, so a Spanish walk
finds its way only through Spanish pages.

    walk = FamilyWalk(page, Keyboard(page), language="en")
    walk.activate(code, birth_date="2021-06-30")
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from django.core import mail
from django.core.management import call_command
from django.utils import translation
from django.utils.translation import gettext
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from payments.money import money

REPOSITORY = Path(__file__).resolve().parents[2]
# Written by the walks and looked at by people (var/ is not in git).
SCREENSHOTS = REPOSITORY / "var" / "screenshots" / "wizard"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
TAB_LIMIT = 150  # presses before tab_to gives up


# -- what the walk needs from the district -------------------------------------------


def activation_code(sourced_id: str, folder: Path) -> str:
    """The code the district's ``issue_activation_codes`` run mails to one guardian,
    read from the mail-merge CSV it writes."""
    out = folder / "activation-codes.csv"
    call_command("issue_activation_codes", out=str(out), stdout=io.StringIO())
    with out.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["kind"] == "guardian" and row["sourced_id"] == sourced_id:
                return row["code"]
    raise AssertionError(f"issue_activation_codes wrote no code for {sourced_id}")


def lease_photo(folder: Path) -> Path:
    """A small real JPEG, as a phone camera hands it to the browser: a photo of a lease."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (360, 480), (250, 248, 240))
    draw = ImageDraw.Draw(image)
    draw.text((24, 24), "RESIDENTIAL LEASE AGREEMENT", fill=(20, 20, 20))
    for line in range(12):
        draw.line((24, 70 + 28 * line, 336, 70 + 28 * line), fill=(120, 120, 120), width=2)
    path = folder / "lease-photo.jpg"
    image.save(path, "JPEG", quality=80)
    return path


def emails_to(address: str) -> list[Any]:
    return [message for message in mail.outbox if address in message.to]


# -- hands: how a person acts on a page ----------------------------------------------


class Hands(Protocol):
    page: Any

    def fill(self, target: Any, text: str) -> None: ...

    def set_checked(self, target: Any, checked: bool) -> None: ...

    def choose(self, target: Any) -> None:
        """Select one radio button of its group."""

    def select(self, target: Any, label: str) -> None:
        """Choose the option shown as ``label`` in a drop-down list."""

    def press(self, target: Any) -> None:
        """Activate a button or follow a link."""

    def upload(self, target: Any, path: Path) -> None:
        """Open the file input's chooser and pick ``path``."""


@dataclass
class Mouse:
    page: Any

    def fill(self, target: Any, text: str) -> None:
        target.fill(text)

    def set_checked(self, target: Any, checked: bool) -> None:
        target.set_checked(checked)

    def choose(self, target: Any) -> None:
        target.check()

    def select(self, target: Any, label: str) -> None:
        target.select_option(label=label)

    def press(self, target: Any) -> None:
        target.click()

    def upload(self, target: Any, path: Path) -> None:
        with self.page.expect_file_chooser() as chooser:
            target.click()
        chooser.value.set_files(str(path))


@dataclass
class Touch(Mouse):
    """A finger on a touch screen: taps, never clicks."""

    def set_checked(self, target: Any, checked: bool) -> None:
        if target.is_checked() != checked:
            target.tap()
        assert target.is_checked() == checked

    def choose(self, target: Any) -> None:
        target.tap()
        assert target.is_checked()

    def press(self, target: Any) -> None:
        target.tap()

    def upload(self, target: Any, path: Path) -> None:
        with self.page.expect_file_chooser() as chooser:
            target.tap()
        chooser.value.set_files(str(path))


_ACTIVE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return "(page)";
  const name = el.getAttribute("name") || el.id || (el.textContent || "").trim().slice(0, 40);
  return `${el.tagName.toLowerCase()} ${name}`;
}"""
_FOCUS_SHOWN = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  const shadow = style.boxShadow !== "" && style.boxShadow !== "none";
  return outline || shadow;
}"""


def focus_is_visible(page: Any) -> bool:
    """The focused element shows it: an outline or a box shadow."""
    return bool(page.evaluate(_FOCUS_SHOWN))


def tab_to(page: Any, predicate: Any, *, limit: int = TAB_LIMIT) -> None:
    """Press Tab until the focused element matches ``predicate`` (a Locator, or the
    source of a JavaScript function of the element), and check that the focus is
    visible there. Shift+Tab when a Locator's element comes before the focus."""
    if isinstance(predicate, str):
        handle = None
        matches = f"() => ({predicate})(document.activeElement)"
        key = "Tab"
    else:
        handle = predicate.element_handle()
        matches = ""
        backwards = handle.evaluate(
            "el => { const active = document.activeElement;"
            " return !!active && active !== document.body && active !== el"
            " && !!(el.compareDocumentPosition(active) & Node.DOCUMENT_POSITION_FOLLOWING); }"
        )
        key = "Shift+Tab" if backwards else "Tab"
    stops: list[str] = []
    for _press in range(limit):
        found = (
            handle.evaluate("el => el === document.activeElement")
            if handle is not None
            else page.evaluate(matches)
        )
        if found:
            break
        page.keyboard.press(key)
        stops.append(page.evaluate(_ACTIVE))
    else:
        raise AssertionError(
            f"{limit} presses of {key} on {page.url} never reached {predicate}; "
            f"the last stops: {stops[-12:]}"
        )
    assert focus_is_visible(page), f"no visible focus on {page.evaluate(_ACTIVE)} at {page.url}"


@dataclass
class Keyboard:
    """The keyboard alone: focus moves only with Tab and Shift+Tab, and every action
    is a key press or typing. Locators only say where the focus must arrive."""

    page: Any

    def fill(self, target: Any, text: str) -> None:
        tab_to(self.page, target)
        keyboard = self.page.keyboard
        if target.get_attribute("type") == "date":
            # Chromium's date field in the en-US locale: month, day, year typed in turn.
            year, month, day = text.split("-")
            keyboard.type(f"{month}{day}{year}")
        else:
            keyboard.press("ControlOrMeta+A")
            keyboard.press("Delete")
            keyboard.type(text)
        assert target.input_value() == text, (
            f"typed {text!r}, the field holds {target.input_value()!r}"
        )

    def set_checked(self, target: Any, checked: bool) -> None:
        tab_to(self.page, target)
        if target.is_checked() != checked:
            self.page.keyboard.press("Space")
        assert target.is_checked() == checked

    def choose(self, target: Any) -> None:
        name = target.get_attribute("name")
        # Tab enters a radio group once, at its checked button; the arrows move within.
        tab_to(self.page, f"el => el.type === 'radio' && el.name === {name!r}")
        for _press in range(12):
            if target.is_checked():
                break
            self.page.keyboard.press("ArrowDown")
        assert target.is_checked(), f"the arrow keys never reached {target}"
        assert focus_is_visible(self.page)

    def select(self, target: Any, label: str) -> None:
        tab_to(self.page, target)
        shown = "el => el.options[el.selectedIndex] ? el.options[el.selectedIndex].text : ''"
        labels = target.evaluate("el => Array.from(el.options).map(o => o.text)")
        assert label in labels, f"{label!r} is not among {labels}"
        key = (
            "ArrowDown" if labels.index(label) > labels.index(target.evaluate(shown)) else "ArrowUp"
        )
        for _press in range(len(labels)):
            if target.evaluate(shown) == label:
                break
            self.page.keyboard.press(key)
        assert target.evaluate(shown) == label

    def press(self, target: Any) -> None:
        tab_to(self.page, target)
        self.page.keyboard.press("Enter")

    def __post_init__(self) -> None:
        # Listening from the start turns Chromium's file-chooser interception on long
        # before the first upload: turned on inside `expect_file_chooser`, it races the
        # key press, and a chooser that opens first is cancelled unseen.
        self.page.on("filechooser", lambda _chooser: None)

    def upload(self, target: Any, path: Path) -> None:
        tab_to(self.page, target)
        for _attempt in range(3):
            try:
                with self.page.expect_file_chooser(timeout=8_000) as chooser:
                    self.page.keyboard.press("Space")
            except PlaywrightTimeoutError:
                # A key press lost on a loaded machine is pressed again; the focus
                # must still be on the field, so the walk stays keyboard-only.
                assert target.evaluate("el => el === document.activeElement")
                continue
            chooser.value.set_files(str(path))
            return
        raise AssertionError("Space on the focused file field never opened the file chooser")


# -- the walk ------------------------------------------------------------------------


@dataclass
class Child:
    full_name: str
    allergies: str = ""
    consents: tuple[str, ...] = ()  # labels of the permissions to give


@dataclass
class Family:
    """Who walks, and what they change on the way."""

    sourced_id: str
    given_name: str
    full_name: str
    birth_date: str  # of one of the children, as the activation page asks
    email: str
    children: list[Child]
    guardians: list[str]  # the household's parents and guardians, as the wizard lists them
    new_mobile: str
    new_street: str
    emergency_contact: tuple[str, str, str] | None = None  # name, relationship, phone
    password: str = "a-long-walk-password"


@dataclass
class FamilyWalk:
    page: Any
    hands: Hands
    language: str = "en"
    phone: bool = False  # every page checked at 360 px
    screenshots: Path | None = None  # each wizard step shot at 360 px, full page
    pages: list[str] = field(default_factory=list)
    _shots: int = 0
    _children_seen: list[str] = field(default_factory=list)

    # -- text and pages --------------------------------------------------------------

    def t(self, msgid: str, **values: Any) -> str:
        """``msgid`` as the walk's language shows it; a Spanish walk fails on a
        text with no Spanish."""
        with translation.override(self.language):
            text = gettext(msgid)
        if self.language != "en":
            assert text != msgid, f"no {self.language} translation of {msgid!r}"
        return text % values if values else text

    def money(self, cents: int) -> str:
        with translation.override(self.language):
            return money(cents)

    def arrive(self, path_pattern: str) -> None:
        """Wait for the next page (another address than the last one checked, one
        matching ``path_pattern``), then check it as every page of the walk is checked."""
        pattern, left = re.compile(path_pattern), self.pages[-1] if self.pages else ""
        self.page.wait_for_url(lambda url: url != left and pattern.search(url) is not None)
        self.page.wait_for_load_state()
        self.check_page()

    def check_page(self, language: str | None = None) -> None:
        page = self.page
        self.pages.append(page.url)
        lang = page.evaluate("document.documentElement.lang")
        assert lang == (language or self.language), f"{page.url} is in {lang!r}"
        assert page.locator("h1").count() >= 1, f"{page.url} has no heading"
        if self.phone:
            self._fits(PHONE["width"])

    def _fits(self, width: int) -> None:
        scroll_width = self.page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{self.page.url} is {scroll_width} px wide"

    def button(self, name: str, *, within: Any = None) -> Any:
        return (within or self.page).get_by_role("button", name=name, exact=True)

    def link(self, name: str) -> Any:
        return self.page.get_by_role("link", name=name, exact=True)

    def label(self, text: str, *, within: Any = None) -> Any:
        """The field labelled ``text`` (with "(optional)" after it, or not)."""
        optional = re.escape(self.t("optional"))
        name = re.compile(f"^\\s*{re.escape(text)}(\\s+\\({optional}\\))?\\s*$")
        return (within or self.page).get_by_label(name)

    def checkbox(self, text: str, *, within: Any = None) -> Any:
        return (within or self.page).get_by_role("checkbox", name=text, exact=True)

    def radio(self, text: str, *, within: Any = None) -> Any:
        return (within or self.page).get_by_role("radio", name=text, exact=True)

    # -- activation and sign-in ------------------------------------------------------

    def activate(self, code: str, birth_date: str) -> None:
        """The activation page, in the walk's language: a walk in another language
        than the browser's switches with the page's own language buttons first."""
        page = self.page
        page.goto("/activate/")
        page.wait_for_load_state()
        browser_language = page.evaluate("document.documentElement.lang")
        self.check_page(language=browser_language)
        if browser_language != self.language:
            with translation.override(self.language):
                name = translation.get_language_info(self.language)["name_local"]
            self.hands.press(self.button(name[:1].upper() + name[1:]))
            # The same address again, in the chosen language.
            # A locator waits without evaluating a string of JavaScript in the page,
            # which the Content Security Policy (no unsafe-eval) refuses.
            expect(page.locator("html")).to_have_attribute("lang", self.language)
            page.wait_for_load_state()
            self.check_page()
        assert page.get_by_role("heading", level=1).inner_text() == self.t("Activate your account")
        self.hands.fill(self.label(self.t("Activation code")), code)
        self.hands.fill(self.label(self.t("Date of birth of one of your children")), birth_date)
        self.hands.press(self.button(self.t("Continue")))
        self.arrive(r"/activate/account/$")

    def create_sign_in(self, family: Family) -> None:
        """The new sign-in: email, password twice and the language for what is sent."""
        self.hands.fill(self.label(self.t("Email address")), family.email)
        self.hands.fill(self.label(self.t("Password")), family.password)
        self.hands.fill(self.label(self.t("Password again")), family.password)
        with translation.override(self.language):
            name = translation.get_language_info(self.language)["name_local"]
        languages = self.page.get_by_role("group", name=self.t("Language for emails and letters"))
        self.hands.choose(self.radio(name.capitalize(), within=languages))
        self.hands.press(self.button(self.t("Create my sign-in")))
        self.arrive(r"/accounts/confirm-email/$")

    def confirm_email(self, family: Family) -> None:
        """Follow the link of the email that checks the address, then confirm."""
        (message,) = emails_to(family.email)
        link = re.search(r"https?://\S+/accounts/confirm-email/\S+/", message.body)
        assert link, message.body
        self.page.goto(link.group(0))
        self.arrive(r"/accounts/confirm-email/\S+/$")
        self.hands.press(self.button(self.t("Confirm")))
        self.arrive(r"/home/$")
        heading = self.page.get_by_role("heading", level=1).inner_text()
        assert heading == self.t("Hello, %(name)s", name=family.given_name)

    # -- the wizard ------------------------------------------------------------------

    def start_registration(self) -> None:
        self.hands.press(self.link(self.t("Start registration")))
        self.arrive_at_step("contacts")

    def arrive_at_step(self, step: str) -> None:
        pattern = re.escape(step) + (r"\d+" if step.endswith("-") else "")
        self.arrive(rf"/register/\d+/{pattern}/")
        page = self.page
        label = page.locator("#progress-label")
        progress = page.locator(".wizard-progress progress")
        assert label.is_visible() and progress.is_visible(), f"no progress on {page.url}"
        number, count = progress.get_attribute("value"), progress.get_attribute("max")
        assert label.inner_text() == self.t(
            "Step %(number)s of %(count)s", number=number, count=count
        )
        if self.phone:
            box = progress.bounding_box()
            assert box and box["y"] + box["height"] <= PHONE["height"], "progress below the fold"
            assert box["x"] + box["width"] <= PHONE["width"]
        self.shoot(self._step_name(step))

    def _step_name(self, step: str) -> str:
        if not step.startswith("child"):
            return step
        current = self.page.url.rstrip("/").rsplit("/", 1)[-1]
        if current not in self._children_seen:
            self._children_seen.append(current)
        return f"child-{self._children_seen.index(current) + 1}"

    def shoot(self, name: str) -> None:
        """The whole page at 360 px, into the walk's screenshot folder."""
        if self.screenshots is None:
            return
        page = self.page
        if self._shots == 0:
            shutil.rmtree(self.screenshots, ignore_errors=True)
            self.screenshots.mkdir(parents=True)
        self._shots += 1
        viewport = page.viewport_size
        if viewport != PHONE:
            page.set_viewport_size(PHONE)
            self._fits(PHONE["width"])
        page.screenshot(
            path=str(self.screenshots / f"{self._shots:02d}-{name}.png"), full_page=True
        )
        if viewport != PHONE:
            page.set_viewport_size(viewport)

    def save_and_continue(self, next_step: str) -> None:
        self.hands.press(self.button(self.t("Save and continue")))
        self.arrive_at_step(next_step)

    def step_contacts(self, family: Family) -> None:
        """A new mobile number for the guardian who walks."""
        assert self.page.get_by_role("heading", level=1).inner_text() == self.t(
            "Parents' and guardians' contacts"
        )
        for name in family.guardians:
            assert self.page.get_by_role("group", name=name, exact=True).is_visible()
        own = self.page.get_by_role("group", name=family.full_name, exact=True)
        self.hands.fill(self.label(self.t("Mobile phone"), within=own), family.new_mobile)
        self.save_and_continue("preferences")

    def step_preferences(self, family: Family) -> None:
        """Attendance messages by text message too."""
        own = self.page.get_by_role("group", name=family.full_name, exact=True)
        attendance = own.get_by_role("group", name=self.t("Attendance"), exact=True)
        self.hands.set_checked(self.checkbox(self.t("Text message"), within=attendance), True)
        self.save_and_continue("address")

    def step_address(self, family: Family, proof: Path) -> None:
        """ "We have moved": the new address, a photo of the lease from the phone's
        camera, and a walk-in visit to the school office."""
        self.hands.choose(self.radio(self.t("We have moved")))
        self.hands.fill(self.label(self.t("Street address")), family.new_street)
        self.hands.fill(self.label(self.t("City")), "Riverside")
        self.hands.fill(self.label(self.t("ZIP code")), "95207")
        upload = self.label(self.t("Proofs of your new address"))
        accepted = (upload.get_attribute("accept") or "").split(",")
        # Phone cameras hand the browser a JPEG (iPhones convert their HEIC photos
        # when the page asks for JPEG); a bare "capture" attribute would force the
        # camera and forbid choosing a PDF that is already on the phone.
        assert {"image/jpeg", "image/png", "application/pdf"} <= set(accepted), accepted
        assert upload.get_attribute("capture") is None
        assert upload.get_attribute("multiple") is not None
        # The browser's own input lies under a button in the page's language; it
        # still takes the focus, the key press or the tap.
        button = self.page.locator(f"label.file-picker-button[for='{upload.get_attribute('id')}']")
        assert button.inner_text().strip() == self.t("Choose files")
        self.hands.upload(upload, proof)
        assert upload.evaluate("el => Array.from(el.files).map(f => f.name)") == [proof.name]
        expect(self.page.locator("[data-file-chosen]")).to_have_text(proof.name)
        visit = self.label(self.t("When will you come to the school office?"))
        self.hands.select(visit, self.t("Walk in (no appointment)"))
        self.save_and_continue("emergency")

    def step_emergency(self, family: Family) -> None:
        """One more emergency contact, or "This is all still correct"."""
        if family.emergency_contact is None:
            self.hands.press(self.button(self.t("This is all still correct")))
            self.arrive_at_step("child-")
            return
        name, relationship, phone = family.emergency_contact
        # The first empty slot: the contacts on file stay.
        slots = [
            self.page.get_by_role("group", name=self.t("Contact %(number)s", number=number))
            for number in (1, 2, 3)
        ]
        slot = next(s for s in slots if not self.label(self.t("Name"), within=s).input_value())
        self.hands.fill(self.label(self.t("Name"), within=slot), name)
        self.hands.fill(
            self.label(self.t("Relationship to the children"), within=slot), relationship
        )
        self.hands.fill(self.label(self.t("Phone"), within=slot), phone)
        self.save_and_continue("child-")

    def step_children(self, family: Family) -> None:
        """One step per child, in the wizard's order: returning next year (as the
        district proposes), an allergy, permissions."""
        page = self.page
        waiting = {child.full_name: child for child in family.children}
        while waiting:
            heading = page.get_by_role("heading", level=1).inner_text()
            assert heading in waiting, f"{heading!r} is not one of {sorted(waiting)}"
            child = waiting.pop(heading)
            assert self.radio(self.t("Returning next year")).is_checked()
            if child.allergies:
                self.hands.fill(self.label(self.t("Allergies")), child.allergies)
            for consent in child.consents:
                box = self.checkbox(self.t(consent))
                self.beside_its_label(box)
                self.hands.set_checked(box, True)
            self.save_and_continue("child-" if waiting else "acknowledgements")

    def step_acknowledgements(self, titles: list[str], next_step: str) -> None:
        """Each document under its own title, accepted."""
        for title in titles:
            assert self.page.get_by_role("heading", level=2, name=title, exact=True).is_visible()
            box = self.checkbox(self.t("I have read and accept: %(title)s", title=title))
            self.beside_its_label(box)
            self.hands.set_checked(box, True)
        self.save_and_continue(next_step)

    def beside_its_label(self, box: Any) -> None:
        """A checkbox and its label share a line (a long label wraps beside the box)."""
        label = self.page.locator(f"label[for='{box.get_attribute('id')}']")
        box_area, label_area = box.bounding_box(), label.bounding_box()
        assert box_area and label_area
        assert label_area["x"] >= box_area["x"] + box_area["width"], "label not beside its box"
        assert label_area["y"] <= box_area["y"] + box_area["height"], "label below its box"

    def step_fees_pay(
        self, *, lunch: str, lunch_for: str, lunch_cents: int, total_cents: int
    ) -> None:
        """Pay every required fee and put money on one child's lunch account (the
        fee titled ``lunch`` in the walk's language), on the local TEST checkout, and
        come back to the fee step, paid."""
        page = self.page
        for box in page.locator("input[type=checkbox][name$='-line']").all():
            self.hands.set_checked(box, True)
        lunch = self.label(
            self.t("%(fee)s for %(name)s (amount in dollars)", fee=lunch, name=lunch_for)
        )
        self.hands.fill(lunch, f"{lunch_cents // 100}")
        total = page.locator("[data-cart-total]")
        assert total.inner_text() == self.money(total_cents)
        self.hands.press(self.button(self.t("Pay now")))
        self.arrive(r"/payments/test-checkout/")
        assert self.t("TEST — no real money") in " ".join(
            page.locator("main h1").text_content().split()
        )
        self.shoot("test-checkout")
        self.hands.press(self.button(self.t("Pay %(total)s (test)", total=self.money(total_cents))))
        self.arrive(r"/register/\d+/fees/\?checkout=\d+")
        heading = page.get_by_role("heading", name=self.t("Thank you: your payment is confirmed"))
        assert heading.is_visible()
        self.shoot("fees-paid")
        # Every fee is paid: no "Pay now" for nothing, one way on.
        assert self.button(self.t("Pay now")).count() == 0
        assert self.button(self.t("Continue without paying")).count() == 0
        self.hands.press(self.button(self.t("Continue")))
        self.arrive_at_step("review")

    def step_review_and_sign(self, family: Family) -> None:
        page = self.page
        assert page.locator(".review-row.changed").count() >= 3  # phone, address, health…
        assert family.new_street in page.locator("main").inner_text()
        self.hands.fill(self.label(self.t("Your full name")), family.full_name)
        self.hands.set_checked(
            self.checkbox(
                self.t(
                    "I confirm that the information above is true and complete, and that I "
                    "may register these children."
                )
            ),
            True,
        )
        self.hands.press(self.button(self.t("Sign and submit")))
        self.arrive(r"/registrations/\d+/$")
        self.shoot("submitted")
        message = self.t(
            "Thank you. Your registration is submitted; we have emailed you a confirmation."
        )
        assert page.get_by_text(message).is_visible()

    def download_confirmation(self) -> bytes:
        with self.page.expect_download() as download:
            self.hands.press(
                self.link(self.t("Confirmation, version %(version)s (PDF)", version=1))
            )
        path = download.value.path()
        return Path(path).read_bytes()
