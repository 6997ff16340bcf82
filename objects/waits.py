"""Durable waiting: sleep durations, awakeable ids and timer intervals, checked the same way everywhere.

An awakeable id is `sign_1` and 20 random bytes in base64url (160 bits): Restate's prefix, and unguessable.
"""

from __future__ import annotations

import math
import re
import secrets
from base64 import urlsafe_b64encode
from datetime import datetime, timedelta

from django.utils.dateparse import parse_datetime

from . import conf
from .errors import InvalidInput

AWAKEABLE_PREFIX = "sign_1"
AWAKEABLE_ID = re.compile(r"^sign_1[A-Za-z0-9_-]{22,58}$")
MIN_EVERY = timedelta(milliseconds=100)


def awakeable_id() -> str:
    return AWAKEABLE_PREFIX + urlsafe_b64encode(secrets.token_bytes(20)).rstrip(b"=").decode()


def awakeable_id_check(value: str) -> None:
    """InvalidInput (400) for a text that is no awakeable id."""
    if not AWAKEABLE_ID.match(value):
        raise InvalidInput(f"Bad awakeable id {value[:80]!r}: awakeable ids look like sign_1<base64url>.")


def duration(value: timedelta | float | int, *, what: str = "duration") -> timedelta:
    """A wait's length, from a timedelta or seconds: not negative, finite, at most OBJECTS_MAX_DELAY."""
    if isinstance(value, bool) or not isinstance(value, (timedelta, int, float)):
        raise InvalidInput(f"The {what} must be a timedelta or a number of seconds, got {type(value).__name__}.")
    if not isinstance(value, timedelta):
        if not math.isfinite(value):
            raise InvalidInput(f"The {what} must be a finite number of seconds.")
        value = timedelta(seconds=value)
    if value < timedelta(0):
        raise InvalidInput(f"The {what} must not be negative.")
    bound = conf.get("OBJECTS_MAX_DELAY")
    if value > bound:
        raise InvalidInput(f"The {what} is too long: at most {bound} (OBJECTS_MAX_DELAY).")
    return value


def parse_time(text: str) -> datetime:
    parsed = parse_datetime(text)
    if parsed is None:
        raise ValueError(f"not an ISO 8601 time: {text!r}")
    return parsed
