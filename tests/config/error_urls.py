"""The project's URLs plus one that fails, for the error page tests."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path

from config.urls import handler500
from config.urls import urlpatterns as project_urlpatterns


def fails(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret-internal-detail: column guardians.ssn does not exist")


def refuses(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied


def not_there(request: HttpRequest) -> HttpResponse:
    raise Http404


urlpatterns = [
    path("fails/", fails),
    path("refuses/", refuses),
    path("not-there/", not_there),
    *project_urlpatterns,
]

__all__ = ["handler500", "urlpatterns"]
