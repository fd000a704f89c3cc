"""WeasyPrint, configured once."""

from __future__ import annotations

from django.conf import settings
from weasyprint import HTML


def pdf_from_html(html: str) -> bytes:
    """A PDF of ``html``; relative URLs resolve against the project's static files."""
    return HTML(string=html, base_url=str(settings.BASE_DIR / "static")).write_pdf()
