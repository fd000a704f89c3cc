"""Every string a guardian can see is translated: a fresh `makemessages` over the
source finds nothing untranslated and nothing fuzzy in the catalogues."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("config", "registration", "workflow", "payments", "documents", "templates", "locale")
LANGUAGES = ("es", "zh_Hans")


@pytest.fixture(scope="module")
def fresh_catalogues(tmp_path_factory):
    copy = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        shutil.copytree(
            ROOT / name,
            copy / name,
            ignore=shutil.ignore_patterns("__pycache__", "*.mo", "migrations"),
        )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    # As a translator runs it: every catalogue of locale/ brought up to date at once.
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-a", "--no-obsolete"],
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
    assert re.fullmatch(r"\d+ translated messages?\.", statistics), statistics


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
