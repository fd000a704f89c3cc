"""A failure shows the person a page in their language with an error id and nothing
of the error; the log has the same id and the details."""

from __future__ import annotations

import logging
import re

import pytest
from django.test import Client

pytestmark = pytest.mark.urls("tests.config.error_urls")


def test_a_failure_shows_an_error_id_and_no_internals(db, caplog):
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="errors"):
        response = client.get("/fails/", HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 500
    html = response.content.decode()
    assert "secret-internal-detail" not in html and "RuntimeError" not in html
    assert '<html lang="es">' in html and "Algo salió mal" in html
    shown = re.search(r"<strong>([0-9A-F]{5}-[0-9A-F]{5})</strong>", html)
    assert shown is not None
    (record,) = [r for r in caplog.records if r.name == "errors"]
    assert shown.group(1) in record.getMessage()
    assert "RuntimeError on GET /fails/" in record.getMessage()
    assert record.exc_info is not None


def test_a_refusal_is_an_answer_not_an_error(db, client, caplog):
    with caplog.at_level(logging.ERROR, logger="errors"):
        assert client.get("/refuses/").status_code == 403
        assert client.get("/not-there/").status_code == 404
    assert [r for r in caplog.records if r.name == "errors"] == []


def test_a_page_that_is_not_there_is_a_page_of_the_product(db, client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
    assert "Skip to main content" in response.content.decode()  # the site's frame
