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
"""

from __future__ import annotations

import html
import io
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

from registration.models import Guardian, Student
from tests.conftest import sign_in
from tests.workflow.wizard_walk import Page, WizardWalk
from workflow.models import (
    AddressChangeRequest,
    AddressProof,
    Registration,
    RegistrationStep,
    Submission,
)

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


def _walk_to_review(wizard: WizardWalk, answers: dict[str, dict[str, Any]]) -> Page:
    page = wizard.open()
    for _ in range(20):
        if page.step == "review":
            return page
        page = _answer(wizard, page, answers)
        assert page.status_code == 200 and not page.errors, (page.url, page.errors)
    raise AssertionError("never reached the review")


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
    confirmation = submission.confirmation
    with confirmation.pdf.open("rb") as handle:
        text = "\n".join(p.extract_text() for p in PdfReader(handle).pages)
    # pypdf reads some of WeasyPrint's fonts as two bytes a character.
    flat = _flat(text.replace("\x00", ""))
    for value in [*values, SIGNED_NAME]:
        # Emoji have no glyph in the PDF's fonts: the text around them is checked.
        for part in re.split(r"[\u200d\U0001f000-\U0001faff]+", value):
            if _flat(part) not in flat:
                problems.append(f"confirmation PDF: {part!r} missing")
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
