"""Counter keys: "<tenant slug>/<counter name>", both parts non-empty."""

from __future__ import annotations

from objects import TerminalError


def counter_key_split(key: str) -> tuple[str, str] | None:
    """(tenant, name) of a well-formed key, else None. The name may itself contain "/"."""
    tenant, sep, name = key.partition("/")
    if not sep or not tenant or not name:
        return None
    return tenant, name


def counter_key_check(key: str) -> tuple[str, str]:
    parts = counter_key_split(key)
    if parts is None:
        raise TerminalError(f'Invalid counter key {key!r}: use "<tenant>/<name>", both parts non-empty.', 400)
    return parts
