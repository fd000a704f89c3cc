"""What a proof of residence may contain, and the names it is kept under.

Families upload a photo or a PDF of a lease or a bill, and school office staff open
it on an office computer. Its type is read from its first bytes
(``registration.wizard_forms.proof_content_type``); beyond that, a proof is refused
when opening it could run something or exhaust the computer that opens it: a PDF
with scripts, launch or form-submission actions, embedded files, or an action run
when it opens; a PDF that needs a password (nobody could check it); an image whose
header announces more pixels than a viewer decodes safely (a "decompression bomb":
a few kilobytes that unpack to gigabytes).
"""

from __future__ import annotations

import io
import re
import uuid
import warnings
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext_lazy as _
from PIL import Image
from pypdf import PdfReader
from pypdf.generic import DictionaryObject, IndirectObject

# A 50-megapixel phone photo is well under this; decoding this many pixels already
# takes about a quarter of a gigabyte.
PROOF_MAX_PIXELS = 80_000_000
# Read at most this many objects of a PDF (a proof has a few hundred).
PDF_MAX_OBJECTS = 50_000

EXTENSIONS = {
    "application/pdf": (".pdf",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
}

# Keys and action types of PDF objects that make a reader act on its own.
ACTIVE_KEYS = frozenset(
    {"/JS", "/JavaScript", "/AA", "/EmbeddedFiles", "/EF", "/XFA", "/RichMediaContent"}
)
ACTIVE_ACTIONS = frozenset(
    {"/JavaScript", "/Launch", "/SubmitForm", "/ImportData", "/GoToE", "/RichMediaExecute"}
)
# The same names as they may appear in the file's bytes (objects that are not
# compressed), after ``#xx`` escapes in names are decoded.
ACTIVE_TOKENS = re.compile(
    rb"/(?:JS|JavaScript|AA|Launch|EmbeddedFiles?|XFA|RichMedia|SubmitForm|ImportData|GoToE)"
    rb"(?=[\s/<>\[\]()%{}]|$)"
)
NAME_ESCAPE = re.compile(rb"#([0-9A-Fa-f]{2})")

ACTIVE_PDF = _(
    "%(name)s contains a script, an attached file or an action that runs when it is "
    "opened. Please send a scan or a photo of the document instead."
)
LOCKED_PDF = _("%(name)s is protected by a password. Please send it without a password.")
TOO_MANY_PIXELS = _("%(name)s is too large an image to open safely. Please send a smaller photo.")
UNREADABLE_IMAGE = _("%(name)s is not a PDF, JPEG or PNG file.")
UNCHECKABLE_PDF = _(
    "%(name)s could not be checked: part of it cannot be read. Please send a scan or a "
    "photo of the document instead."
)


def proof_refusal(upload: UploadedFile, content_type: str) -> Any:
    """The message (with ``%(name)s``) that refuses this proof, or None to accept it."""
    upload.seek(0)
    data = upload.read()
    upload.seek(0)
    if content_type == "application/pdf":
        return _pdf_refusal(data)
    return _image_refusal(data)


def proof_display_name(name: str, content_type: str) -> str:
    """The name a family and staff see: the file's own name without folders or
    characters that cannot be printed, ending in the extension of what the file is."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = "".join(c for c in base if c.isprintable()).strip().lstrip(".")
    stem, dot, suffix = cleaned.rpartition(".")
    if not dot:
        stem, suffix = cleaned, ""
    extensions = EXTENSIONS[content_type]
    extension = f".{suffix.lower()}" if f".{suffix.lower()}" in extensions else extensions[0]
    return f"{(stem or 'proof')[:190]}{extension}"


def proof_storage_name(display_name: str) -> str:
    """A name of our own for the stored file: nothing the family typed reaches the
    file system."""
    return f"{uuid.uuid4().hex}{PurePosixPath(display_name).suffix.lower()}"


# -- PDF ------------------------------------------------------------------------------


def _pdf_refusal(data: bytes) -> Any:
    if ACTIVE_TOKENS.search(NAME_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data)):
        return ACTIVE_PDF
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except Exception:  # pypdf raises many kinds of error for a damaged file
        # A file pypdf cannot open at all is judged on its bytes alone (above):
        # readers repair what they can, and a broken scan is the office's to look at.
        return None
    try:
        if reader.is_encrypted and not reader.decrypt(""):
            return LOCKED_PDF
        objects = list(_pdf_objects(reader))
    except Exception:
        return UNCHECKABLE_PDF
    try:
        if any(_is_active(obj) for obj in objects if obj is not UNREADABLE):
            return ACTIVE_PDF
    except Exception:
        return UNCHECKABLE_PDF
    if UNREADABLE in objects:
        # An object that cannot be read may hide an action behind it (one built to
        # crash the parser before it reaches the rest): it is not accepted unseen.
        return UNCHECKABLE_PDF
    return None


UNREADABLE = object()


def _pdf_objects(reader: PdfReader) -> Iterator[Any]:
    """Every object of the file; ``UNREADABLE`` for each one pypdf cannot read."""
    numbers = [(n, g) for g, entries in reader.xref.items() for n in entries]
    numbers += [(n, 0) for n in reader.xref_objStm]
    for number, generation in numbers[:PDF_MAX_OBJECTS]:
        try:
            yield IndirectObject(number, generation, reader).get_object()
        except Exception:  # RecursionError included: a nesting built to crash the parser
            yield UNREADABLE
    yield reader.trailer


def _is_active(obj: Any) -> bool:
    if not isinstance(obj, DictionaryObject):
        return False
    if ACTIVE_KEYS.intersection(obj.keys()):
        return True
    if obj.get("/S") in ACTIVE_ACTIONS or obj.get("/Type") == "/EmbeddedFile":
        return True
    opening = obj.get("/OpenAction")
    if opening is not None:
        action = opening.get_object()
        # A destination (a page and a zoom) is harmless; any other action is not.
        return isinstance(action, DictionaryObject) and action.get("/S") != "/GoTo"
    return False


# -- images ---------------------------------------------------------------------------


def _image_refusal(data: bytes) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        return TOO_MANY_PIXELS
    except (OSError, SyntaxError, ValueError):
        return UNREADABLE_IMAGE
    if width * height > PROOF_MAX_PIXELS:
        return TOO_MANY_PIXELS
    return None
