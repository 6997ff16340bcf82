"""One exception handler maps errors to HTTP responses (DRF's EXCEPTION_HANDLER).

Every error body has the ingress' shape, `{"code", "message", "source"}`; a validation error adds
`errors` (DRF's per-field detail) and folds the field messages into `message`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..errors import ObjectsError

log = logging.getLogger("objects.api")


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    if isinstance(detail, dict):
        return [line for name, value in detail.items() for line in _flatten(value, f"{prefix}{name}.")]
    if isinstance(detail, list):
        return [line for item in detail for line in _flatten(item, prefix)]
    label = prefix.rstrip(".")
    return [f"{label}: {detail}" if label and label != "non_field_errors" else str(detail)]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ObjectsError):
        return Response({"code": exc.status_code, "message": exc.message, "source": exc.source}, status=exc.status_code)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # Connection-level errors only (server down or restarting, a lock timeout): a query bug stays a 500.
        log.warning("API request failed on the database: %s", exc)
        return Response(
            {"code": 503, "message": "The database is unavailable; retry shortly.", "source": "ingress"}, status=503
        )
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    body: dict[str, Any] = {
        "code": response.status_code,
        "message": "; ".join(_flatten(exc.detail)),
        "source": "ingress",
    }
    if isinstance(exc, exceptions.ValidationError):
        body["errors"] = exc.detail
    response.data = body
    return response
