"""The project's URLs plus one that fails, for the error page tests."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import handler500
from config.urls import urlpatterns as project_urlpatterns


def fails(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("secret-internal-detail: column guardians.ssn does not exist")


urlpatterns = [path("fails/", fails), *project_urlpatterns]

__all__ = ["handler500", "urlpatterns"]
