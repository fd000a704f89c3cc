"""Hostile input typed or uploaded by a family is refused at its field, or kept as
plain text that every page, email and PDF shows as text.

Text: each value of ``HOSTILE`` goes into every text field of the wizard (contacts,
address, emergency contacts, a child's step, the signature) through HTTP. Markup,
SQL, template syntax and emoji are stored as typed and shown escaped; values longer
than the field allows, NUL, other control characters and bidirectional overrides
are refused with a message at the field, and the form shows what was typed. Then
one family signs with hostile text in every free-text field, staff verify the
address and approve, and the text is checked on the family's pages, the staff
pages, every email and the confirmation PDF.

Uploads: a PDF with JavaScript or other actions, a zip file, a decompression-bomb
PNG, an SVG with a script, a disguised file, a path-traversal name, a polyglot
JPEG. Each is refused with a message at the field naming the file, or stored under
a name of our own and served only as an attachment that browsers must not sniff.

Staff text that reaches families gets the same values, with the same rule: the
comment of a registration returned to the family, the reason an address change
was rejected, the titles and descriptions of the fee catalog and of teachers'
field trips, finance's explanation of a mismatch. Refused, the form says so at the
field and nothing is written; kept, it is the text as typed on every page, in every
email (no header carries it) and in the receipt PDF (which has no script). Staff
search boxes and list filters answer every value with a page, never an error.

Signing in, the second factor, resetting a password and activating refuse the
values with their usual messages (or keep a password exactly as typed), answer with
a page or a redirect, and never write a password or a code into the log.
"""

from __future__ import annotations

import csv
import datetime
import html
import io
import logging
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from allauth.account.forms import default_token_generator
from django.core import mail
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.mail import BadHeaderError
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.http import int_to_base36
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    TextStringObject,
)

from finance.models import Payout, ReconciliationItem
from outbox.models import OutboxMessage
from payments.models import Checkout, Fee, LedgerEntry
from registration.models import (
    ActivationAttempt,
    ClassSection,
    Guardian,
    Student,
    User,
)
from tests.conftest import PASSWORD, sign_in
from tests.payments.test_local_checkout import use_local_stripe
from tests.workflow.test_review import _submit
from tests.workflow.wizard_walk import Page, PageParser, WizardWalk
from workflow.models import (
    AddressChangeRequest,
    AddressProof,
    AuditEvent,
    Registration,
    RegistrationStep,
    Submission,
    TransitionLog,
)
from workflow.services import activation_code_issue

JOSE = "José Ángel García"
MARIA_EMAIL = "maria.nunez@example.com"

HOSTILE: dict[str, str] = {
    "script": "<script>alert('x')</script>",
    "attribute": '"><img src=x onerror=alert(1)>',
    "sql": "Robert'); DROP TABLE registration_household;--",
    "sql_union": "' OR 1=1 UNION SELECT password FROM registration_user --",
    "template": "{{ request.user.password }}{% debug %}",
    "emoji": "Zoë 👩\u200d👩\u200d👧 😀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "ten_thousand": "A" * 10_000,
    "astral_flood": "𝔘" * 3_000,
    "nul": "Ana\x00María",
    "bidi": "Smith\u202egnp.exe",
    "escape": "Ana\x1b[2J\x07María",
    "newline": "Ana\r\nBcc: intruder@example.com",
}
# Kept as plain text in any free-text field; line breaks only in the multi-line ones.
STORED = {"script", "attribute", "sql", "sql_union", "template", "emoji"}
STORED_MULTILINE = STORED | {"newline"}


def _kept(kind: str, *, multiline: bool) -> bool:
    """Whether a free-text field keeps ``HOSTILE[kind]`` as typed (else refuses it)."""
    return kind in (STORED_MULTILINE if multiline else STORED)


@pytest.fixture(autouse=True)
def quick_password_hashes(settings):
    """Passwords hashed the quick way: these tests sign in and type passwords many
    times, and are about what is typed, not about what a hash costs."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


PNG_1PX = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00"
    b"\x00:~\x9bU\x00\x00\x00\nIDATx\x9cc\xf8\x0f\x00\x01\x01\x01\x00\x18\xdd\x8d\xb4\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)


# -- the family -------------------------------------------------------------------------


def _guardian_pk(sourced_id: str) -> int:
    return Guardian.objects.get(sourced_id=sourced_id).pk


def _child_step(sourced_id: str) -> str:
    return f"child-{Student.objects.get(sourced_id=sourced_id).pk}"


def _new_address(**changes: Any) -> dict[str, Any]:
    return {
        "moved": "yes",
        "street1": "88 Orchard Lane",
        "street2": "",
        "city": "Riverside",
        "state": "CA",
        "postal_code": "95210",
        **changes,
    }


def _lease() -> SimpleUploadedFile:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return SimpleUploadedFile("lease.pdf", out.getvalue(), content_type="application/pdf")


def _answer(wizard: WizardWalk, page: Page, answers: dict[str, dict[str, Any]]) -> Page:
    if page.step in answers:
        return wizard.submit(page, answers[page.step])
    if page.step == "acknowledgements":
        assert page.form is not None
        ticks = {n.removeprefix(f"{page.step}-"): "on" for n in page.form.choices if "-ack_" in n}
        return wizard.submit(page, ticks)
    if not page.offers_unchanged:
        return wizard.submit(page)
    return wizard.submit(page, unchanged=True)


def _walk_to_review(
    wizard: WizardWalk, answers: dict[str, dict[str, Any]], step: str = "review"
) -> Page:
    page = wizard.open()
    for _ in range(20):
        if page.step == step:
            return page
        page = _answer(wizard, page, answers)
        assert page.status_code == 200 and not page.errors, (page.url, page.errors)
    raise AssertionError(f"never reached the step {step}")


@pytest.fixture
def jose(client, guardian_user, campaign, office_user) -> WizardWalk:
    """José, signed in, at hh-001's registration (office staff of the family's school
    exist, so that visit bookings are emailed to someone)."""
    sign_in(client, guardian_user)
    return WizardWalk(client, Registration.objects.get(household__sourced_id="hh-001"))


def _basic_answers() -> dict[str, dict[str, Any]]:
    """What José types when nothing is hostile: María José's email, and a move."""
    return {
        "contacts": {f"g{_guardian_pk('par-001')}_email": MARIA_EMAIL},
        "address": {**_new_address(), "proofs": _lease()},
    }


# -- every text field, every hostile value -------------------------------------------------


def _fields() -> list[tuple[str, str, dict[str, Any], str]]:
    """(step, field, what else the step needs, kind): ``free`` and ``multiline``
    text stores what it is given; ``structured`` fields (emails, phones, a state, a
    ZIP code) accept only their own format."""
    jose, maria = _guardian_pk("par-002"), _guardian_pk("par-001")
    sofia = _child_step("stu-001")
    contacts = {f"g{maria}_email": MARIA_EMAIL}
    fields: list[tuple[str, str, dict[str, Any], str]] = [
        ("contacts", f"g{jose}_{name}", contacts, "structured")
        for name in ("email", "mobile", "home_phone", "work_phone")
    ]
    fields += [("address", name, _new_address(), "free") for name in ("street1", "street2", "city")]
    fields += [("address", name, _new_address(), "structured") for name in ("state", "postal_code")]
    contact = {"c3_name": "Ines Vidal", "c3_relationship": "Neighbour", "c3_phone": "650-555-0190"}
    fields += [
        ("emergency", "c3_name", contact, "free"),
        ("emergency", "c3_relationship", contact, "free"),
        ("emergency", "c3_phone", contact, "structured"),
    ]
    leaving = {"decision": "leaving", "leaving_reason": "moving"}
    fields += [(sofia, "leaving_destination", leaving, "free")]
    fields += [
        (sofia, name, {}, "multiline") for name in ("allergies", "medications", "conditions")
    ]
    return fields


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _markup_free(page_html: str, value: str) -> bool:
    """The value's markup is nowhere in the page as markup."""
    return not any(tag in page_html for tag in ("<script>alert", "<img src=x") if tag in value)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_every_text_field_refuses_or_stores_inertly(jose, kind):
    value = HOSTILE[kind]
    _walk_to_review(jose, _basic_answers())
    registration = Registration.objects.get(household__sourced_id="hh-001")
    fields = _fields()
    pages = {step: jose.open(step) for step in {step for step, *_rest in fields}}
    wrong = []
    for step, name, others, field_kind in fields:
        stored = kind in {"free": STORED, "multiline": STORED_MULTILINE}.get(field_kind, set())
        page = pages[step]
        assert page.step == step, (step, page.url)
        before = RegistrationStep.objects.get(registration=registration, step=step)
        response = jose.client.post(jose.url(step), jose.data(page, {**others, name: value}))
        draft = RegistrationStep.objects.get(registration=registration, step=step)
        where = f"{step} {name}"
        if response.status_code >= 500:
            wrong.append(f"{where}: {response.status_code}")
        elif not stored:
            shown = Page(response, jose.prefix)
            if response.status_code != 200 or not shown.error(name):
                wrong.append(f"{where}: not refused at the field ({response.status_code})")
            elif shown.value(name) != value:
                wrong.append(f"{where}: the form does not keep what was typed")
            if (draft.answers, draft.data) != (before.answers, before.data):
                wrong.append(f"{where}: refused, yet the draft changed")
        elif response.status_code != 302:
            shown = Page(response, jose.prefix)
            wrong.append(f"{where}: refused ({shown.errors}), expected it stored as typed")
        elif value not in _strings(draft.answers):
            wrong.append(f"{where}: stored as {_strings(draft.answers)!r}")
        else:
            again = jose.open(step)
            if again.value(name) != value or not _markup_free(again.html, value):
                wrong.append(f"{where}: not shown back as the text typed")
    assert not wrong, f"{kind}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("kind", sorted(set(HOSTILE) - STORED))
def test_the_signature_refuses_what_no_field_stores(jose, kind):
    page = _walk_to_review(jose, _basic_answers())
    signed = jose.submit(
        page, {"signed_name": f"{JOSE} {HOSTILE[kind]}", "attest": "on"}, follow=False
    )
    assert signed.status_code == 200 and signed.error("signed_name"), signed.status_code
    assert signed.value("signed_name") == f"{JOSE} {HOSTILE[kind]}"
    assert not Submission.objects.exists()


def test_only_the_steps_own_fields_are_kept(jose):
    """A post may carry any names with any bytes: only the step's own fields reach
    the draft, and a checkbox sent an odd value (NUL) is just ticked."""
    _walk_to_review(jose, _basic_answers())
    page = jose.open("emergency")
    data = jose.data(page)
    data["emergency-note"] = "\x00" + "<script>alert(1)</script>" * 100
    data["unrelated"] = "\x00"
    assert jose.client.post(jose.url("emergency"), data).status_code == 302
    draft = RegistrationStep.objects.get(step="emergency")
    assert draft.data and set(draft.data) <= set(data) - {"emergency-note", "unrelated"}

    step = _child_step("stu-001")
    page = jose.open(step)
    data = jose.data(page, {"consent_media": "\x00"})
    assert jose.client.post(jose.url(step), data).status_code == 302
    draft = RegistrationStep.objects.get(step=step)
    assert draft.answers["consents"]["media"] is True


# -- one family with hostile text everywhere, through to the PDF ------------------------------


SIGNED_NAME = f"{JOSE} <b>signed</b> {{{{ 7|add:7 }}}}"


def _hostile_answers() -> dict[str, dict[str, Any]]:
    """Every free-text field of hh-001's registration with its own hostile value."""
    return {
        "contacts": {f"g{_guardian_pk('par-001')}_email": MARIA_EMAIL},
        "address": {
            **_new_address(
                street1=HOSTILE["script"], street2=HOSTILE["attribute"], city=HOSTILE["sql"]
            ),
            "proofs": _lease(),
        },
        "emergency": {
            "c1_name": HOSTILE["template"],
            "c1_relationship": HOSTILE["sql_union"],
            "c2_name": HOSTILE["emoji"],
        },
        _child_step("stu-001"): {
            "allergies": "Peanuts\r\n<script>alert('allergy')</script>",
            "medications": "<iframe src=javascript:alert(2)></iframe>",
        },
        _child_step("stu-002"): {"conditions": 'Asthma & "wheezing" <b>bold</b>'},
    }


def _typed_values() -> list[str]:
    values = [v for step in _hostile_answers().values() for v in step.values()]
    return [v for v in values if isinstance(v, str) and v not in ("yes", "CA", "95210", "")]


def _escaped_in(page_html: str, value: str) -> list[str]:
    """Problems with how ``value`` shows in an HTML page (as text, markup escaped)."""
    problems = []
    if "<" in value and value in page_html:
        problems.append(f"{value!r} unescaped")
    lines = [line for line in value.replace("\r\n", "\n").split("\n") if line]
    if not all(
        html.escape(line, quote=False) in page_html.replace("&#x27;", "'").replace("&quot;", '"')
        for line in lines
    ):
        problems.append(f"{value!r} not shown")
    return problems


def _flat(text: str) -> str:
    return "".join(text.split())


# Keys and actions of a PDF that run something when it is opened or clicked.
PDF_SCRIPT_KEYS = {"/JS", "/JavaScript", "/OpenAction", "/AA"}
PDF_SCRIPT_ACTIONS = {"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/RichMediaExecute"}


def _pdf_scripts(reader: PdfReader) -> set[str]:
    """Every script key and script action anywhere in the file's objects."""
    found: set[str] = set()
    seen: set[tuple[int, int]] = set()
    waiting: list[Any] = [reader.trailer]
    while waiting:
        item = waiting.pop()
        if isinstance(item, IndirectObject):
            if (item.idnum, item.generation) in seen:
                continue
            seen.add((item.idnum, item.generation))
            item = item.get_object()
        if isinstance(item, DictionaryObject):
            found |= PDF_SCRIPT_KEYS & set(item)
            if item.get("/S") in PDF_SCRIPT_ACTIONS:
                found.add(str(item["/S"]))
            waiting.extend(item.values())
        elif isinstance(item, ArrayObject):
            waiting.extend(item)
    return found


def _pdf_problems(where: str, data: bytes, values: list[str]) -> list[str]:
    """The PDF shows each value as its text, and holds no script."""
    reader = PdfReader(io.BytesIO(data))
    problems = [f"{where}: {name} in the file" for name in sorted(_pdf_scripts(reader))]
    text = "\n".join(page.extract_text() for page in reader.pages)
    # pypdf reads some of WeasyPrint's fonts as two bytes a character.
    flat = _flat(text.replace("\x00", ""))
    for value in values:
        # Emoji have no glyph in the PDF's fonts: the text around them is checked.
        for part in re.split(r"[\u200d\U0001f000-\U0001faff]+", value):
            if _flat(part) not in flat:
                problems.append(f"{where}: {part!r} missing")
    return problems


def test_hostile_text_is_shown_as_text_everywhere(
    jose, office_user, registrar_user, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        review = _walk_to_review(jose, _hostile_answers())
    values = _typed_values()
    problems = [f"review: {p}" for v in values for p in _escaped_in(review.html, v)]
    with django_capture_on_commit_callbacks(execute=True):
        done = jose.submit(review, {"signed_name": SIGNED_NAME, "attest": "on"})
    submission = Submission.objects.get()
    assert submission.signed_name == SIGNED_NAME, done.errors
    problems += [f"status: {p}" for p in _escaped_in(done.html, SIGNED_NAME)]

    # Staff: the review of the registration, the address request, and after the
    # visit and approval the records the family's text became.
    office = Client()
    sign_in(office, office_user)
    registration = submission.registration
    page = office.get(reverse("staff_registration", args=[registration.pk])).content.decode()
    problems += [f"staff review: {p}" for v in [*values, SIGNED_NAME] for p in _escaped_in(page, v)]
    request = AddressChangeRequest.objects.get(registration=registration)
    address_url = reverse("staff_address", args=[request.pk])
    page = office.get(address_url).content.decode()
    address_values = [HOSTILE["script"], HOSTILE["attribute"], HOSTILE["sql"]]
    problems += [f"staff address: {p}" for v in address_values for p in _escaped_in(page, v)]
    with django_capture_on_commit_callbacks(execute=True):
        visit = office.post(
            reverse("staff_address_visit_record", args=[request.pk]),
            {"proofs_seen": ["lease", "utility"]},
        )
        verify = office.post(reverse("staff_address_verify", args=[request.pk]))
        approve = office.post(reverse("staff_registration_approve", args=[registration.pk]))
    assert (visit.status_code, verify.status_code, approve.status_code) == (302, 302, 302)
    guardian = Guardian.objects.get(sourced_id="par-002")
    page = office.get(reverse("staff_guardian", args=[guardian.pk])).content.decode()
    problems += [f"staff guardian: {p}" for v in address_values for p in _escaped_in(page, v)]
    page = jose.client.get(reverse("guardian_home")).content.decode()
    problems += [f"guardian home: {p}" for v in address_values for p in _escaped_in(page, v)]
    admin = Client()
    sign_in(admin, registrar_user)
    for url in (
        reverse("admin:registration_household_change", args=[request.household_id]),
        reverse("admin:registration_emergencycontact_changelist"),
        reverse("admin:registration_studenthealth_changelist"),
    ):
        page = admin.get(url).content.decode()
        assert "<script>alert" not in page and "<iframe src=javascript" not in page, url

    # Emails: plain text, the text as typed (nothing to interpret), no header
    # carrying the family's text.
    assert mailoutbox, "no email was sent"
    seen = set()
    for message in mailoutbox:
        assert message.content_subtype == "plain", message.subject
        assert not getattr(message, "alternatives", None), message.subject
        assert "\n" not in message.subject and "<" not in message.subject, message.subject
        for value in [*address_values, SIGNED_NAME]:
            if value in message.body:
                seen.add(value)
            assert html.escape(value) not in message.body or html.escape(value) == value
    assert seen == {*address_values, SIGNED_NAME}, seen

    # The confirmation PDF: the text as typed, none of it read as HTML.
    with submission.confirmation.pdf.open("rb") as handle:
        problems += _pdf_problems("confirmation PDF", handle.read(), [*values, SIGNED_NAME])
    assert not problems, "\n".join(problems)


# -- uploads ------------------------------------------------------------------------------


def _pdf(open_action: Any = None, javascript: str = "") -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    if javascript:  # a document-level script, run when the file opens
        script = writer._add_object(_action("/JavaScript", JS=javascript))
        tree = DictionaryObject(
            {NameObject("/Names"): ArrayObject([TextStringObject("proof"), script])}
        )
        writer.root_object[NameObject("/Names")] = DictionaryObject(
            {NameObject("/JavaScript"): writer._add_object(tree)}
        )
    if open_action is not None:
        writer.root_object[NameObject("/OpenAction")] = open_action
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _action(kind: str, **entries: str) -> DictionaryObject:
    action = DictionaryObject({NameObject("/S"): NameObject(kind)})
    for key, value in entries.items():
        action[NameObject(f"/{key}")] = TextStringObject(value)
    return action


def _pdf_compressed(open_action: bytes) -> bytes:
    """A PDF 1.5 whose objects are all in a compressed object stream: nothing of them
    shows in the file's bytes."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
        open_action,
    ]
    offsets, body = [], b""
    for number, text in enumerate(objects, 1):
        offsets.append(f"{number} {len(body)}")
        body += text + b"\n"
    header = (" ".join(offsets) + "\n").encode()
    packed = zlib.compress(header + body)
    out = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n"
    stream_at = len(out)
    out += (
        (
            f"5 0 obj\n<< /Type /ObjStm /N 4 /First {len(header)} /Filter /FlateDecode "
            f"/Length {len(packed)} >>\nstream\n"
        ).encode()
        + packed
        + b"\nendstream\nendobj\n"
    )
    xref_at = len(out)
    rows = struct.pack(">BIH", 0, 0, 65535)
    rows += b"".join(struct.pack(">BIH", 2, 5, index) for index in range(4))
    rows += struct.pack(">BIH", 1, stream_at, 0) + struct.pack(">BIH", 1, xref_at, 0)
    out += (
        (
            f"6 0 obj\n<< /Type /XRef /Size 7 /W [1 4 2] /Root 1 0 R /Length {len(rows)} >>\n"
            "stream\n"
        ).encode()
        + rows
        + b"\nendstream\nendobj\n"
    )
    return out + f"startxref\n{xref_at}\n%%EOF\n".encode()


def _png_header(width: int, height: int) -> bytes:
    """A grey PNG that announces ``width`` × ``height`` pixels, with a few kilobytes of
    deflated zeros: decoding it would take width × height bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 5_000_000, 9))
        + chunk(b"IEND", b"")
    )


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("lease.pdf", b"\x00" * 50_000_000)
    return out.getvalue()


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">'
    b"<script>alert(document.cookie)</script></svg>"
)
POLYGLOT = (
    _jpeg()
    + b"<html><body><script>alert(document.cookie)</script></body></html>"
    + b"%PDF-1.4\n1 0 obj<</Type/Catalog/OpenAction<</S/JavaScript/JS(app.alert(1))>>>>endobj"
)
JS_PDF = _pdf(javascript="app.alert('proof');")

# name: (uploaded name, content, refused because / None when it is kept)
UPLOADS: dict[str, tuple[str, bytes, str | None]] = {
    "pdf_javascript": ("lease.pdf", JS_PDF, "contains a script"),
    "pdf_open_action_js": (
        "lease.pdf",
        _pdf(open_action=_action("/JavaScript", JS="app.alert(1)")),
        "contains a script",
    ),
    "pdf_open_action_launch": (
        "lease.pdf",
        _pdf(open_action=_action("/Launch", F="calc.exe")),
        "contains a script",
    ),
    "pdf_open_action_uri": (
        "lease.pdf",
        _pdf(open_action=_action("/URI", URI="https://intruder.example/")),
        "contains a script",
    ),
    "pdf_hex_escaped_names": (
        "lease.pdf",
        JS_PDF.replace(b"/JavaScript", b"/J#61vaScript").replace(b"/JS", b"/J#53"),
        "contains a script",
    ),
    "pdf_compressed_objects": (
        "lease.pdf",
        _pdf_compressed(b"<< /S /JavaScript /JS (app.alert(1)) >>"),
        "contains a script",
    ),
    # An object nested too deep for the parser, hiding the script behind it.
    "pdf_parser_crash": (
        "lease.pdf",
        _pdf_compressed(
            b"<< /S /JavaScript /JS (app.alert(1)) /X " + b"[" * 20_000 + b"]" * 20_000 + b" >>"
        ),
        "could not be checked",
    ),
    "zip": ("lease.zip", _zip(), "is not a PDF, JPEG or PNG file"),
    "zip_named_pdf": ("lease.pdf", _zip(), "is not a PDF, JPEG or PNG file"),
    "png_decompression_bomb": ("bill.png", _png_header(100_000, 100_000), "too large an image"),
    "png_too_many_pixels": ("bill.png", _png_header(10_000, 8_500), "too large an image"),
    "png_header_only": ("bill.png", PNG_1PX[:40], "is not a PDF, JPEG or PNG file"),
    "svg_with_script": ("map.svg", SVG, "is not a PDF, JPEG or PNG file"),
    "svg_named_png": ("scan.png", SVG, "is not a PDF, JPEG or PNG file"),
    "html_named_pdf": ("bill.pdf", b"<!DOCTYPE html><script>alert(1)</script>", "is not a PDF"),
    "program_named_jpg": ("photo.jpg", b"MZ\x90\x00\x03" + bytes(200), "is not a PDF, JPEG"),
    # Kept: a name of our own on disk, served as a download only.
    "pdf_with_a_destination": (
        "lease.pdf",
        _pdf(open_action=ArrayObject([NameObject("/Fit")])),
        None,
    ),
    "pdf_compressed_with_a_destination": ("scan.pdf", _pdf_compressed(b"[3 0 R /Fit]"), None),
    "polyglot_jpeg": ("photo.jpg", POLYGLOT, None),
    "path_traversal": ("../../etc/passwd.png", PNG_1PX, None),
    "windows_path_traversal": ("..\\..\\windows\\win.ini.png", PNG_1PX, None),
    "png_named_pdf": ("lease.pdf", PNG_1PX, None),
    "bidi_name": ("invoice\u202efdp.exe", _pdf(), None),
}
# What the family and staff see the kept files as.
KEPT_AS = {
    "pdf_with_a_destination": ("lease.pdf", "application/pdf"),
    "pdf_compressed_with_a_destination": ("scan.pdf", "application/pdf"),
    "polyglot_jpeg": ("photo.jpg", "image/jpeg"),
    "path_traversal": ("passwd.png", "image/png"),
    "windows_path_traversal": ("win.ini.png", "image/png"),
    "png_named_pdf": ("lease.png", "image/png"),
    "bidi_name": ("invoicefdp.pdf", "application/pdf"),
}


def _multipart(fields: dict[str, Any], filename: str, content: bytes) -> tuple[bytes, str]:
    """A form post built by hand: the test client would drop the folders from the
    file's name, a browser or a script need not."""
    boundary = "hostile-upload-boundary"
    parts = []
    for name, values in fields.items():
        for value in values if isinstance(values, list) else [values]:
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n".encode()
            )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="address-proofs"; '
        f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("case", sorted(UPLOADS))
def test_an_upload_is_refused_at_the_field_or_kept_as_a_download(
    case, jose, office_user, private_files
):
    filename, content, refusal = UPLOADS[case]
    page = jose.open()
    while page.step != "address":
        page = _answer(jose, page, _basic_answers())
    typed = _new_address(street1="12 Quarry Road")
    fields = jose.data(page, typed)
    fields.pop("address-proofs", None)
    body, content_type = _multipart(fields, filename, content)
    response = jose.client.post(jose.url("address"), body, content_type=content_type)

    if refusal is not None:
        shown = Page(response, jose.prefix)
        assert response.status_code == 200 and shown.step == "address", response.status_code
        message = shown.error("proofs")
        assert refusal in message, message
        assert Path(filename.replace("\\", "/")).name.split(".")[0] in message, message
        assert shown.value("street1") == "12 Quarry Road"  # what was typed stays
        assert not AddressProof.objects.exists()
        return

    assert response.status_code == 302, Page(response, jose.prefix).errors
    proof = AddressProof.objects.get()
    shown_name, shown_type = KEPT_AS[case]
    assert (proof.original_name, proof.content_type) == (shown_name, shown_type)
    stored = Path(proof.file.path).resolve()
    assert stored.is_relative_to(Path(private_files).resolve() / "proofs")
    assert re.fullmatch(r"[0-9a-f]{32}\.(pdf|jpg|png)", stored.name), stored.name
    assert stored.read_bytes() == content

    request = proof.request
    office = Client()
    sign_in(office, office_user)
    for client, url in (
        (jose.client, reverse("registration_proof", args=[request.registration_id, proof.pk])),
        (office, reverse("staff_address_proof", args=[request.pk, proof.pk])),
    ):
        download = client.get(url)
        assert download.status_code == 200, url
        assert b"".join(download.streaming_content) == content
        assert download["Content-Type"] == shown_type
        assert download["Content-Disposition"].startswith("attachment;"), url
        assert (
            shown_name in download["Content-Disposition"]
            or "utf-8''" in download["Content-Disposition"]
        )
        assert download["X-Content-Type-Options"] == "nosniff"


# -- staff text that reaches families --------------------------------------------------------


def _signed_in(user: Any) -> Client:
    client = Client()
    sign_in(client, user)
    return client


@contextmanager
def _undone() -> Iterator[None]:
    """What happens inside is rolled back at the end, so that the next value meets the
    same records (a registration still waiting for review, a code not yet used)."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def _writes() -> tuple[int, ...]:
    """What a change writes: state changes, audited changes (reads are audited too and
    do not count), queued work, emails."""
    return (
        TransitionLog.objects.count(),
        AuditEvent.objects.exclude(
            action__in=[AuditEvent.Action.VIEW, AuditEvent.Action.LIST]
        ).count(),
        OutboxMessage.objects.count(),
        len(mail.outbox),
    )


def _parsed(response: Any) -> PageParser:
    parser = PageParser()
    parser.feed(response.content.decode())
    return parser


def _typed_back(page: PageParser, name: str) -> str | None:
    """What the page's form holds in the field ``name`` (a browser would send it)."""
    for form in page.forms:
        if name in form.fields:
            return (form.fields[name] or [""])[0]
    return None


def _refused_problems(
    response: Any, value: str, refused: list[str], accepted: list[str]
) -> list[str]:
    """The form came back with a message at each field of ``refused``, what was typed
    still in it, and no message at the fields of ``accepted``."""
    if response.status_code != 200:
        return [f"answered {response.status_code}, not the form with a message"]
    page = _parsed(response)
    problems = []
    for name in refused:
        if not page.errors.get(f"id_{name}_error"):
            problems.append(f"{name}: no message at the field")
        elif _typed_back(page, name) != value:
            problems.append(f"{name}: the form does not keep what was typed")
    for name in accepted:
        if message := page.errors.get(f"id_{name}_error"):
            problems.append(f"{name}: refused ({message}), expected it kept")
    if not _markup_free(response.content.decode(), value):
        problems.append("markup in the page")
    return problems


def _post_hostile(
    kind: str,
    fields: dict[str, bool],
    post: Callable[[dict[str, str]], Any],
    written: Callable[[], object],
) -> tuple[list[str], Any]:
    """Post ``HOSTILE[kind]`` into the free-text ``fields`` (name: multi-line or not)
    of a staff form. Where a field must refuse it, the form comes back with a message
    at each such field and none at the others, and nothing is written (``written()``
    says the same before and after); then the value goes into the fields that keep it,
    alone. Returns the problems and the response of that second post (None when no
    field keeps the value or it was refused)."""
    value = HOSTILE[kind]
    refusing = [name for name, multiline in fields.items() if not _kept(kind, multiline=multiline)]
    keeping = [name for name in fields if name not in refusing]
    problems = []
    if refusing:
        before = written()
        response = post(dict.fromkeys(fields, value))
        problems += _refused_problems(response, value, refusing, keeping)
        if written() != before:
            problems.append("refused, yet something was written")
    if not keeping:
        return problems, None
    response = post(dict.fromkeys(keeping, value))
    if response.status_code != 302:
        errors = _parsed(response).errors if response.status_code == 200 else {}
        problems.append(f"answered {response.status_code} {errors}, expected it kept as typed")
        return problems, None
    return problems, response


def _shown(where: str, response: Any, values: list[str]) -> list[str]:
    if response.status_code != 200:
        return [f"{where}: answered {response.status_code}"]
    page = response.content.decode()
    return [f"{where}: {problem}" for value in values for problem in _escaped_in(page, value)]


def _mail_problems(messages: list[Any], values: list[str]) -> list[str]:
    """Each message carries every value as typed in its text (escaped in an HTML
    alternative, where there is one), and no header carries any of them."""
    if not messages:
        return ["no email was sent"]
    problems = []
    for message in messages:
        where = f"email to {', '.join(message.to)}"
        try:
            headers = message.message().items()
        except BadHeaderError as error:  # a line break in a header
            problems.append(f"{where}: {error}")
            continue
        for value in values:
            if value not in message.body:
                problems.append(f"{where}: {value!r} not in the text")
            if html.escape(value) != value and html.escape(value) in message.body:
                problems.append(f"{where}: {value!r} escaped in the plain text")
            for content, mimetype in getattr(message, "alternatives", []):
                if mimetype == "text/html":
                    problems += [f"{where} (HTML): {p}" for p in _escaped_in(content, value)]
            problems += [
                f"{where}: {value!r} in the {name} header"
                for name, header in headers
                if any(line and line in str(header) for line in value.splitlines())
            ]
        if message.cc or message.bcc or message.extra_headers:
            problems.append(f"{where}: more headers than the product writes")
    return problems


def _fresh(obj: Any) -> Any:
    return type(obj).objects.get(pk=obj.pk)


def test_a_returned_registrations_comment_reaches_the_family_as_text(
    campaign, client, guardian_user, office_user, mailoutbox, django_capture_on_commit_callbacks
):
    """Carmen returns hh-001's submitted registration with each value as the comment:
    José reads it on his status page and in the wizard, and by email."""
    registration = _submit(campaign, "hh-001")
    sign_in(client, guardian_user)
    office = _signed_in(office_user)
    url = reverse("staff_registration_return", args=[registration.pk])

    def post(typed: dict[str, str]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return office.post(url, {"step": "acknowledgements", **typed})

    def written() -> object:
        fresh = _fresh(registration)
        return (*_writes(), fresh.state, fresh.return_comment)

    problems = []
    for kind, value in HOSTILE.items():
        mailoutbox.clear()
        with _undone():
            found, kept = _post_hostile(kind, {"comment": True}, post, written)
            if kept is not None:
                if _fresh(registration).return_comment != value:
                    found.append(f"stored as {_fresh(registration).return_comment!r}")
                pages = {
                    "staff review": office.get(
                        reverse("staff_registration", args=[registration.pk])
                    ),
                    "family status": client.get(
                        reverse("registration_status", args=[registration.pk])
                    ),
                    "family wizard": client.get(
                        reverse("registration_resume", args=[registration.pk]), follow=True
                    ),
                }
                found += [p for where, page in pages.items() for p in _shown(where, page, [value])]
                found += _mail_problems(mailoutbox, [value])
        problems += [f"{kind}: {problem}" for problem in found]
    assert not problems, "\n".join(problems)


def test_a_rejected_address_changes_reason_reaches_the_family_as_text(
    campaign, office_user, mailoutbox, django_capture_on_commit_callbacks
):
    """Carmen rejects hh-001's new address with each value as the reason: the family
    reads it by email, staff on the request's page."""
    _submit(campaign, "hh-001", moved=True)
    request = AddressChangeRequest.objects.get(household__sourced_id="hh-001")
    office = _signed_in(office_user)
    url = reverse("staff_address_reject", args=[request.pk])

    def post(typed: dict[str, str]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return office.post(url, typed)

    def written() -> object:
        fresh = _fresh(request)
        return (*_writes(), fresh.state, fresh.reason)

    problems = []
    for kind, value in HOSTILE.items():
        mailoutbox.clear()
        with _undone():
            found, kept = _post_hostile(kind, {"reason": True}, post, written)
            if kept is not None:
                if _fresh(request).reason != value:
                    found.append(f"stored as {_fresh(request).reason!r}")
                page = office.get(reverse("staff_address", args=[request.pk]))
                found += _shown("staff address", page, [value])
                found += _mail_problems(mailoutbox, [value])
        problems += [f"{kind}: {problem}" for problem in found]
    assert not problems, "\n".join(problems)


def test_finances_explanation_of_a_mismatch_is_kept_as_text(finance_user):
    """A charge Stripe paid out that the ledger lacks, explained with each value: the
    mismatch, the list, the payout's history and the CSV file show it as typed."""
    payout = Payout.objects.create(
        stripe_payout_id="po_hostile",
        stripe_status="paid",
        amount_cents=1234,
        stripe_created_at=timezone.now(),
        arrival_date=timezone.localdate(),
        reconciled_at=timezone.now(),
    )
    item = ReconciliationItem.objects.create(
        key="txn_hostile",
        payout=payout,
        kind=ReconciliationItem.Kind.STRIPE_ONLY,
        mismatch_kind=ReconciliationItem.Kind.STRIPE_ONLY,
        transaction_type="charge",
        stripe_balance_transaction="txn_hostile",
        amount_cents=1234,
        difference_cents=1234,
        occurred_at=timezone.now(),
    )
    finance = _signed_in(finance_user)
    url = reverse("staff_finance_mismatch_explain", args=[item.pk])

    def written() -> object:
        return (*_writes(), _fresh(item).explanation)

    problems = []
    for kind, value in HOSTILE.items():
        found, kept = _post_hostile(
            kind, {"note": True}, lambda typed: finance.post(url, typed), written
        )
        if kept is not None:
            if _fresh(item).explanation != value:
                found.append(f"stored as {_fresh(item).explanation!r}")
            mismatches = reverse("staff_finance_mismatches")
            found += _shown("mismatch", finance.get(kept["Location"]), [value])
            found += _shown("mismatches", finance.get(mismatches, {"state": "explained"}), [value])
            found += _shown(
                "payout", finance.get(reverse("staff_finance_payout", args=[payout.pk])), [value]
            )
            export = finance.get(mismatches, {"state": "explained", "format": "csv"})
            rows = csv.DictReader(io.StringIO(export.getvalue().decode("utf-8-sig"), newline=""))
            if [row["explanation"] for row in rows] != [value]:
                found.append("not in the CSV file as typed")
        problems += [f"{kind}: {problem}" for problem in found]
    assert not problems, "\n".join(problems)


# A fee's texts as finance and teachers type them: name, multi-line or not.
FEE_TEXTS = {
    "title": False,
    "title_es": False,
    "title_zh": False,
    "description": True,
    "description_es": True,
    "description_zh": True,
}


def _catalog_fee(**texts: str) -> dict[str, str]:
    """An optional item of the catalog, for every school."""
    return {"title": "Library card", "amount": "4.00", "gl_code": "4100-FEES", **texts}


def _math7_trip(**texts: str) -> dict[str, str]:
    today = timezone.localdate()
    return {
        "section": str(ClassSection.objects.get(sourced_id="cls-math-7").pk),
        "title": "Science museum",
        "event_date": (today + datetime.timedelta(days=14)).isoformat(),
        "amount": "18.50",
        "deadline": (today + datetime.timedelta(days=7)).isoformat(),
        **texts,
    }


def test_fee_and_trip_texts_reach_families_pages_receipts_and_emails_as_text(
    jose,
    finance_user,
    teacher_user,
    settings,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    """Finance's catalog and a teacher's trip for Math 7 (Mateo's class) take each
    value; the family sees every fee kept on its fees page, in the wizard's fee step
    and on the payment page, and after paying in its receipt (PDF and email)."""
    use_local_stripe(settings)
    forms = {
        "catalog": (
            _signed_in(finance_user),
            reverse("staff_fee_create", kwargs={"kind": Fee.Kind.OPTIONAL}),
            _catalog_fee,
        ),
        "trip": (_signed_in(teacher_user), reverse("staff_field_trip_create"), _math7_trip),
    }

    def written() -> object:
        return (*_writes(), Fee.objects.count(), LedgerEntry.objects.count())

    problems, titles, descriptions = [], [], []
    for form, (staff, url, filled) in forms.items():
        for kind, value in HOSTILE.items():
            found, kept = _post_hostile(
                kind, FEE_TEXTS, lambda typed: staff.post(url, filled(**typed)), written
            )
            if kept is not None:
                fee = Fee.objects.latest("pk")
                typed = [name for name, lines in FEE_TEXTS.items() if _kept(kind, multiline=lines)]
                if any(getattr(fee, name) != value for name in typed):
                    found.append(f"stored as {[getattr(fee, name) for name in FEE_TEXTS]!r}")
                if "title" in typed:
                    # The page after saving names the fee saved.
                    found += _shown("staff page after saving", staff.get(kept["Location"]), [value])
                    titles.append(value)
                descriptions.append(value)
            problems += [f"{form} {kind}: {problem}" for problem in found]
    assert titles and descriptions
    catalog = {"staff catalog": forms["catalog"][0].get(reverse("staff_fees"))}
    problems += [p for where, page in catalog.items() for p in _shown(where, page, titles)]

    # The family: the fees page and the wizard's fee step list every fee.
    family = jose.client
    fees_page = family.get(reverse("guardian_fees"), follow=True)
    problems += _shown("fees page", fees_page, titles + descriptions)
    step = _walk_to_review(jose, _basic_answers(), step="fees")
    problems += _shown("wizard fee step", step.response, titles + descriptions)

    # Paying every one of them: the payment page, the receipt and its email.
    (cart,) = [form for form in _parsed(fees_page).forms if "line" in form.choices]
    to_pay = family.post(fees_page.wsgi_request.path, {"line": cart.choices["line"]})
    assert to_pay.status_code == 303, _parsed(to_pay).errors
    problems += _shown("payment page", family.get(to_pay["Location"]), titles)
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        paid = family.post(to_pay["Location"], {"action": "pay"})
    assert paid.status_code == 302
    checkout = Checkout.objects.get(state=Checkout.State.PAID)
    assert checkout.lines.count() == len(cart.choices["line"]) > len(titles)
    problems += _shown("fees page after paying", family.get(fees_page.wsgi_request.path), titles)
    receipt = family.get(reverse("receipt_download", args=[checkout.pk]))
    problems += _pdf_problems("receipt", receipt.getvalue(), titles)
    problems += _mail_problems(mailoutbox, titles)
    assert not problems, "\n".join(problems)


# -- staff search boxes and list filters ------------------------------------------------------


# The staff pages that read a search or filters from the query string: who reads
# them, and the parameters each page reads.
SEARCHES: list[tuple[str, str, tuple[str, ...]]] = [
    ("staff_home", "registrar", ("school", "page")),
    ("staff_guardians", "registrar", ("q", "page")),
    ("staff_registrations", "registrar", ("state", "school", "page")),
    ("staff_addresses", "registrar", ("school", "state", "older_than", "page")),
    ("staff_address_visits", "registrar", ("date", "school")),
    ("staff_reminders", "registrar", ("schools", "grades", "states")),
    ("staff_audit", "registrar", ("actor", "student", "since", "until", "page")),
    ("staff_activation", "registrar", ("page",)),
    ("staff_payments", "finance", ("q", "state", "since", "until", "page")),
    ("staff_fees", "finance", ("kind", "school", "campaign", "active", "without_gl_code", "page")),
    ("staff_field_trips", "finance", ("page",)),
    ("staff_finance", "finance", ("status", "since", "until", "format", "page")),
    ("staff_finance_mismatches", "finance", ("state", "kind", "format", "page")),
    ("staff_finance_collections", "finance", ("since", "until", "table", "format")),
    ("staff_finance_outstanding", "finance", ("table", "format", "page")),
    ("staff_finance_refunds", "finance", ("state", "since", "until", "format", "page")),
    ("staff_finance_summary", "finance", ("month", "format")),
]


def test_staff_searches_and_filters_answer_every_value_with_a_page(
    campaign, registrar_user, finance_user
):
    # A server error is an answer like any other here: the next search still runs.
    staff = {
        "registrar": Client(raise_request_exception=False),
        "finance": Client(raise_request_exception=False),
    }
    sign_in(staff["registrar"], registrar_user)
    sign_in(staff["finance"], finance_user)
    problems = []
    for name, role, parameters in SEARCHES:
        for kind, value in HOSTILE.items():
            # Each search alone: a database error in one must not hide the others.
            with _undone():
                response = staff[role].get(reverse(name), dict.fromkeys(parameters, value))
                if name == "staff_guardians" and response.status_code == 200:
                    # A search of the records is audited with what was searched for
                    # (a NUL, which the database cannot hold, as U+FFFD).
                    searched = AuditEvent.objects.filter(object_type="registration.guardian")
                    detail = searched.latest("pk").detail
                    if detail["query"] != value[:200].replace("\x00", "\ufffd"):
                        problems.append(f"{name} {kind}: audited as {detail}")
            if response.status_code != 200:
                problems.append(f"{name} {kind}: answered {response.status_code}")
            elif not _markup_free(response.content.decode(), value):
                problems.append(f"{name} {kind}: markup in the page")
    assert not problems, "\n".join(problems)


# -- signing in, the second factor, resetting a password, activating ----------------------


def _security_log(caplog: Any) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("security")]


def _log_problems(caplog: Any, secrets: list[str]) -> list[str]:
    """No value typed and no secret is in the log, and each line of the security log
    is one line (a line break typed must not write a forged line)."""
    problems = [f"{kind}: in the log" for kind, value in HOSTILE.items() if value in caplog.text]
    problems += [
        f"{secret[:4]}…: a secret in the log" for secret in secrets if secret in caplog.text
    ]
    problems += [f"a line break in {m!r}" for m in _security_log(caplog) if "\n" in m or "\r" in m]
    return problems


def _form_errors(response: Any) -> dict[str, list[str]]:
    """The errors of the page's form, by field ("__all__": the form's own)."""
    form = response.context["form"] if response.context else None
    return {
        name: [str(e) for e in errors] for name, errors in (form.errors if form else {}).items()
    }


def _signed_in_as(client: Client) -> int | None:
    user_id = client.session.get("_auth_user_id")
    return int(user_id) if user_id else None


def test_sign_in_refuses_hostile_values_and_logs_no_secret(guardian_user, caplog):
    """Typed as the email, a value is not an address; typed as the password, it is
    the wrong one: the usual message either way, the password never shown back or
    logged, and the failure logged with the account's id only."""
    problems, wrong_passwords = [], 0
    url = reverse("account_login")
    with caplog.at_level(logging.INFO):
        for kind, value in HOSTILE.items():
            cache.clear()  # failed sign-ins are limited per address and account
            client = Client()
            for field, typed in (
                ("login", {"login": value, "password": PASSWORD}),
                ("password", {"login": guardian_user.email, "password": value}),
            ):
                response = client.post(url, typed)
                where = f"{kind} as the {field}"
                if response.status_code != 200:
                    problems.append(f"{where}: answered {response.status_code}")
                    continue
                if _signed_in_as(client) is not None:
                    problems.append(f"{where}: signed in")
                errors = _form_errors(response)
                # A password the form refuses (a NUL) is said at its field; any other
                # is tried, and is the wrong one.
                if field == "password" and "__all__" in errors:
                    wrong_passwords += 1
                if not errors.get(field) and not (field == "password" and errors.get("__all__")):
                    problems.append(f"{where}: no message ({errors})")
                page = response.content.decode()
                if not _markup_free(page, value) or (field == "password" and value in page):
                    problems.append(f"{where}: shown back as markup or as the password")
    problems += _log_problems(caplog, [PASSWORD])
    failures = [m for m in _security_log(caplog) if m.startswith("sign-in failed")]
    logged = f"sign-in failed: account {guardian_user.pk}; ip 127.0.0.1, path /accounts/login/"
    if not wrong_passwords or failures != [logged] * wrong_passwords:
        problems.append(f"{wrong_passwords} wrong passwords, logged as {failures}")
    assert not problems, "\n".join(problems)


def test_a_second_factor_refuses_hostile_codes_and_logs_none(registrar_user, caplog):
    """Staff sign in with their password, then type each value as the code."""
    problems = []
    with caplog.at_level(logging.INFO):
        for kind, value in HOSTILE.items():
            cache.clear()  # wrong codes are limited per account
            client = Client()
            client.post(
                reverse("account_login"), {"login": registrar_user.email, "password": PASSWORD}
            )
            response = client.post(reverse("mfa_authenticate"), {"code": value})
            if response.status_code != 200:
                problems.append(f"{kind}: answered {response.status_code}")
            elif not _form_errors(response).get("code"):
                problems.append(f"{kind}: no message at the code ({_form_errors(response)})")
            elif not _markup_free(response.content.decode(), value):
                problems.append(f"{kind}: markup in the page")
            if _signed_in_as(client) is not None:
                problems.append(f"{kind}: signed in")
    problems += _log_problems(caplog, [PASSWORD])
    assert not problems, "\n".join(problems)


def _new_password_problems(
    where: str, response: Any, value: str, opens_with: Callable[[str], bool]
) -> list[str]:
    """A new password is kept exactly as typed (a redirect, and the account opens
    with it: ``opens_with``) or refused at its field (the form again, and it does
    not); it is never shown back."""
    if response.status_code == 302:
        return [] if opens_with(value) else [f"{where}: kept, but not as typed"]
    if response.status_code != 200:
        return [f"{where}: answered {response.status_code}"]
    problems = []
    errors = _form_errors(response)
    if not (errors.get("password1") or errors.get("password2")):
        problems.append(f"{where}: refused with no message at the password ({errors})")
    if opens_with(value):
        problems.append(f"{where}: refused, yet kept")
    if value in response.content.decode():
        problems.append(f"{where}: shown back")
    return problems


def test_password_reset_refuses_hostile_values_and_logs_no_secret(
    guardian_user, mailoutbox, caplog
):
    """The address asked for, a key in the link, and the new password."""
    uidb36 = int_to_base36(guardian_user.pk)
    problems, keys = [], []
    with caplog.at_level(logging.INFO):
        for kind, value in HOSTILE.items():
            cache.clear()  # resets are limited per address and account
            client = Client()
            response = client.post(reverse("account_reset_password"), {"email": value})
            if response.status_code != 200 or not _form_errors(response).get("email"):
                problems.append(f"{kind} as the address: answered {response.status_code}")
            if mailoutbox:
                problems.append(f"{kind} as the address: an email was sent")
            link = f"/accounts/password/reset/key/{uidb36}-{quote(value, safe='')}/"
            response = client.get(link)
            # The page for a wrong or used link, or none (a line break in a path).
            if response.status_code == 404:
                pass
            elif response.status_code != 200 or not response.context.get("token_fail"):
                problems.append(f"{kind} as the key: answered {response.status_code}")
            elif not _markup_free(response.content.decode(), value):
                problems.append(f"{kind} as the key: markup in the page")
            with _undone():
                key = default_token_generator.make_token(guardian_user)
                form = client.get(
                    reverse(
                        "account_reset_password_from_key", kwargs={"uidb36": uidb36, "key": key}
                    ),
                    follow=True,
                )
                response = client.post(
                    form.wsgi_request.path, {"password1": value, "password2": value}
                )
                problems += _new_password_problems(
                    f"{kind} as the new password",
                    response,
                    value,
                    lambda password: _fresh(guardian_user).check_password(password),
                )
                keys.append(key)
    problems += _log_problems(caplog, keys)
    assert not problems, "\n".join(problems)


def test_activation_refuses_hostile_values_and_logs_no_code(sample_district, caplog):
    """The code and the birth date are refused at their fields with nothing recorded;
    on the account step the address is refused and the password kept as typed or
    refused at its field."""
    jose = Guardian.objects.get(sourced_id="par-002")
    _code, clear = activation_code_issue(guardian=jose, channel="letter")
    birth_date = "2018-03-14"  # Sofía's
    account = {
        "email": "jose.garcia@example.com",
        "password1": "correct horse battery",
        "password2": "correct horse battery",
        "language": "es",
    }

    def opens_joses_account(password: str) -> bool:
        user = User.objects.filter(email=account["email"]).first()
        return user is not None and _fresh(jose).user == user and user.check_password(password)

    problems = []
    with caplog.at_level(logging.INFO):
        for kind, value in HOSTILE.items():
            cache.clear()  # tries are limited per visitor's address
            client = Client()
            for field, typed in (
                ("code", {"code": value, "birth_date": birth_date}),
                ("birth_date", {"code": clear, "birth_date": value}),
            ):
                where = f"{kind} as the {field}"
                response = client.post(reverse("activate"), typed)
                if response.status_code != 200:
                    problems.append(f"{where}: answered {response.status_code}")
                    continue
                problems += [
                    f"{where}: {p}" for p in _refused_problems(response, value, [field], [])
                ]
                if ActivationAttempt.objects.exists() or "activation" in client.session:
                    problems.append(f"{where}: recorded as a try")
            with _undone():
                accepted = client.post(
                    reverse("activate"), {"code": clear, "birth_date": birth_date}
                )
                assert accepted.status_code == 302, _parsed(accepted).errors
                response = client.post(reverse("activate_account"), {**account, "email": value})
                problems += [
                    f"{kind} as the email: {p}"
                    for p in _refused_problems(response, value, ["email"], [])
                ]
                if _fresh(jose).user_id is not None:
                    problems.append(f"{kind} as the email: an account was opened")
                response = client.post(
                    reverse("activate_account"), {**account, "password1": value, "password2": value}
                )
                problems += _new_password_problems(
                    f"{kind} as the password", response, value, opens_joses_account
                )
    problems += _log_problems(caplog, [clear])
    assert not problems, "\n".join(problems)
