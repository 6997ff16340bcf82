"""DatabaseUnavailableMiddleware maps a lost database to 503 with a clear message and leaves bugs as 500s."""

from __future__ import annotations

import json

from django.db import IntegrityError, InterfaceError, OperationalError
from django.http import HttpResponse
from django.test import RequestFactory

from objects.middleware import DatabaseUnavailableMiddleware

middleware = DatabaseUnavailableMiddleware(lambda request: HttpResponse("ok"))


def test_lost_connection_in_a_page_is_a_503_html_page_for_browsers():
    request = RequestFactory().get("/", HTTP_ACCEPT="text/html,application/xhtml+xml")
    response = middleware.process_exception(request, OperationalError("connection refused"))
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response["Content-Type"].startswith("text/html")
    assert b"The database is unavailable; retry shortly." in response.content
    assert b"connection refused" not in response.content, "the driver's message is for the log, not the visitor"


def test_lost_connection_is_a_503_json_error_for_api_clients():
    request = RequestFactory().get("/cart/json/", HTTP_ACCEPT="application/json")
    response = middleware.process_exception(request, InterfaceError("connection already closed"))
    assert response.status_code == 503
    assert json.loads(response.content) == {
        "code": 503,
        "message": "The database is unavailable; retry shortly.",
        "source": "server",
    }


def test_integrity_error_is_not_disguised_as_an_outage():
    request = RequestFactory().post("/cart/add/")
    assert middleware.process_exception(request, IntegrityError("duplicate key")) is None
    assert middleware.process_exception(request, ValueError("bug")) is None
