"""What a person sees when something fails: a page in their language with an error
id, never the error itself; the log has the same id with everything else.

``ErrorIdMiddleware`` gives each unhandled exception an id and logs it there (Django
logs the traceback too, on ``django.request``); ``server_error`` is the project's
``handler500``. It renders ``500.html`` without context processors or the database
(the database may be what failed).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseServerError
from django.template.loader import render_to_string

from config.security_log import path_shown

log = logging.getLogger("errors")


def error_id_new() -> str:
    """Short enough to read over the phone: 10 hexadecimal digits in two groups."""
    raw = secrets.token_hex(5).upper()
    return f"{raw[:5]}-{raw[5:]}"


class ErrorIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        if isinstance(exception, (Http404, PermissionDenied)):
            # Answers, not failures: 404 and 403 pages, logged as refusals where they
            # are raised (``registration.access``, ``config.security_log``).
            return
        error_id = error_id_new()
        request.error_id = error_id  # type: ignore[attr-defined]
        log.error(
            "error %s: %s on %s %s",
            error_id,
            type(exception).__name__,
            request.method,
            path_shown(request),
            exc_info=exception,
        )


def server_error(request: HttpRequest) -> HttpResponse:
    error_id = getattr(request, "error_id", None) or error_id_new()
    return HttpResponseServerError(render_to_string("500.html", {"error_id": error_id}))
