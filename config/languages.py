"""The languages the product speaks, and which of them a household's language is.

Rosters give a household's language as an ISO 639-1 code (``zh``), a guardian's
choice is stored as a Django language code (``zh-hans``): both come here to find the
language to write in, so that a new language is added in ``settings.LANGUAGES`` and
its catalogue alone.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponseBase
from django.utils.translation import get_supported_language_variant


def product_language(code: str | None) -> str | None:
    """The language of ``settings.LANGUAGES`` that serves a reader of ``code`` (``zh``
    and ``zh-tw`` are served in ``zh-hans``), or None when the product has none."""
    if not code:
        return None
    try:
        return get_supported_language_variant(code.strip().lower())
    except LookupError:
        return None


def language_or_default(*codes: str | None) -> str:
    """The first of ``codes`` the product speaks, else the district's language."""
    for code in codes:
        language = product_language(code)
        if language is not None:
            return language
    return str(settings.LANGUAGE_CODE)


def language_cookie_set(response: HttpResponseBase, language: str) -> None:
    """Remember ``language`` in the browser the way Django's language switch does."""
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        # A setting is a plain str to the type checker; Django checks its value.
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,  # type: ignore[arg-type]
    )


# Texts a district writes in each language (a document to accept, a fee's title) are
# model fields named ``<field>_<suffix>``; English is the field without a suffix (or
# ``_en``), and the one shown when the language's own is blank.
FIELD_SUFFIX = {"es": "es", "zh-hans": "zh"}


def text_in(obj: object, field: str, language: str | None, *, english: str) -> str:
    """``obj``'s ``<field>_<suffix>`` for ``language``, else ``english``."""
    suffix = FIELD_SUFFIX.get(product_language(language) or "")
    translated: str = getattr(obj, f"{field}_{suffix}") if suffix else ""
    return translated or english
