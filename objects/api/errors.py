"""Exceptions as HTTP answers: one policy for the ingress (on the threads and on the event loop), the
management API and the pages.

`error_answer` is the answer to any exception: the framework's errors and DRF's refusals with their own
status; a connection-level failure of the database or of Redis (`unavailable`) is a 503 that says so; any
other exception is a bug, a 500 logged with its traceback. Every body has the ingress's shape
`{"code", "message", "source"}`. `exception_handler` is DRF's EXCEPTION_HANDLER for the management API: a
validation error there also carries DRF's per-field detail as `errors`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import redis
from django.core.exceptions import PermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..errors import ObjectsError
from .responses import error_response, http_status

log = logging.getLogger("objects.api")

DATABASE_UNAVAILABLE = "The database is unavailable; retry shortly."
REDIS_UNAVAILABLE = "Redis is unavailable; retry shortly."
try:
    from psycopg import InterfaceError as PsycopgInterfaceError
    from psycopg import OperationalError as PsycopgOperationalError
except ImportError:  # SQLite without the `postgres` extra: Django's own classes are the database's errors
    _PSYCOPG: tuple[type[Exception], ...] = ()
else:
    _PSYCOPG = (PsycopgOperationalError, PsycopgInterfaceError)
_DATABASE: tuple[type[Exception], ...] = (OperationalError, InterfaceError, *_PSYCOPG)
_REDIS = (redis.ConnectionError, redis.TimeoutError)


def unavailable(exc: BaseException) -> str | None:
    """The message for a connection-level failure (the server down or restarting, a lost connection, a lock
    or statement timeout, the loop's pool busy), None for anything else: an IntegrityError or a
    ProgrammingError is a bug, not an outage. A failure that names its own wait (the loop's busy pool)
    keeps its own words."""
    if isinstance(exc, _DATABASE):
        return str(exc) if getattr(exc, "wait", None) is not None else DATABASE_UNAVAILABLE
    if isinstance(exc, _REDIS):
        return REDIS_UNAVAILABLE
    return None


def _retry_after(response: HttpResponse, exc: BaseException) -> HttpResponse:
    wait = getattr(exc, "wait", None)  # RateLimited (429), WaitsBusy (503), the loop's PoolBusy (503)
    if wait is not None:
        response["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


def error_answer(exc: Exception, *, invocation_id: str | None = None) -> HttpResponse:
    """The answer to `exc`, in the ingress's shape; `invocation_id`: the invocation it happened to, when
    there is one (a call's wait), named in the body and the `x-restate-id` header."""
    if isinstance(exc, ObjectsError):
        status = http_status(exc.status_code) if exc.source == "invocation" else exc.status_code
        return error_response(status, exc.message, source=exc.source, invocation_id=invocation_id)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        response = error_response(401, str(exc.detail))
        response["WWW-Authenticate"] = 'Token realm="api"'
        return response
    if isinstance(exc, exceptions.APIException):
        response = error_response(exc.status_code, str(exc.detail), source=getattr(exc, "source", "ingress"))
        allowed = getattr(exc, "allowed", None)  # the ingress's 405 names the method the path takes
        if allowed is not None:
            response["Allow"] = allowed
        return _retry_after(response, exc)
    message = unavailable(exc)
    if message is not None:
        log.warning("request failed, a service is unavailable: %s: %s", type(exc).__name__, exc)
        return _retry_after(error_response(503, message, invocation_id=invocation_id), exc)
    log.error("request failed: unexpected error", exc_info=exc)
    return error_response(
        500, f"Internal error ({type(exc).__name__}); see the server log.", invocation_id=invocation_id
    )


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        return [line for name, value in detail.items() for line in _flatten(value, f"{prefix}{name}.")]
    if isinstance(detail, list):
        return [line for item in detail for line in _flatten(item, prefix)]
    label = prefix.rstrip(".")
    return [f"{label}: {detail}" if label and label != "non_field_errors" else str(detail)]


def exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    """DRF's EXCEPTION_HANDLER: DRF's own refusals through DRF (its headers, its rollback), the rest as
    `error_answer`. Django's Http404 and PermissionDenied are DRF's 404 and 403, as DRF's handler makes them (DRF
    raises Http404 itself for a format suffix no renderer has: `/api/instances/0.25/` is instance 0 as "25")."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    if not isinstance(exc, exceptions.APIException):
        return error_answer(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    body: dict[str, Any] = {
        "code": response.status_code,
        "message": "; ".join(_flatten(exc.detail)),
        "source": "ingress",
    }
    if isinstance(exc, exceptions.ValidationError):
        body["errors"] = exc.detail
    assert isinstance(response, Response)
    response.data = body
    return response
