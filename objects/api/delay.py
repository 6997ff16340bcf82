"""The `delay` query parameter of a send: `500ms`, `10s`, `1m`, `1h`, ISO-8601 (`PT1M`), or bare milliseconds; at
most OBJECTS_MAX_DELAY (30 days by default)."""

from __future__ import annotations

import re
from datetime import timedelta

from ..errors import InvalidInput
from ..validation import validate_delay

_LONGEST = 1e12  # seconds (some 30,000 years): any longer delay is taken as timedelta.max, refused as too long
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIMPLE = re.compile(r"^(\d{1,15}(?:\.\d{1,9})?)(ms|s|m|h|d)?$")
_ISO = re.compile(
    r"^P(?:(?P<d>\d{1,9}(?:\.\d+)?)D)?(?:T(?:(?P<h>\d{1,9}(?:\.\d+)?)H)?(?:(?P<m>\d{1,9}(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d{1,12}(?:\.\d+)?)S)?)?$"
)
HELP = "use e.g. 500ms, 10s, 1m, 1h, an ISO-8601 duration such as PT1M, or a whole number of milliseconds"


def delay_parse(text: str) -> timedelta | None:
    """Parse a delay; None means now. A negative, malformed or too long (over OBJECTS_MAX_DELAY) value raises
    InvalidInput (400)."""
    value = text.strip()
    if value.startswith("-"):
        raise InvalidInput(f"Invalid delay {text[:40]!r}: a delay must not be negative; {HELP}.")
    seconds: float
    simple = _SIMPLE.match(value.lower())
    iso = _ISO.match(value.upper()) if value.upper().startswith("P") else None
    if simple:
        number, unit = simple.groups()
        if unit is None and "." in number:
            raise InvalidInput(f"Invalid delay {text!r}: a bare number is whole milliseconds; {HELP}.")
        seconds = float(number) * _UNITS[unit or "ms"]
    elif iso and value.upper() not in ("P", "PT") and not value.upper().endswith("T"):
        parts = {k: float(v) for k, v in iso.groupdict().items() if v}
        seconds = parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)
    else:
        raise InvalidInput(f"Invalid delay {text[:40]!r}: {HELP}.")
    delay = timedelta(seconds=seconds) if seconds < _LONGEST else timedelta.max
    try:
        validate_delay(delay)
    except InvalidInput as exc:
        raise InvalidInput(f"Invalid delay {text[:40]!r}: {exc.message}") from None
    return delay or None
