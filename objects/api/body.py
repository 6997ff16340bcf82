"""Request bodies on the ingress: the size limit and strict JSON (no NaN, no NUL, bounded depth)."""

from __future__ import annotations

import json
import math
from typing import Any

from django.core.exceptions import RequestDataTooBig
from rest_framework.parsers import BaseParser

from .. import conf
from ..errors import InvalidInput, PayloadTooLarge

MAX_DEPTH = 64


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def body_read(request) -> bytes:
    """The raw body, refusing one over OBJECTS_MAX_BODY_BYTES (413) before reading it when the length is known."""
    limit = conf.get("OBJECTS_MAX_BODY_BYTES")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise InvalidInput("Bad Content-Length header.") from None
    if declared > limit:
        raise PayloadTooLarge(f"The body is {declared} bytes; the limit is {limit} bytes.")
    try:
        body = request.body
    except RequestDataTooBig:
        raise PayloadTooLarge(f"The body is over the limit of {limit} bytes.") from None
    if len(body) > limit:  # a body without a declared length (chunked), read up to just over the limit
        raise PayloadTooLarge(f"The body is over the limit of {limit} bytes.")
    return body


def json_parse(body: bytes) -> Any:
    """Decode a JSON body; an empty body is None. Anything the database could not store is a 400."""
    if not body.strip():
        return None
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float)
    except UnicodeDecodeError:
        raise InvalidInput("Malformed JSON: the body is not valid UTF-8.") from None
    except RecursionError:
        raise InvalidInput(f"Malformed JSON: nested deeper than {MAX_DEPTH} levels.") from None
    except ValueError as exc:
        raise InvalidInput(f"Malformed JSON: {exc}.") from None
    json_check(value)
    return value


def json_check(value: Any) -> None:
    """Refuse depth over MAX_DEPTH and strings PostgreSQL cannot hold (NUL, lone surrogates)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, (list, dict)):
            if depth > MAX_DEPTH:
                raise InvalidInput(f"Malformed JSON: nested deeper than {MAX_DEPTH} levels.")
            if isinstance(item, dict):
                for name, child in item.items():
                    _check_text(name)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise InvalidInput("Invalid JSON string: the NUL character (\\u0000) cannot be stored.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("Invalid JSON string: it holds an unpaired surrogate (\\ud800-\\udfff).") from None


class StrictJSONParser(BaseParser):
    """DRF parser for the management API with the ingress' rules: size limit, no NaN/Infinity, no NUL, depth."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        from rest_framework.exceptions import ParseError

        limit = conf.get("OBJECTS_MAX_BODY_BYTES")
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise PayloadTooLarge(f"The body is over the limit of {limit} bytes.")
        try:
            value = json_parse(data)
        except InvalidInput as exc:
            raise ParseError(exc.message) from None
        return {} if value is None else value
