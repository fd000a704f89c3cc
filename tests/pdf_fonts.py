"""The fonts a PDF draws with, read back with pypdf."""

from __future__ import annotations

from pypdf import PdfReader


def font_names(reader: PdfReader) -> set[str]:
    """Base font names of every page, without the subset prefix (``ABCDEF+``)."""
    names = set()
    for page in reader.pages:
        for font in page["/Resources"].get("/Font", {}).values():
            names.add(str(font.get_object()["/BaseFont"]).lstrip("/").split("+")[-1])
    return names


def serif_fonts(reader: PdfReader) -> set[str]:
    """Fonts of the serif family: a part of the page (a page footer, say) that fell
    back to the system's default font instead of the document's."""
    return {name for name in font_names(reader) if "Serif" in name}
