"""Validation before an invocation is accepted: keys, handler input (dataclass or DRF serializer), sizes."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from . import conf, jsoncodec
from .errors import InvalidInput, PayloadTooLarge
from .registry import Handler

OUT_OF_RANGE = "number out of range: integers must fit in 64 bits (-2**63 to 2**63-1)."
KEY_RULE = "a key is 1 to 255 characters of any Unicode except control characters (U+0000-U+001F, U+007F)"


def validate_key(key: Any) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= 255 or any(ord(c) < 32 or ord(c) == 127 for c in key):
        shown = key if isinstance(key, str) and len(key) <= 40 else (f"{key[:40]}…" if isinstance(key, str) else key)
        raise InvalidInput(f"Invalid key {shown!r}: {KEY_RULE}.")
    return key


def json_size(value: Any) -> int:
    """Bytes of `value`'s compact JSON text; TypeError or ValueError (NaN, infinities) when it is not JSON."""
    return len(jsoncodec.dumps(value).encode())


def check_entry_size(name: str, value: Any) -> str:
    """Check a state entry's value (JSON, within OBJECTS_MAX_STATE_ENTRY_BYTES); returns its JSON text."""
    try:
        text = jsoncodec.dumps(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"State entry {name!r} is not JSON-serializable: {exc}") from exc
    size = len(text.encode())
    limit = conf.get("OBJECTS_MAX_STATE_ENTRY_BYTES")
    if size > limit:
        raise PayloadTooLarge(f"State entry {name!r} is {size} bytes; the limit is {limit} bytes.")
    return text


def validate_input(handler: Handler, arg: Any) -> Any:
    """Check `arg` against the handler's declared input; return the JSON value to store."""
    if not handler.takes_input:
        if arg not in (None, {}):
            raise InvalidInput(f"Handler {handler.qualified_name} takes no input; send an empty body.")
        return None
    build_argument(handler, arg)
    return arg


def build_argument(handler: Handler, stored: Any) -> Any:
    """Turn a stored JSON input into the value the handler receives (validated data or a dataclass)."""
    input_type = handler.input_type
    if input_type is None:
        return stored
    if dataclasses.is_dataclass(input_type):
        return _build_dataclass(handler, input_type, {} if stored is None else stored)
    serializer = input_type(data={} if stored is None else stored)
    if not serializer.is_valid():
        raise InvalidInput(f"Invalid input for {handler.qualified_name}: {_format_errors(serializer.errors)}")
    return serializer.validated_data


def _format_errors(errors: Any, prefix: str = "") -> str:
    if isinstance(errors, dict):
        return "; ".join(_format_errors(v, f"{prefix}{k}.") for k, v in errors.items())
    if isinstance(errors, list):
        if all(isinstance(e, str) for e in errors):
            label = prefix.rstrip(".") or "input"
            return f"{label}: {' '.join(str(e) for e in errors)}"
        return "; ".join(_format_errors(e, prefix) for e in errors)
    return f"{prefix.rstrip('.') or 'input'}: {errors}"


def _build_dataclass(handler: Handler, cls: Any, data: Any) -> Any:
    if not isinstance(data, dict):
        raise InvalidInput(
            f"Invalid input for {handler.qualified_name}: expected a JSON object, got {_json_type(data)}."
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InvalidInput(f"Invalid input for {handler.qualified_name}: unknown field(s) {', '.join(unknown)}.")
    errors = []
    for name, field in fields.items():
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                errors.append(f"{name}: this field is required.")
            continue
        problem = _type_problem(hints.get(name, Any), data[name])
        if problem:
            errors.append(f"{name}: {problem}")
    if errors:
        raise InvalidInput(f"Invalid input for {handler.qualified_name}: {' '.join(errors)}")
    return cls(**data)


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _type_problem(expected: Any, value: Any) -> str | None:
    origin = typing.get_origin(expected)
    if expected is Any:
        return None
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(expected)
        problems = [_type_problem(o, value) for o in options]
        if any(p is None for p in problems):
            return None
        if OUT_OF_RANGE in problems:
            return OUT_OF_RANGE
        return f"expected one of {', '.join(getattr(o, '__name__', str(o)) for o in options)}, got {_json_type(value)}."
    if expected is type(None):
        return None if value is None else f"expected null, got {_json_type(value)}."
    checks: dict[Any, Any] = {
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        bool: lambda v: isinstance(v, bool),
        list: lambda v: isinstance(v, list),
        dict: lambda v: isinstance(v, dict),
    }
    base = origin or expected
    check = checks.get(base)
    if check is None:
        return None
    if not check(value):
        return f"expected {base.__name__}, got {_json_type(value)}."
    if base is int and not -(2**63) <= value <= 2**63 - 1:
        return OUT_OF_RANGE
    return None
