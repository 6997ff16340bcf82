"""What the group drain leaves to per-key drains: keys whose handlers outran a pass's budget, for a while,
and handlers not yet seen to finish within it in this process.

Shared by the partition's group drain (which skips them) and the per-key drain (which keeps a slow key's mark
fresh and learns which handlers are quick). A handler runs in the group only once it has finished within the
budget, so one that is slow from its first call never stalls a pass of other keys.
"""

from __future__ import annotations

import time

SLOW_FOR = 60.0  # seconds a key whose handler outran the pass budget is left to per-key drains
_slow: dict[tuple[str, str], float] = {}  # (type, key) -> until when it is run by per-key drains
_quick: set[tuple[str, str]] = set()  # (type, handler) seen to finish within the budget in this process


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


def note_quick(type_name: str, handlers: list[str]) -> None:
    """These handlers of the type finished within the budget: the group may run them."""
    if len(_quick) > 10_000:
        _quick.clear()
    _quick.update((type_name, handler) for handler in handlers)


def handlers_quick(type_name: str, handlers: list[str]) -> bool:
    return all((type_name, handler) in _quick for handler in handlers)


def clear() -> None:
    _slow.clear()
    _quick.clear()
