"""Every string a guardian can see is translated: `python manage.py makemessages -a`,
run as a translator runs it over a fresh clone (every app, the tests and the tools
included), finds nothing untranslated and nothing fuzzy in the catalogues."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LANGUAGES = ("es", "zh_Hans")
# What a fresh clone does not have: git's own files, the virtualenv, caches, var/ and
# compiled catalogues. makemessages skips directories whose names start with a dot.
NOT_IN_A_CLONE = shutil.ignore_patterns(".*", "var", "__pycache__", "*.egg-info", "*.mo")


@pytest.fixture(scope="module")
def fresh_catalogues(tmp_path_factory):
    copy = tmp_path_factory.mktemp("clone") / "main"
    shutil.copytree(ROOT, copy, ignore=NOT_IN_A_CLONE)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    # As a translator runs it: every catalogue of locale/ brought up to date at once,
    # from every file of the project (a msgid in a test or a tool counts too).
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-a", "--no-obsolete"],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
    )
    return copy / "locale"


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_string_is_untranslated_or_fuzzy(fresh_catalogues, language):
    catalogue = fresh_catalogues / language / "LC_MESSAGES" / "django.po"
    result = subprocess.run(
        ["msgfmt", "--statistics", "-o", os.devnull, str(catalogue)],
        capture_output=True,
        text=True,
        check=True,
    )
    statistics = result.stderr.strip()
    assert re.fullmatch(r"\d+ translated messages?\.", statistics), (
        statistics,
        _untranslated_or_fuzzy(catalogue),
    )


def _untranslated_or_fuzzy(catalogue: Path) -> list[str]:
    """The msgids of ``catalogue`` that are untranslated or fuzzy, with where they are."""
    found = []
    for flag in ("--untranslated", "--only-fuzzy"):
        listed = subprocess.run(
            ["msgattrib", flag, "--no-wrap", "--no-obsolete", str(catalogue)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        found += re.findall(r"^(#: .+\n(?:#.*\n)*msgid .+)$", listed, flags=re.M)
    return found


@pytest.mark.parametrize("language", LANGUAGES)
def test_format_fields_survive_translation(language):
    text = (ROOT / "locale" / language / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8")
    for msgid, msgstr in re.findall(r'msgid "(.+)"\nmsgstr "(.+)"', text):
        assert sorted(re.findall(r"%\(\w+\)s", msgid)) == sorted(
            re.findall(r"%\(\w+\)s", msgstr)
        ), msgid


def test_every_language_of_the_site_is_checked():
    from django.conf import settings
    from django.utils.translation import to_locale

    spoken = {to_locale(code) for code, _name in settings.LANGUAGES} - {"en"}
    assert spoken == set(LANGUAGES)
    for language in LANGUAGES:
        assert (ROOT / "locale" / language / "LC_MESSAGES" / "django.po").is_file()
