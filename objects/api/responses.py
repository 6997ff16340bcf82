"""Ingress responses in Restate's shapes: raw call output, send acknowledgements, and errors.

Errors are `{"code", "message", "source"}` with the header `x-restate-error-source` carrying the same
source: "invocation" for a handler's terminal failure (Restate's client never retries those), "ingress"
for everything the ingress refused itself.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.http import HttpResponse

ERROR_SOURCE_HEADER = "x-restate-error-source"
ID_HEADER = "x-restate-id"
NOT_READY = 470


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def output_response(output: Any, invocation_id: str) -> HttpResponse:
    """200 with the handler's output as the body; an empty body (no Content-Type) for None."""
    if output is None:
        response = HttpResponse(b"", status=200)
        del response["Content-Type"]
    else:
        response = HttpResponse(_json(output).encode(), status=200, content_type="application/json")
    response[ID_HEADER] = invocation_id
    return response


def send_response(invocation_id: str, *, created: bool, execution_time: datetime | None) -> HttpResponse:
    body: dict[str, Any] = {"invocationId": invocation_id, "status": "Accepted" if created else "PreviouslyAccepted"}
    if execution_time is not None:
        body["executionTime"] = execution_time.isoformat().replace("+00:00", "Z")
    response = HttpResponse(_json(body).encode(), status=202, content_type="application/json")
    response[ID_HEADER] = invocation_id
    return response


def error_response(
    status: int, message: str, *, source: str = "ingress", invocation_id: str | None = None
) -> HttpResponse:
    body: dict[str, Any] = {"code": status, "message": message, "source": source}
    if invocation_id:
        body["invocationId"] = invocation_id
    response = HttpResponse(_json(body).encode(), status=status, content_type="application/json")
    response[ERROR_SOURCE_HEADER] = source
    if invocation_id:
        response[ID_HEADER] = invocation_id
    return response


def http_status(code: Any) -> int:
    """A terminal error's code as the HTTP status when it is an error status, else 500 (as Restate does)."""
    return code if isinstance(code, int) and 400 <= code <= 599 else 500
