"""The URLs of the stack ``bench/load.py`` runs: every URL of the product, and the
baseline at ``/bench/minimal/``, the least a signed-in page and its form can cost in
this project behind the whole middleware stack. Not a benchmark: bench/run.py skips
``_`` files."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.urls import path

from bench._baseline_urls import minimal
from config.urls import urlpatterns as product_urlpatterns


def minimal_step(request: HttpRequest) -> HttpResponse:
    """GET reads the session and answers the form's CSRF token; POST is the wizard
    benchmark's minimal view (reads the session, writes one row). Both refuse a
    visitor who is not signed in, as the wizard does."""
    if not request.user.is_authenticated:
        return HttpResponse(b"sign in first", status=403, content_type="text/plain")
    if request.method == "POST":
        return minimal(request)
    request.session.get("wizard_step")
    return HttpResponse(get_token(request).encode(), content_type="text/plain")


urlpatterns = [path("bench/minimal/", minimal_step), *product_urlpatterns]
