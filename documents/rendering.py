"""WeasyPrint, configured once: every PDF the product makes goes through here."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pydyf
from django.conf import settings
from weasyprint import HTML
from weasyprint.formatting_structure import boxes
from weasyprint.layout.absolute import AbsolutePlaceholder

logger = logging.getLogger(__name__)

# Tagged PDF (PDF/UA-1): a structure tree a screen reader follows, and the document's
# language from the <html lang> attribute. A block of <body> in another language says
# so with its own lang attribute (``_mark_languages``).
PDF_VARIANT = "pdf/ua-1"


def pdf_from_html(html: str) -> bytes:
    """A tagged PDF of ``html``; relative URLs resolve against the project's static
    files."""
    return HTML(string=html, base_url=str(settings.BASE_DIR / "static")).write_pdf(
        pdf_variant=PDF_VARIANT, finisher=_mark_languages
    )


def _mark_languages(document: Any, pdf: pydyf.PDF) -> None:
    """Write the language of each top-level block (a child of <body>: a letter's
    section) whose lang differs from the document's on its structure element.

    WeasyPrint tags the structure but writes only the document's language, so a
    Spanish letter among English ones would be read aloud as English. Its structure
    tree has one element under /Document per top-level box of each page, in the order
    of ``_top_level_boxes``; should the two ever disagree, nothing is marked rather
    than the wrong element.
    """
    if "StructTreeRoot" not in pdf.catalog:
        return
    root = _resolved(pdf, pdf.catalog["StructTreeRoot"])
    if len(root["K"]) != 1:
        logger.warning("a structure tree without one /Document: languages not marked")
        return
    elements = [_resolved(pdf, reference) for reference in _resolved(pdf, root["K"][0])["K"]]
    blocks = [box for page in document.pages for box in _top_level_boxes(page._page_box)]
    if len(elements) != len(blocks):
        logger.warning(
            "%d top-level structure elements for %d blocks: languages not marked",
            len(elements),
            len(blocks),
        )
        return
    for element, box in zip(elements, blocks, strict=True):
        language = box.style["lang"]
        if language and language != document.metadata.lang:
            element["Lang"] = pydyf.String(language)


def _resolved(pdf: pydyf.PDF, reference: bytes) -> Any:
    """The object behind ``b"12 0 R"``."""
    return pdf.objects[int(reference.split()[0])]


def _top_level_boxes(box: Any) -> Iterator[Any]:
    """The boxes WeasyPrint tags directly under /Document: it skips the page, the
    margin boxes and <html> and <body> (``weasyprint.pdf.tags._build_box_tree``)."""
    if isinstance(box, AbsolutePlaceholder):
        box = box._box
    if isinstance(box, boxes.MarginBox):
        return
    tag = None if box.element is None else box.element_tag
    if (tag in ("html", "body") or isinstance(box, boxes.PageBox)) and (
        isinstance(box, boxes.ParentBox) and not isinstance(box, boxes.LineBox)
    ):
        for child in box.children:
            yield from _top_level_boxes(child)
        return
    yield box
