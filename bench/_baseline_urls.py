"""The baseline of ``bench/wizard.py``: the least a signed-in request that writes can
cost in this project. One view behind the project's whole middleware stack (session,
authentication, CSRF, messages, locale, the staff-MFA check, history) that reads the
session and writes one row. Not a benchmark itself: bench/run.py skips ``_`` files."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from workflow.models import AuditEvent


def minimal(request: HttpRequest) -> HttpResponse:
    request.session.get("wizard_step")
    AuditEvent.objects.create(
        action=AuditEvent.Action.CHANGE, object_type="bench.baseline", actor_label="bench"
    )
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [path("minimal/", minimal)]
