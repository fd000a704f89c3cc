"""Turning the text of roster cells into values, the way districts actually write them.

Each function returns the clean value or raises ``ValueError`` with a message fit
for the import report.
"""

from __future__ import annotations

import datetime
import re
from functools import lru_cache

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from phonenumbers.phonemetadata import PhoneMetadata

from registration.grades import GRADE_CODES

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{text!r} is not true or false")


def parse_date(text: str) -> datetime.date:
    """An ISO date (2015-09-01), as OneRoster requires."""
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date in the form YYYY-MM-DD") from None


def parse_list(text: str) -> list[str]:
    """A comma-separated list of ids or codes; blanks dropped."""
    return [part.strip() for part in text.split(",") if part.strip()]


_GRADE_ALIASES = {code.lower(): code for code in GRADE_CODES}
_GRADE_ALIASES.update({str(n): f"{n:02d}" for n in range(1, 14)})
_GRADE_ALIASES.update({"k": "KG", "tk": "TK", "pk": "PK"})


def parse_grade(text: str) -> str:
    """A CEDS grade code; ``1`` and ``01`` both mean grade 1, ``K`` kindergarten."""
    code = _GRADE_ALIASES.get(text.lower())
    if code is None:
        raise ValueError(
            f"{text!r} is not a grade; use KG, 01 to 12, PK, TK or another OneRoster grade code"
        )
    return code


# The usual ways of writing a North American number: (650) 555-0123, 650.555.0123,
# 1-650-555-0123, +1 650 555 0123. Only the ten digits matter to phonenumbers.
_NANP_TEXT = re.compile(r"(?:\+?1[\s.-]*)?\(?([2-9]\d{2})\)?[\s.-]*(\d{3})[\s.-]*(\d{4})")
_NANP_REGIONS = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])


# The first region of +1 is its main country, the United States, whose metadata has no
# leading digits: phonenumbers assigns a +1 number to it whenever the number is valid
# there, so "valid for the US" is enough to call it valid. Asking that first halves
# the work for the two million US numbers of a large roster; others (Canada, the
# Caribbean) are still asked the full question.
_NANP_MAIN = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1][0]
_NANP_MAIN_METADATA = PhoneMetadata.metadata_for_region(_NANP_MAIN)
_NANP_MAIN_FIRST = _NANP_MAIN_METADATA is not None and _NANP_MAIN_METADATA.leading_digits is None


def _valid(number: phonenumbers.PhoneNumber) -> bool:
    if (
        _NANP_MAIN_FIRST
        and number.country_code == 1
        and phonenumbers.is_valid_number_for_region(number, _NANP_MAIN)
    ):
        return True
    return bool(phonenumbers.is_valid_number(number))


@lru_cache(maxsize=500_000)
def normalise_phone(text: str) -> str:
    """The number in E.164 (+16505550123); US formats without a country code are read
    in the district's region. Extensions are dropped.

    A North American number written the usual way, in a North American district, is
    taken apart by a regular expression rather than by ``phonenumbers.parse``, which
    would give the same number: a roster has two million of them, and parsing took
    half of an import's checking. Its validity is still phonenumbers' to say."""
    match = _NANP_TEXT.fullmatch(text)
    if match is not None and settings.PHONENUMBER_DEFAULT_REGION in _NANP_REGIONS:
        digits = "".join(match.groups())
        number = phonenumbers.PhoneNumber(country_code=1, national_number=int(digits))
    else:
        try:
            number = phonenumbers.parse(text, settings.PHONENUMBER_DEFAULT_REGION)
        except phonenumbers.NumberParseException:
            raise ValueError(f"{text!r} is not a phone number") from None
    if not _valid(number):
        raise ValueError(f"{text!r} is not a valid phone number (area code and 7 digits?)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(text: str) -> str:
    value = text.strip()
    try:
        validate_email(value)
    except ValidationError:
        raise ValueError(f"{text!r} is not an email address") from None
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


_POSTAL_CODE = re.compile(r"^(\d{5})(?:-?(\d{4}))?$")


def normalise_postal_code(text: str) -> str:
    """A US ZIP or ZIP+4; a 4-digit ZIP whose leading zero a spreadsheet dropped is
    padded back."""
    value = text.replace(" ", "")
    if re.fullmatch(r"\d{4}", value) or re.fullmatch(r"\d{4}-?\d{4}", value):
        value = "0" + value
    match = _POSTAL_CODE.match(value)
    if not match:
        raise ValueError(f"{text!r} is not a ZIP code")
    return f"{match[1]}-{match[2]}" if match[2] else match[1]


US_STATES = frozenset(
    (
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "DC",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
        "PR",
        "VI",
        "GU",
        "AS",
        "MP",
        "AA",
        "AE",
        "AP",
    )
)


def normalise_state(text: str) -> str:
    value = text.upper().replace(".", "")
    if value not in US_STATES:
        raise ValueError(f"{text!r} is not a two-letter US state code")
    return value


# Languages households in US districts most often read, by code and by name.
LANGUAGE_NAMES = {
    "en": ("english", "eng", "inglés", "ingles"),
    "es": ("spanish", "spa", "español", "espanol", "castellano"),
    "zh": (
        "chinese",
        "zho",
        "chi",
        "mandarin",
        "cantonese",
        "中文",
        "zh-hans",
        "zh-hant",
        "zh-cn",
        "zh-tw",
    ),
    "vi": ("vietnamese", "vie", "tiếng việt"),
    "ar": ("arabic", "ara"),
    "tl": ("tagalog", "tgl", "filipino", "fil"),
    "ko": ("korean", "kor", "한국어"),
    "ru": ("russian", "rus", "русский"),
    "ht": ("haitian creole", "hat", "kreyòl"),
    "pt": ("portuguese", "por", "português"),
    "fr": ("french", "fra", "fre", "français"),
    "so": ("somali", "som"),
    "hmn": ("hmong",),
    "ja": ("japanese", "jpn", "日本語"),
    "hi": ("hindi", "hin"),
    "ur": ("urdu", "urd"),
    "fa": ("persian", "farsi", "fas", "per"),
    "uk": ("ukrainian", "ukr"),
    "pa": ("punjabi", "pan"),
    "bn": ("bengali", "ben"),
    "ne": ("nepali", "nep"),
    "am": ("amharic", "amh"),
    "sw": ("swahili", "swa"),
    "km": ("khmer", "khm"),
    "lo": ("lao", "lao"),
    "my": ("burmese", "mya", "bur"),
    "ps": ("pashto", "pus"),
    "de": ("german", "deu", "ger"),
    "it": ("italian", "ita"),
    "pl": ("polish", "pol"),
}
_LANGUAGE_ALIASES = {code: code for code in LANGUAGE_NAMES}
for _code, _names in LANGUAGE_NAMES.items():
    _LANGUAGE_ALIASES.update({name: _code for name in _names})


def normalise_language(text: str) -> str:
    """An ISO 639-1 code (``es``) from a code or a language name (``Spanish``)."""
    code = _LANGUAGE_ALIASES.get(text.lower())
    if code is None:
        raise ValueError(
            f"{text!r} is not a language this product knows; use a code such as en, es or zh"
        )
    return code


_RELATIONSHIPS = {
    "mother": "mother",
    "mom": "mother",
    "mum": "mother",
    "father": "father",
    "dad": "father",
    "guardian": "guardian",
    "legal guardian": "guardian",
    "grandparent": "grandparent",
    "grandmother": "grandparent",
    "grandfather": "grandparent",
    "other": "other",
}


def parse_relationship(text: str) -> str:
    value = _RELATIONSHIPS.get(text.lower())
    if value is None:
        raise ValueError(
            f"{text!r} is not a relationship; use mother, father, guardian, grandparent or other"
        )
    return value
