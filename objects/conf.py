"""The framework's settings, read lazily with defaults so that override_settings works in tests."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    "OBJECTS_PARTITIONS": 8,
    "OBJECTS_INGRESS_PREFIX": "ingress",
    "OBJECTS_MAX_STATE_ENTRY_BYTES": 1024 * 1024,
    "OBJECTS_MAX_BODY_BYTES": 1024 * 1024,
    "OBJECTS_CALL_TIMEOUT": 30.0,
    "OBJECTS_RETRY_INITIAL_DELAY": 0.1,
    "OBJECTS_RETRY_FACTOR": 2.0,
    "OBJECTS_RETRY_MAX_DELAY": 30.0,
    "OBJECTS_RETRY_MAX_ATTEMPTS": 10,
    "OBJECTS_BATCH_SIZE": 32,
    "OBJECTS_IDEMPOTENCY_RETENTION": timedelta(hours=24),
    "OBJECTS_HISTORY_RETENTION": timedelta(days=30),
    "OBJECTS_STATE_HISTORY_PER_KEY": 50,
    "OBJECTS_INVOCATION_RETENTION": timedelta(days=7),
    "OBJECTS_MAX_DELAY": timedelta(days=30),
    "OBJECTS_SWEEP_INTERVAL": 5.0,
    "OBJECTS_REDISPATCH_AFTER": 5.0,
    "OBJECTS_LOCK_TIMEOUT_MS": 10_000,
    "OBJECTS_METRICS_ALLOW": [],
    "OBJECTS_TOKEN_CACHE_SECONDS": 5.0,
    "OBJECTS_CRASH_LIMIT": 3,
    "OBJECTS_GROUP_KEYS": 16,
    "OBJECTS_GROUP_BUDGET_MS": 200,
    "OBJECTS_DRAIN_LINGER_MS": 50,
    "OBJECTS_WEB_THREADS": 16,
    # requests per user and per client address on the ingress; failed sign-ins per address and per username
    "OBJECTS_RATE_LIMIT_USER": "2000/s",
    "OBJECTS_RATE_LIMIT_ADDRESS": "4000/s",
    "OBJECTS_RATE_LIMIT_LOGIN": "10/min",
    "OBJECTS_HOST_LOSS_BOUND": 30.0,
    "OBJECTS_WEB_DB_POOL_SIZE": 10,
    "OBJECTS_WEB_DB_POOL_TIMEOUT": 5.0,
    "OBJECTS_WEB_REDIS_POOL_SIZE": 500,
    # live state watchers (objects/watch.py): at most this many per web process; a comment line this often
    "OBJECTS_WATCH_MAX": 1000,
    "OBJECTS_WATCH_HEARTBEAT": 15.0,
}

_POSITIVE_INT = (
    "OBJECTS_PARTITIONS",
    "OBJECTS_MAX_STATE_ENTRY_BYTES",
    "OBJECTS_MAX_BODY_BYTES",
    "OBJECTS_RETRY_MAX_ATTEMPTS",
    "OBJECTS_BATCH_SIZE",
    "OBJECTS_CRASH_LIMIT",
    "OBJECTS_GROUP_KEYS",
    "OBJECTS_GROUP_BUDGET_MS",
    "OBJECTS_WEB_THREADS",
    "OBJECTS_WEB_DB_POOL_SIZE",
    "OBJECTS_WEB_REDIS_POOL_SIZE",
    "OBJECTS_STATE_HISTORY_PER_KEY",
    "OBJECTS_WATCH_MAX",
)
_POSITIVE_NUMBER = ("OBJECTS_HOST_LOSS_BOUND", "OBJECTS_WEB_DB_POOL_TIMEOUT", "OBJECTS_WATCH_HEARTBEAT")


_RATES = ("OBJECTS_RATE_LIMIT_USER", "OBJECTS_RATE_LIMIT_ADDRESS", "OBJECTS_RATE_LIMIT_LOGIN")
_RATE_UNITS = {
    **dict.fromkeys(("s", "sec", "second"), 1),
    **dict.fromkeys(("m", "min", "minute"), 60),
    **dict.fromkeys(("h", "hour"), 3600),
    **dict.fromkeys(("d", "day"), 86400),
}


@dataclass(frozen=True)
class Rate:
    """A rate limit: at most `count` in each window of `seconds`."""

    count: int
    seconds: int

    def __str__(self) -> str:
        unit = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}[self.seconds]
        return f"{self.count} per {unit}"


@functools.lru_cache(maxsize=32)
def _rate(name: str, value: Any) -> Rate | None:
    """`value` ("1000/s", "600/min", "20/h", "5/day") as a Rate; None for 0 or empty (no limit)."""
    if value in (0, "0", "", None):
        return None
    count, _, unit = str(value).partition("/") if isinstance(value, str) else ("", "", "")
    if count.strip().isdigit() and int(count) > 0 and unit.strip().lower() in _RATE_UNITS:
        return Rate(int(count), _RATE_UNITS[unit.strip().lower()])
    raise ImproperlyConfigured(
        f"{name} must be a rate such as 1000/s, 600/min, 20/h or 5/day (or 0: no limit), got {value!r}"
    )


def get(name: str) -> Any:
    """Return setting `name`, its default when unset; a bad value raises ImproperlyConfigured."""
    if name not in DEFAULTS:
        raise ImproperlyConfigured(f"Unknown objects setting {name!r}; valid ones: {', '.join(sorted(DEFAULTS))}")
    value = getattr(settings, name, DEFAULTS[name])
    if name in _POSITIVE_INT and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ImproperlyConfigured(f"{name} must be a positive integer, got {value!r}")
    if name in _POSITIVE_NUMBER and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
        raise ImproperlyConfigured(f"{name} must be a positive number of seconds, got {value!r}")
    if name in _RATES:
        return _rate(name, value)
    if isinstance(DEFAULTS[name], timedelta) and isinstance(value, (int, float)):
        value = timedelta(seconds=value)
    if name == "OBJECTS_MAX_DELAY" and not (isinstance(value, timedelta) and value > timedelta(0)):
        raise ImproperlyConfigured(f"{name} must be a positive duration (a timedelta or seconds), got {value!r}")
    return value


def redis_url() -> str:
    """The Redis server of the doorbells, done signals and heartbeats: OBJECTS_REDIS_URL, else REDIS_URL."""
    for name in ("OBJECTS_REDIS_URL", "REDIS_URL"):
        value = getattr(settings, name, None)
        if value:
            if not isinstance(value, str):
                raise ImproperlyConfigured(f"{name} must be a URL such as redis://127.0.0.1:6379/0, got {value!r}")
            return value
    raise ImproperlyConfigured("No Redis URL: set OBJECTS_REDIS_URL (or REDIS_URL), such as redis://127.0.0.1:6379/0.")
