"""Django Virtual Objects: key-addressable, stateful services on Django.

The public API. Domain apps import only these names::

    from objects import VirtualObject, ObjectContext, SharedObjectContext, TerminalError
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .context import ObjectContext, SharedObjectContext
from .errors import CallTimeout, Conflict, DeadlockError, SharedWriteError, TerminalError
from .registry import HandlerKind, VirtualObject

if TYPE_CHECKING:
    from .client import call, send

__all__ = [
    "CallTimeout",
    "Conflict",
    "DeadlockError",
    "HandlerKind",
    "ObjectContext",
    "SharedObjectContext",
    "SharedWriteError",
    "TerminalError",
    "VirtualObject",
    "call",
    "send",
]


def __getattr__(name: str) -> Any:
    # `call` and `send` need the models, which cannot be imported before the app registry is ready.
    if name in ("call", "send"):
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'objects' has no attribute {name!r}")
