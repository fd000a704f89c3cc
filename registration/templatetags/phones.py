"""Phone numbers as a family reads them (``{{ number|phone }}``)."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings
from phonenumber_field.phonenumber import PhoneNumber
from phonenumbers import region_code_for_number

register = template.Library()


@register.filter
def phone(number: Any) -> str:
    """A number of the district's own country written the national way, "(650)
    555-0123", in every language (Spanish and Chinese readers in the United States
    write them so too); any other country's with its country code, "+52 55 1234
    5678", since its national form would read as a local number. An unparsable number
    is shown as stored."""
    if not isinstance(number, PhoneNumber) or not number:
        return str(number or "")
    if not number.is_valid():
        return str(number)
    if region_code_for_number(number) == settings.PHONENUMBER_DEFAULT_REGION:
        return str(number.as_national)
    return str(number.as_international)


def _help_number() -> PhoneNumber | None:
    number = (
        PhoneNumber.from_string(
            settings.DISTRICT_HELP_PHONE, region=settings.PHONENUMBER_DEFAULT_REGION
        )
        if settings.DISTRICT_HELP_PHONE
        else None
    )
    return number if number is not None and number.is_valid() else None


def help_phone() -> str:
    """The district's help line (``DISTRICT_HELP_PHONE``) written as ``phone`` writes
    every number families read; as set when it is not a valid number."""
    number = _help_number()
    return phone(number) if number is not None else settings.DISTRICT_HELP_PHONE


def help_phone_dial() -> str:
    """The help line for a ``tel:`` link: E.164, "+16505550100"."""
    number = _help_number()
    return (
        str(number.as_e164) if number is not None else settings.DISTRICT_HELP_PHONE.replace(" ", "")
    )
