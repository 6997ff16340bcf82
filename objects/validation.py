"""Validation before an invocation is accepted: keys, handler input, sizes.

A handler's input is validated whole, nested fields included, before anything is stored: a dataclass, TypedDict
or pydantic model by its pydantic TypeAdapter (built at registration), a DRF serializer by the serializer. Only
declared fields are stored and passed to the handler. Errors name the field's path (`tags.0: ...`).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from . import conf, jsoncodec
from .errors import InvalidInput, ObjectsError, PayloadTooLarge
from .registry import Handler

log = logging.getLogger("objects.validation")

OUT_OF_RANGE = "number out of range: integers must fit in 64 bits (-2**63 to 2**63-1)."
KEY_RULE = "a key is 1 to 255 characters of any Unicode except control characters (U+0000-U+001F, U+007F)"


def validate_key(key: Any) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= 255 or any(ord(c) < 32 or ord(c) == 127 for c in key):
        shown = key if isinstance(key, str) and len(key) <= 40 else (f"{key[:40]}…" if isinstance(key, str) else key)
        raise InvalidInput(f"Invalid key {shown!r}: {KEY_RULE}.")
    return key


def validate_delay(delay: timedelta | None) -> None:
    """A send's delay: not negative, at most OBJECTS_MAX_DELAY (InvalidInput, 400)."""
    if delay is None:
        return
    if delay < timedelta(0):
        raise InvalidInput("The delay must not be negative.")
    bound = conf.get("OBJECTS_MAX_DELAY")
    if delay > bound:
        raise InvalidInput(f"The delay is too long: at most {duration_text(bound)} (OBJECTS_MAX_DELAY).")


def duration_text(value: timedelta) -> str:
    """`value` in words, in its largest whole unit: "30 days", "1 hour", "90 seconds"."""
    seconds = value.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"


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
    """Check `arg` against the handler's declared input; return the JSON value to store (declared fields only)."""
    if not handler.takes_input:
        if arg not in (None, {}):
            raise InvalidInput(f"Handler {handler.qualified_name} takes no input; send an empty body.")
        return None
    if handler.adapter is not None:
        value = _typed(handler, arg, check_range=True)
        if isinstance(value, BaseModel):  # its own config may ignore unknown fields: store what it kept
            return handler.adapter.dump_python(value, mode="json", by_alias=True, exclude_computed_fields=True)
        return arg  # unknown fields were refused, at every level
    if handler.input_type is None:
        return arg
    return _serializer_stored(_serializer(handler, arg), arg)


def build_argument(handler: Handler, stored: Any) -> Any:
    """Turn a stored JSON input into the value the handler receives (a dataclass, TypedDict or model instance,
    or a serializer's validated data)."""
    if handler.adapter is not None:
        return _typed(handler, stored, check_range=False)
    if handler.input_type is None:
        return stored
    return _serializer(handler, stored).validated_data


def _typed(handler: Handler, data: Any, *, check_range: bool) -> Any:
    """Validate JSON `data` with the handler's TypeAdapter (as JSON text: strict types, JSON's conversions)."""
    assert handler.adapter is not None
    where = f"Invalid input for {handler.qualified_name}"
    data = {} if data is None else data
    try:
        text = jsoncodec.dumps(data)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{where}: it is not JSON ({exc}).") from None
    try:
        value = handler.adapter.validate_json(text)
    except ValidationError as exc:
        raise InvalidInput(f"{where}: {_pydantic_errors(exc)}") from None
    except ObjectsError:
        raise  # the type's own refusal, e.g. TerminalError(message, 400) from __post_init__
    except Exception as exc:  # noqa: BLE001 - input that trips the type's own code is the caller's 400, not a 500
        log.warning("%s: building the input raised %r", handler.qualified_name, exc)
        raise InvalidInput(f"{where}: {type(exc).__name__}: {exc}") from None
    if check_range:
        path = _long_integer(data, "")
        if path is not None:
            raise InvalidInput(f"{where}: {path or 'input'}: {OUT_OF_RANGE}")
    return value


MAX_ERRORS = 10


def _pydantic_errors(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_context=False)
    shown = [_pydantic_error(error) for error in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        shown.append(f"and {len(errors) - MAX_ERRORS} more")
    return "; ".join(shown)


def _pydantic_error(error: Any) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "input"
    kind = error["type"]
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        return f"{path}: unknown field"
    if not error["loc"] and kind in ("dataclass_type", "model_type", "dict_type", "model_attributes_type"):
        return f"expected a JSON object, got {_json_type(error.get('input'))}"
    return f"{path}: {error['msg']}"


def _long_integer(value: Any, path: str) -> str | None:
    """The path of the first integer outside 64 bits in a JSON value (PostgreSQL and the handlers' JSON
    readers take 64-bit integers), None when there is none."""
    if isinstance(value, int) and not isinstance(value, bool):
        return None if -(2**63) <= value <= 2**63 - 1 else path
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for name, child in items:
        found = _long_integer(child, f"{path}.{name}" if path else str(name))
        if found is not None:
            return found
    return None


def _serializer(handler: Handler, data: Any) -> Any:
    serializer = handler.input_type(data={} if data is None else data)
    try:
        valid = serializer.is_valid()
    except ObjectsError:
        raise
    except Exception as exc:  # noqa: BLE001 - as for a dataclass's own code: the caller's 400
        log.warning("%s: validating the input raised %r", handler.qualified_name, exc)
        raise InvalidInput(f"Invalid input for {handler.qualified_name}: {type(exc).__name__}: {exc}") from None
    if not valid:
        raise InvalidInput(f"Invalid input for {handler.qualified_name}: {_format_errors(serializer.errors)}")
    return serializer


def _serializer_stored(serializer: Any, arg: Any) -> Any:
    """A valid serializer's input as it will be stored: its writable fields only, as the serializer represents
    the validated data (so the stored input validates again to the same data), write-only ones as sent."""
    represented = serializer.data
    stored = {}
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        if field.write_only:
            if isinstance(arg, dict) and name in arg:
                stored[name] = arg[name]
        elif name in represented:
            stored[name] = represented[name]
    try:
        return jsoncodec.loads(jsoncodec.dumps(stored))  # plain JSON (the representation nests ReturnDicts)
    except (TypeError, ValueError):
        return arg  # a field that represents itself as something other than JSON: the input as sent


def _format_errors(errors: Any, prefix: str = "") -> str:
    """DRF's errors as `path: message` (nested serializers and list items by index: `lines.1.sku`)."""
    if isinstance(errors, dict):
        return "; ".join(_format_errors(v, f"{prefix}{k}.") for k, v in errors.items())
    if isinstance(errors, list):
        if all(isinstance(e, str) for e in errors):
            label = prefix.rstrip(".") or "input"
            return f"{label}: {' '.join(str(e) for e in errors)}"
        return "; ".join(_format_errors(e, f"{prefix}{i}.") for i, e in enumerate(errors) if e)
    return f"{prefix.rstrip('.') or 'input'}: {errors}"


def _json_type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
