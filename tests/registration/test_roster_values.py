"""Reading cells the way districts actually write them."""

from __future__ import annotations

import datetime

import pytest

from registration.grades import grade_in_range, grade_next
from registration.roster import values


@pytest.mark.parametrize(
    "text",
    [
        "(650) 555-0123",
        "650-555-0123",
        "650.555.0123",
        "6505550123",
        "650 555 0123",
        "+1 650 555 0123",
        "1-650-555-0123",
        "1 (650) 555-0123",
        "+1.650.555.0123",
        "650-555-0123 x12",
        "650-555-0123 ext. 12",
        " (650)555-0123 ",
    ],
)
def test_us_phone_numbers_in_every_common_format_become_e164(text):
    assert values.normalise_phone(text.strip()) == "+16505550123"


@pytest.mark.parametrize("text", ["555-0123", "n/a", "0000000000", "123", "(650) 555-01"])
def test_what_is_not_a_phone_number_is_refused(text):
    with pytest.raises(ValueError):
        values.normalise_phone(text)


def test_an_international_number_keeps_its_country():
    assert values.normalise_phone("+52 55 1234 5678") == "+525512345678"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("95201", "95201"),
        ("95201-1234", "95201-1234"),
        ("952011234", "95201-1234"),
        ("2134", "02134"),
        ("02134", "02134"),
        ("2134-5678", "02134-5678"),
    ],
)
def test_zip_codes(text, expected):
    assert values.normalise_postal_code(text) == expected


@pytest.mark.parametrize("text", ["9520", "ABCDE", "95201-12", "123"])
def test_bad_zip_codes(text):
    if text == "9520":
        assert values.normalise_postal_code(text) == "09520"
    else:
        with pytest.raises(ValueError):
            values.normalise_postal_code(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("en", "en"),
        ("EN", "en"),
        ("English", "en"),
        ("Spanish", "es"),
        ("español", "es"),
        ("Español", "es"),
        ("spa", "es"),
        ("Chinese", "zh"),
        ("zh-Hans", "zh"),
        ("Vietnamese", "vi"),
        ("Tiếng Việt", "vi"),
    ],
)
def test_languages_by_code_or_name(text, expected):
    assert values.normalise_language(text) == expected


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError, match="is not a language this product knows"):
        values.normalise_language("Klingon")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("K", "KG"),
        ("kg", "KG"),
        ("KG", "KG"),
        ("1", "01"),
        ("01", "01"),
        ("12", "12"),
        ("tk", "TK"),
        ("PK", "PK"),
    ],
)
def test_grades(text, expected):
    assert values.parse_grade(text) == expected


def test_grade_promotion_and_ranges():
    assert grade_next("KG") == "01"
    assert grade_next("05") == "06"
    assert grade_next("12") is None
    assert grade_next("UG") is None
    assert grade_in_range("03", "KG", "05")
    assert not grade_in_range("06", "KG", "05")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("1", True),
        ("false", False),
        ("No", False),
        ("0", False),
    ],
)
def test_booleans(text, expected):
    assert values.parse_bool(text) is expected


def test_dates_must_be_iso():
    assert values.parse_date("2020-02-29") == datetime.date(2020, 2, 29)
    for bad in ("2021-02-29", "02/29/2020", "2020-2-29x"):
        with pytest.raises(ValueError, match="is not a date in the form YYYY-MM-DD"):
            values.parse_date(bad)


def test_email_domains_are_lowercased_and_local_parts_kept():
    assert values.normalise_email("Siobhan.OBrien@Example.COM") == "Siobhan.OBrien@example.com"
    with pytest.raises(ValueError):
        values.normalise_email("maria at example.com")


def test_relationships():
    assert values.parse_relationship("Mom") == "mother"
    assert values.parse_relationship("Grandfather") == "grandparent"
    with pytest.raises(ValueError, match="use mother, father, guardian, grandparent or other"):
        values.parse_relationship("neighbour")


def test_the_north_american_shortcut_reads_numbers_as_phonenumbers_does():
    """Numbers written the usual North American ways skip ``phonenumbers.parse``: the
    result, and whether the number is refused, must be the same as parsing gives."""
    import random

    import phonenumbers

    def parsed(text: str) -> str | None:
        try:
            number = phonenumbers.parse(text, "US")
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(number):
            return None
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def shortcut(text: str) -> str | None:
        values.normalise_phone.cache_clear()
        try:
            return values.normalise_phone(text)
        except ValueError:
            return None

    shapes = [
        "({a}) {b}-{c}",
        "{a}-{b}-{c}",
        "{a}.{b}.{c}",
        "{a}{b}{c}",
        "1-{a}-{b}-{c}",
        "+1 {a} {b} {c}",
        "+1({a}){b}-{c}",
        "1 ({a}) {b} {c}",
    ]
    rng = random.Random(2027)
    taken = 0
    for _ in range(3000):
        a = f"{rng.randint(0, 999):03d}"
        b = f"{rng.randint(0, 999):03d}"
        c = f"{rng.randint(0, 9999):04d}"
        text = rng.choice(shapes).format(a=a, b=b, c=c)
        taken += values._NANP_TEXT.fullmatch(text) is not None
        assert shortcut(text) == parsed(text), text
    assert taken > 2000  # most of them went the short way
    # Valid in another country of +1 (Canada, Jamaica, Puerto Rico), not in the US:
    # still valid, though the United States' check alone says no.
    for text in ("(416) 555-0123", "+1 876 555 0123", "787-555-0123"):
        assert shortcut(text) == parsed(text) == "+1" + "".join(filter(str.isdigit, text))[-10:]
    # Not North American: parsed as before.
    assert shortcut("+52 55 1234 5678") == "+525512345678"


@pytest.mark.parametrize("accented", [False, True])
def test_cells_are_trimmed_and_composed_whether_or_not_the_file_is_plain_ascii(accented):
    """A file of plain ASCII takes a shorter way through the reader; both ways trim
    every cell and write accented letters the one way (NFC) the database compares."""
    from registration.roster.reader import Problems, parse_csv

    decomposed = "Jose\u0301"  # "José" typed as e + a combining accent
    other = decomposed if accented else "Jose"
    text = f"sourcedId,givenName\n stu-1 , {other} \nstu-2,\tAnn\n"
    rows = parse_csv("users.csv", text, ("sourcedId", "givenName"), Problems())
    assert rows is not None
    assert [(r["sourcedId"], r["givenName"]) for r in rows] == [
        ("stu-1", "Jos\u00e9" if accented else "Jose"),
        ("stu-2", "Ann"),
    ]
