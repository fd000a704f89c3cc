"""Template context every page needs: the district's name and help contact."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def district(request: HttpRequest) -> dict[str, object]:
    return {
        "district": {
            "name": settings.DISTRICT_NAME,
            "short_name": settings.DISTRICT_SHORT_NAME,
            "help_email": settings.DISTRICT_HELP_EMAIL,
            "help_phone": settings.DISTRICT_HELP_PHONE,
            "website": settings.DISTRICT_WEBSITE,
        }
    }
