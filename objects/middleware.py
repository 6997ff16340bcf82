"""DatabaseUnavailableMiddleware: a view that loses the database answers 503 with a clear message, not a 500.

DRF views get the same mapping from objects/api/errors.py; this covers plain Django views (the shop, the
admin). Only connection-level errors (OperationalError, InterfaceError: server down, restarting, a lock
timeout) are mapped; an IntegrityError or a ProgrammingError is a bug and stays a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

log = logging.getLogger("objects.middleware")
MESSAGE = "The database is unavailable; retry shortly."
RETRY_AFTER = "5"
PAGE = (
    "<!doctype html><html lang=en><head><meta charset=utf-8><title>Service unavailable</title></head>"
    f"<body><h1>Service unavailable</h1><p>{MESSAGE}</p></body></html>"
)


def wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "json" in accept or "html" not in accept or request.path.startswith("/api/")


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        log.warning("%s %s: database unavailable: %s", request.method, request.path, exception)
        if wants_json(request):
            response: HttpResponse = JsonResponse({"code": 503, "message": MESSAGE, "source": "server"}, status=503)
        else:
            response = HttpResponse(PAGE, status=503, content_type="text/html; charset=utf-8")
        response["Retry-After"] = RETRY_AFTER
        return response
