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
