"""Handler contexts: `SharedObjectContext` reads committed state; `ObjectContext` also writes, calls and sends."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import SharedWriteError
from .validation import check_entry_size

if TYPE_CHECKING:
    from .runtime import InvocationRun, StateCache

_WRITE_METHODS = {"set", "clear", "clear_all", "call", "send", "run"}


class SharedObjectContext:
    """What a shared handler sees: the key and its last committed state, read-only.

    It has no write methods, so a type checker catches a write; at run time a write raises
    `SharedWriteError` with what to do instead.
    """

    def __init__(self, key: str, state: StateCache, invocation_id: str) -> None:
        self.key = key
        self._state = state
        self.invocation_id = invocation_id

    def get(self, name: str, default: Any = None) -> Any:
        """The value of state entry `name`, or `default` when it is not set."""
        return self._state.get(name, default)

    def state_keys(self) -> list[str]:
        """The names of the state entries that are set, sorted."""
        return self._state.names()

    def get_all(self) -> dict[str, Any]:
        """All state entries as a dict."""
        return {name: self._state.get(name) for name in self._state.names()}

    def __getattr__(self, name: str) -> NoReturn:
        if name in _WRITE_METHODS:
            raise SharedWriteError(
                f"ctx.{name}() is not allowed in a shared handler: shared handlers are read-only. "
                "Move the write to an exclusive handler."
            )
        raise AttributeError(name)


class ObjectContext(SharedObjectContext):
    """What an exclusive handler sees: it holds the key, may write state, call, send and run side effects.

    Everything it does commits together with its result, or not at all.
    """

    _run: InvocationRun

    def set(self, name: str, value: Any) -> None:
        """Set state entry `name` to a JSON value (size-limited, see OBJECTS_MAX_STATE_ENTRY_BYTES)."""
        self._state.set(name, value, text=check_entry_size(name, value))  # encoded once

    def clear(self, name: str) -> None:
        """Remove state entry `name` (no error when it is not set)."""
        self._state.clear(name)

    def clear_all(self) -> None:
        """Remove every state entry of this key."""
        self._state.clear_all()

    def call(self, type_name: str, key: str, handler: str, arg: Any = None) -> Any:
        """Request-response call: the callee runs under its own key's lock inside this transaction."""
        return self._run.call(type_name, key, handler, arg)

    def send(self, type_name: str, key: str, handler: str, arg: Any = None, delay: timedelta | None = None) -> str:
        """One-way message, dispatched only after this invocation commits; returns its invocation id."""
        return self._run.send(type_name, key, handler, arg, delay)

    def run(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a side effect once: its JSON result is recorded durably and replayed on retries."""
        return self._run.run_step(name, fn, *args)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
