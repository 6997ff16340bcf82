"""Keys whose handlers outran a group pass's budget: run by per-key drains for a while, not by the group.

Shared by the partition's group drain (which marks and skips them) and the per-key drain (which keeps the
mark fresh while the key stays slow), so a slow key stalls its worker's group pass once, not once a minute.
"""

from __future__ import annotations

import time

SLOW_FOR = 60.0  # seconds a key whose handler outran the pass budget is left to per-key drains
_slow: dict[tuple[str, str], float] = {}  # (type, key) -> until when it is run by per-key drains


def mark(type_name: str, key: str) -> None:
    """The key's handler outran the budget: per-key drains run it for the next SLOW_FOR seconds."""
    if len(_slow) > 10_000:
        _slow.clear()
    _slow[(type_name, key)] = time.monotonic() + SLOW_FOR


def is_slow(type_name: str, key: str) -> bool:
    until = _slow.get((type_name, key))
    if until is None:
        return False
    if until < time.monotonic():
        _slow.pop((type_name, key), None)
        return False
    return True


def clear() -> None:
    _slow.clear()
