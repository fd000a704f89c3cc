"""The product's date and time formats (``config/formats``): English times as
"5:17 PM" (Django's "5:17 p.m." doubled the full stop of a sentence that ends with a
time), Django's own formats elsewhere, and a day with its weekday as each language
writes it."""

from __future__ import annotations

import datetime
from importlib import import_module

import pytest
from django.conf import settings
from django.utils import formats, translation
from django.utils.translation import to_locale

MOMENT = datetime.datetime(2026, 11, 29, 17, 17)
UNCHANGED = ("DATE_FORMAT", "SHORT_DATE_FORMAT", "YEAR_MONTH_FORMAT", "MONTH_DAY_FORMAT")


def shown(language: str, format_name: str) -> str:
    with translation.override(language):
        return formats.date_format(MOMENT, format_name)


def test_english_times_end_with_am_or_pm_and_dates_stay_as_they_were():
    assert shown("en", "TIME_FORMAT") == "5:17 PM"
    assert shown("en", "DATETIME_FORMAT") == "Nov. 29, 2026, 5:17 PM"
    assert shown("en", "SHORT_DATETIME_FORMAT") == "11/29/2026 5:17 PM"
    assert shown("en", "DATE_FORMAT") == "Nov. 29, 2026"
    with translation.override("en"):
        assert formats.time_format(datetime.time(0, 5), "TIME_FORMAT") == "12:05 AM"
        assert formats.time_format(datetime.time(12, 0), "TIME_FORMAT") == "12:00 PM"


@pytest.mark.parametrize("language", ["es", "zh-hans"])
def test_spanish_and_chinese_keep_djangos_formats(language):
    django_module = import_module(f"django.conf.locale.{to_locale(language)}.formats")
    for name in ("TIME_FORMAT", "DATETIME_FORMAT", "SHORT_DATETIME_FORMAT", *UNCHANGED):
        with translation.override(language):
            assert formats.get_format(name) == getattr(django_module, name), name
    assert shown("es", "DATETIME_FORMAT") == "29 de noviembre de 2026 a las 17:17"
    assert shown("zh-hans", "DATETIME_FORMAT") == "2026年11月29日 17:17"


def test_english_dates_keep_djangos_formats():
    django_module = import_module("django.conf.locale.en.formats")
    for name in UNCHANGED:
        with translation.override("en"):
            assert formats.get_format(name) == django_module.__dict__[name], name


@pytest.mark.parametrize("language", [code for code, _name in settings.LANGUAGES])
@pytest.mark.parametrize("name", ["WEEKDAY_DATE_FORMAT", "WEEKDAY_DATETIME_FORMAT"])
def test_every_language_has_the_products_own_formats(language, name):
    # A name no format module defines would be read as a format string itself.
    with translation.override(language):
        assert formats.get_format(name) != name
