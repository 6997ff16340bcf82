"""Django Virtual Objects: key-addressable, stateful services on Django.

The public API. Domain apps import only these names (an import-linter contract in pyproject.toml keeps it so)::

    from objects import VirtualObject, ObjectContext, SharedObjectContext, TerminalError

From ordinary Django code: `call` and `send` run handlers; `instance_exists`, `instance_keys`, `instance_paused`,
`state_read` and `state_values` read committed state; `resolve_awakeable` and `reject_awakeable` complete what a
handler waits for; `ObjectsError` is the base of every error a caller may see.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .context import Awaitable, Caller, ObjectContext, Principal, SharedObjectContext
from .errors import CallTimeout, Conflict, DeadlockError, NotFound, ObjectsError, SharedWriteError, TerminalError
from .registry import HandlerKind, VirtualObject

if TYPE_CHECKING:
    from .client import call, send
    from .selectors import instance_exists, instance_keys, instance_paused, state_read, state_values
    from .services import awakeable_reject as reject_awakeable
    from .services import awakeable_resolve as resolve_awakeable

# names whose modules need the models, which cannot be imported before the app registry is ready
_LAZY = {
    "call": "client",
    "send": "client",
    "instance_exists": "selectors",
    "instance_keys": "selectors",
    "instance_paused": "selectors",
    "state_read": "selectors",
    "state_values": "selectors",
    "resolve_awakeable": "services",
    "reject_awakeable": "services",
}

_RENAMED = {"resolve_awakeable": "awakeable_resolve", "reject_awakeable": "awakeable_reject"}

__all__ = [
    "Awaitable",
    "CallTimeout",
    "Caller",
    "Conflict",
    "DeadlockError",
    "HandlerKind",
    "NotFound",
    "ObjectContext",
    "ObjectsError",
    "Principal",
    "SharedObjectContext",
    "SharedWriteError",
    "TerminalError",
    "VirtualObject",
    "call",
    "instance_exists",
    "instance_keys",
    "instance_paused",
    "reject_awakeable",
    "resolve_awakeable",
    "send",
    "state_read",
    "state_values",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, _RENAMED.get(name, name))
    raise AttributeError(f"module 'objects' has no attribute {name!r}")
