"""Template context every page needs: the district's name and help contact."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from registration.templatetags.phones import help_phone, help_phone_dial


def district(request: HttpRequest) -> dict[str, object]:
    return {
        "district": {
            "name": settings.DISTRICT_NAME,
            "short_name": settings.DISTRICT_SHORT_NAME,
            "help_email": settings.DISTRICT_HELP_EMAIL,
            "help_phone": help_phone(),
            "help_phone_dial": help_phone_dial(),
            "website": settings.DISTRICT_WEBSITE,
        }
    }


def staff_role(request: HttpRequest) -> dict[str, object]:
    """The signed-in staff member's role, looked up only by pages that ask for it."""

    def role() -> str:
        from registration.selectors import staff_profile_for

        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return ""
        if user.is_superuser:
            return "superuser"
        profile = staff_profile_for(user)
        return profile.role if profile is not None else ""

    return {
        "staff_role": SimpleLazyObject(role),
        "session": {
            "idle_seconds": settings.SESSION_COOKIE_AGE,
            "warning_seconds": settings.SESSION_EXPIRY_WARNING_SECONDS,
        },
    }
