"""One exception handler maps framework errors to HTTP responses (DRF's EXCEPTION_HANDLER)."""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..errors import ObjectsError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ObjectsError):
        return Response({"code": exc.status_code, "message": exc.message, "source": exc.source}, status=exc.status_code)
    if isinstance(exc, DatabaseError):
        return Response(
            {"code": 503, "message": "The database is unavailable; retry shortly.", "source": "ingress"}, status=503
        )
    return drf_exception_handler(exc, context)
