"""Activation letters: one page per person, in their household's language, addressed
to them by name, ready for a window envelope."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

from config.languages import language_or_default
from documents.rendering import pdf_from_html
from registration.templatetags.phones import help_phone


@dataclass
class Letter:
    kind: str  # "guardian" or "student"
    sourced_id: str
    name: str
    street1: str
    street2: str
    city: str
    state: str
    postal_code: str
    language: str
    code: str  # as printed: 7KQM-3TXA-PW9R-4HCF
    expires_on: datetime.date
    children: list[str] = field(default_factory=list)
    household: str = ""

    @property
    def address_lines(self) -> list[str]:
        city_line = " ".join(
            part
            for part in (f"{self.city}," if self.city else "", self.state, self.postal_code)
            if part
        )
        return [line for line in (self.street1, self.street2, city_line) if line]

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["expires_on"] = self.expires_on.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Letter:
        return cls(**{**data, "expires_on": datetime.date.fromisoformat(data["expires_on"])})


def _district() -> dict[str, str]:
    return {
        "name": settings.DISTRICT_NAME,
        "help_email": settings.DISTRICT_HELP_EMAIL,
        "help_phone": help_phone(),
        "website": settings.DISTRICT_WEBSITE,
    }


def letter_language(letter: Letter) -> str:
    """The language a letter is written in: the household's, when the product has it."""
    return language_or_default(letter.language)


def letter_page_html(letter: Letter, *, today: datetime.date) -> str:
    """One letter's page, written in the letter's language."""
    language = letter_language(letter)
    with translation.override(language):
        return render_to_string(
            "documents/activation_letter_page.html",
            {
                "letter": letter,
                "language": language,
                "today": today,
                "district": _district(),
                "activate_url": settings.SITE_URL.rstrip("/") + "/activate/",
            },
        )


def letters_html(
    letters: Sequence[Letter], *, today: datetime.date, language: str | None = None
) -> str:
    """The one HTML document of ``letters``, a page each, in the order given.

    Its language (and its title's) is ``language``, else the letters' when they share
    one (a letter re-issued alone), else the district's; each page says its own.
    """
    pages = [letter_page_html(letter, today=today) for letter in letters]
    if language is None:
        languages = {letter_language(letter) for letter in letters}
        language = languages.pop() if len(languages) == 1 else settings.LANGUAGE_CODE
    with translation.override(language):
        return render_to_string(
            "documents/activation_letters.html",
            {"pages": pages, "document_language": language, "district": settings.DISTRICT_NAME},
        )


def letters_pdf(
    letters: Sequence[Letter], *, today: datetime.date | None = None, language: str | None = None
) -> bytes:
    """All ``letters`` as one PDF, a page each, in the order given; ``language`` as
    in ``letters_html``."""
    return pdf_from_html(
        letters_html(letters, today=today or datetime.date.today(), language=language)
    )
