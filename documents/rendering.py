"""WeasyPrint, configured once: every PDF the product makes goes through here."""

from __future__ import annotations

from django.conf import settings
from weasyprint import HTML

# Tagged PDF (PDF/UA-1): a structure tree a screen reader follows, and the document's
# language from the <html lang> attribute (a part in another language says so with
# its own lang attribute).
PDF_VARIANT = "pdf/ua-1"


def pdf_from_html(html: str) -> bytes:
    """A tagged PDF of ``html``; relative URLs resolve against the project's static
    files."""
    return HTML(string=html, base_url=str(settings.BASE_DIR / "static")).write_pdf(
        pdf_variant=PDF_VARIANT
    )
