"""The security log: every failed sign-in, failed second factor, CSRF failure and
refused request, with who (the account's id, never what was typed), from where (the
visitor's address) and when (the log line's time).

Passwords, codes, tokens and the email typed at sign-in never reach it: a password
typed into the email box must not end up in a log file. Activation failures are
logged by ``registration.services``; refusals with a reason by
``registration.access.log_refusal``; ``RefusalLogMiddleware`` logs every other 403,
404 and 429 so that no refusal goes unrecorded, and the password reset and email
confirmation keys it refuses with a page of their own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from allauth.mfa.signals import authentication_failed as second_factor_failed
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_login_failed
from django.db.models import Q
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from registration.throttle import client_ip

log = logging.getLogger("security")
refused_log = logging.getLogger("security.refused")

REFUSED_STATUSES = {403, 404, 429}
# Pages that answer a wrong, used or expired key with a page of their own (200, "this
# link is invalid") rather than a refusal: URL name -> (what the key is for, whether
# the page's context is that answer).
_KEY_PAGES: dict[str, tuple[str, Callable[[dict[str, Any]], bool]]] = {
    "account_reset_password_from_key": (
        "password reset",
        lambda context: bool(context.get("token_fail")),
    ),
    "account_confirm_email": (
        "email confirmation",
        lambda context: "confirmation" in context and not context["confirmation"],
    ),
}
# Path segments that carry a secret (password reset and email confirmation keys).
_SECRET_IN_PATH = re.compile(r"(/(?:key|confirm-email)/)[^/]+")


def path_shown(request: HttpRequest) -> str:
    """The path without its query string, with any key in it masked, and with what
    cannot be printed escaped: a line break in a URL must not write a line of its
    own (a forged entry) into the log."""
    return log_safe(_SECRET_IN_PATH.sub(r"\1…", request.path))


def log_safe(text: str) -> str:
    """``text`` with line breaks and other characters that cannot be printed (bidi
    controls included) written as escapes."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _account(user: Any) -> str:
    return str(user.pk) if user is not None and getattr(user, "is_authenticated", False) else "-"


@receiver(user_login_failed, dispatch_uid="security_log_sign_in_failed")
def sign_in_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    """A wrong password, or an address no account has. The account is looked up by
    what was typed and only its id is logged."""
    typed = str(credentials.get("email") or credentials.get("username") or "").strip()
    account = (
        get_user_model()
        .objects.filter(Q(email__iexact=typed) | Q(username=typed))
        .values_list("pk", flat=True)
        .first()
        if typed
        else None
    )
    log.warning(
        "sign-in failed: account %s; ip %s, path %s",
        account if account is not None else "unknown",
        client_ip(request) if request is not None else "-",
        path_shown(request) if request is not None else "-",
    )


@receiver(second_factor_failed, dispatch_uid="security_log_second_factor_failed")
def second_factor_refused(
    sender: Any,
    request: HttpRequest | None,
    user: Any,
    authenticator: Any,
    reauthentication: bool = False,
    **kwargs: Any,
) -> None:
    log.warning(
        "second factor failed: account %s, %s%s; ip %s",
        user.pk if user is not None else "-",
        authenticator.type,
        " (confirming a sensitive action)" if reauthentication else "",
        client_ip(request) if request is not None else "-",
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: log who and why (Django's reason names what was missing,
    never the token), and explain in the visitor's language what to do."""
    log.warning(
        "refused: CSRF check failed (%s); user %s, path %s, ip %s",
        reason,
        _account(getattr(request, "user", None)),
        path_shown(request),
        client_ip(request),
    )
    request.refusal_logged = True  # type: ignore[attr-defined]
    return render(request, "403_csrf.html", status=403)


def _key_refused(request: HttpRequest, response: HttpResponse) -> str:
    """What the key was for, when ``response`` is a page refusing a key sent by email;
    otherwise ""."""
    match = getattr(request, "resolver_match", None)
    context = getattr(response, "context_data", None)
    if match is None or not isinstance(context, dict) or match.url_name not in _KEY_PAGES:
        return ""
    purpose, refused = _KEY_PAGES[match.url_name]
    return purpose if refused(context) else ""


class RefusalLogMiddleware:
    """Logs each 403, 404 and 429 response that no view logged with its reason, and
    each key sent by email (password reset, email confirmation) that was refused."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code in REFUSED_STATUSES and not getattr(
            request, "refusal_logged", False
        ):
            refused_log.warning(
                "refused: %s %s %s; user %s, ip %s",
                response.status_code,
                request.method,
                path_shown(request),
                _account(getattr(request, "user", None)),
                client_ip(request),
            )
        elif response.status_code == 200 and (purpose := _key_refused(request, response)):
            log.warning(
                "key refused: %s; user %s, path %s, ip %s",
                purpose,
                _account(getattr(request, "user", None)),
                path_shown(request),
                client_ip(request),
            )
        return response
