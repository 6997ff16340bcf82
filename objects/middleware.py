"""The project's middleware.

DatabaseUnavailableMiddleware: a plain Django view (the shop, the admin) that loses the database or Redis
answers 503 with a clear message, not a 500: the policy of objects/api/errors.py (`unavailable`), which the
ingress and the management API answer by. An IntegrityError or a ProgrammingError is a bug and stays a 500.

IngressShortcutMiddleware: an ingress request (`/{OBJECTS_INGRESS_PREFIX}/...`) without a session cookie
goes from here straight to the ingress view, as the URL resolver would send it, without the middleware
after this one. None of them changes such a request's answer: the ingress authenticates by itself (DRF's
token and session authentication; with no session cookie there is no session user and no CSRF check),
catches its own errors (503 when the database is unavailable), is CSRF-exempt, and answers JSON the
static files, messages and trailing-slash redirects never touch. This middleware gives the answer the
Content-Length header CommonMiddleware would have added, and refuses a Host header not in ALLOWED_HOSTS as
CommonMiddleware would have (`host_refused`: a 400 in the ingress's shape). It sits after SecurityMiddleware and
XFrameOptionsMiddleware, so the answer has their headers. A request with a session cookie (the shop's
browser calls) takes the whole list. A token call or send is answered by `objects.api.ingress.token_ingress`
without DRF's dispatch (the same checks and answers), the rest by the DRF view. What it saves on every token
call: URL resolution, six middleware and DRF's dispatch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse

from . import conf
from .api.errors import unavailable
from .api.ingress import token_ingress
from .api.ingress_urls import ingress_view
from .api.responses import error_response

log = logging.getLogger("objects.middleware")
RETRY_AFTER = "5"
PAGE = (
    "<!doctype html><html lang=en><head><meta charset=utf-8><title>Service unavailable</title></head>"
    "<body><h1>Service unavailable</h1><p>{message}</p></body></html>"
)


_ALLOWED: dict[str, tuple[Any, bool]] = {}  # Host headers found allowed, with the ALLOWED_HOSTS and DEBUG of then


def host_refused(request: HttpRequest) -> HttpResponse | None:
    """The ingress's 400 for a Host header not in ALLOWED_HOSTS (Django's `get_host`, the check CommonMiddleware
    makes on every other request); None for an allowed host. Used by the event loop too (objects/asgi.py), so a
    Host header found allowed is remembered (a few hundred at most): then the check is one dictionary lookup."""
    host = request.META.get("HTTP_HOST")
    seen = (settings.ALLOWED_HOSTS, settings.DEBUG)
    found = _ALLOWED.get(host) if host is not None else None
    if found is not None and found[0] is seen[0] and found[1] == seen[1] and not settings.USE_X_FORWARDED_HOST:
        return None
    try:
        request.get_host()
    except DisallowedHost:
        return error_response(
            400, f"Invalid Host header {(host or '')[:100]!r}: this server does not answer to that host."
        )
    if host is not None and len(_ALLOWED) < 256:
        _ALLOWED[host] = seen
    return None


def wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "json" in accept or "html" not in accept or request.path.startswith("/api/")


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        message = unavailable(exception)
        if message is None:
            return None
        log.warning("%s %s: unavailable: %s", request.method, request.path, exception)
        if wants_json(request):
            response: HttpResponse = JsonResponse({"code": 503, "message": message, "source": "server"}, status=503)
        else:
            response = HttpResponse(PAGE.format(message=message), status=503, content_type="text/html; charset=utf-8")
        response["Retry-After"] = RETRY_AFTER
        return response


class IngressShortcutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.head = "/" + conf.get("OBJECTS_INGRESS_PREFIX").strip("/") + "/"
        self.view = ingress_view
        self.token_call = token_ingress

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if not path.startswith(self.head) or settings.SESSION_COOKIE_NAME in request.COOKIES:
            return self.get_response(request)
        rest = path[len(self.head) :]
        response = host_refused(request) or self.token_call(request, rest) or self.view(request, rest=rest)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        return response
