"""Who may open which page. Staff pages check role here; what a member of staff may
see inside a page is decided by the ``*_visible_to`` selectors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from config.security_log import path_shown
from registration.models import StaffProfile
from registration.selectors import staff_profile_for
from registration.throttle import client_ip

security_log = logging.getLogger("security")

View = Callable[..., HttpResponse]


def log_refusal(request: HttpRequest, reason: str) -> None:
    """Who was refused what, and from where; never what they typed."""
    request.refusal_logged = True  # type: ignore[attr-defined]  # logged once, with a reason
    security_log.warning(
        "refused: %s; user %s, path %s, ip %s",
        reason,
        request.user.pk,
        path_shown(request),
        client_ip(request),
    )


def refuse(request: HttpRequest, reason: str) -> PermissionDenied:
    """Log the refusal and return the exception to raise."""
    log_refusal(request, reason)
    return PermissionDenied(reason)


def is_staff_member(user: Any) -> bool:
    """Superusers, admin users, and people with an enabled staff profile."""
    if not user.is_authenticated:
        return False
    if user.is_superuser or user.is_staff:
        return True
    profile = staff_profile_for(user)
    return profile is not None and profile.enabled


def has_totp(user: Any) -> bool:
    return is_mfa_enabled(user, [Authenticator.Type.TOTP])


def staff_required(*roles: str) -> Callable[[View], View]:
    """Signed-in staff (with a second factor, see ``StaffMFAMiddleware``) whose role
    is one of ``roles`` (any role when none are given; superusers always)."""

    def decorator(view: View) -> View:
        @wraps(view)
        @login_required
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            user = request.user
            if not is_staff_member(user):
                raise refuse(request, "not staff")
            if roles and not user.is_superuser:
                profile = staff_profile_for(user)  # type: ignore[arg-type]
                if profile is None or profile.role not in roles or not profile.enabled:
                    raise refuse(request, "role not allowed")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


REGISTRAR = StaffProfile.Role.REGISTRAR
OFFICE = StaffProfile.Role.OFFICE


class StaffMFAMiddleware:
    """Staff enrol an authenticator app before they open any staff page or the admin."""

    PREFIXES = ("/staff/", "/admin/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path
        if (
            path.startswith(self.PREFIXES)
            and not path.startswith(("/admin/login", "/admin/logout"))
            and is_staff_member(request.user)
            and not has_totp(request.user)
        ):
            target = reverse("mfa_activate_totp")
            return redirect(f"{target}?{urlencode({'next': path})}")
        return self.get_response(request)
