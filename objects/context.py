"""Handler contexts: `SharedObjectContext` reads committed state; `ObjectContext` also writes, calls, sends,
sleeps, waits for awakeables and arms timers. Both tell who called: `ctx.caller` (the calling object) and
`ctx.principal` (the user the invocation runs for)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import SharedWriteError
from .validation import check_entry_size

if TYPE_CHECKING:
    from .runtime.run import InvocationRun, StateCache

_WRITE_METHODS = {
    "set",
    "clear",
    "clear_all",
    "call",
    "send",
    "run",
    "sleep",
    "awakeable",
    "resolve_awakeable",
    "reject_awakeable",
    "timer",
    "cancel_timer",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """The object whose handler called or sent to this one (`ctx.caller`): its type and key."""

    type_name: str
    key: str

    def __str__(self) -> str:
        return f"{self.type_name}/{self.key}"


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """The user an invocation runs for (`ctx.principal`): the one the ingress authenticated, or the one
    `objects.call(..., principal=...)` named; carried through `ctx.call` and `ctx.send` to the callees."""

    id: int | str
    username: str

    @classmethod
    def of(cls, who: Any) -> Principal | None:
        """A user's Principal (its primary key and username), a Principal as it is, None for None or an
        anonymous user."""
        if who is None or isinstance(who, Principal):
            return who
        if not (hasattr(who, "get_username") and hasattr(who, "pk")):
            raise TypeError(f"principal must be a user or an objects.Principal, got {type(who).__name__}")
        if not getattr(who, "is_authenticated", False):
            return None
        pk = who.pk
        return cls(pk if isinstance(pk, (int, str)) else str(pk), who.get_username())

    @classmethod
    def from_json(cls, value: Any) -> Principal | None:
        """The Principal an invocation row holds (`Invocation.principal`), None when it holds none."""
        return cls(value["id"], value["username"]) if value else None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username}


class SharedObjectContext:
    """What a shared handler sees: the key and its last committed state, read-only, and who called.

    It has no write methods, so a type checker catches a write; at run time a write raises
    `SharedWriteError` with what to do instead.
    """

    def __init__(
        self,
        key: str,
        state: StateCache,
        invocation_id: str,
        *,
        caller: Caller | None = None,
        principal: Principal | None = None,
    ) -> None:
        self.key = key
        self._state = state
        self.invocation_id = invocation_id
        self._caller = caller
        self._principal = principal

    @property
    def caller(self) -> Caller | None:
        """The object whose handler called (`ctx.call`) or sent (`ctx.send`) to this one; None when the
        invocation came from outside (the ingress, `objects.call`, `objects.send`)."""
        return self._caller

    @property
    def principal(self) -> Principal | None:
        """The authenticated user this invocation runs for: the ingress's signed-in user, kept through every
        ctx.call and ctx.send after it; the `principal=` of objects.call/send; None when nobody signed in."""
        return self._principal

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

    def sleep(self, duration: timedelta | float) -> None:
        """Wait `duration` (a timedelta or seconds) durably. The invocation is suspended meanwhile: its worker is
        free, its key stays held, and it runs again from the start when the time is up (its `ctx.run` steps and
        sleeps replayed from the journal; its state writes and sends of before the sleep made again)."""
        self._run.sleep(duration)

    def awakeable(self) -> tuple[str, Awaitable]:
        """A new awakeable: its id (give it to whoever will complete it) and an `Awaitable` whose `result()`
        returns the value it is resolved with, raises TerminalError when it is rejected, and suspends the
        invocation until then."""
        return self._run.awakeable()

    def resolve_awakeable(self, awakeable_id: str, value: Any = None) -> None:
        """Resolve an awakeable with a JSON value, when this handler commits."""
        self._run.resolve_awakeable(awakeable_id, value, rejected=False)

    def reject_awakeable(self, awakeable_id: str, reason: str) -> None:
        """Reject an awakeable (its waiter gets TerminalError(reason)), when this handler commits."""
        self._run.resolve_awakeable(awakeable_id, reason, rejected=True)

    def timer(
        self,
        name: str,
        handler: str,
        arg: Any = None,
        *,
        delay: timedelta | float | None = None,
        at: datetime | None = None,
        every: timedelta | float | None = None,
    ) -> str:
        """Arm the timer `name` of this key: `handler` of this object runs with `arg` after `delay`, at `at`, or
        (with only `every`) after `every`; with `every`, again every `every` after each run until cancelled.
        Arming a name that is armed replaces it. Armed when this handler commits; returns the invocation id."""
        return self._run.timer(name, handler, arg, delay=delay, at=at, every=every)

    def cancel_timer(self, name: str) -> bool:
        """Disarm the timer `name` of this key (when this handler commits); False when none was armed."""
        return self._run.cancel_timer(name)


class Awaitable:
    """Something a handler may wait for: `result()` returns its value once it has one, and suspends the
    invocation until then."""

    __slots__ = ("_index", "_run", "id")

    def __init__(self, run: InvocationRun, awakeable_id: str, index: int) -> None:
        self._run = run
        self._index = index
        self.id = awakeable_id

    def result(self) -> Any:
        """The resolved value; TerminalError(reason) when it was rejected."""
        return self._run.awakeable_result(self.id, self._index)

    def __repr__(self) -> str:
        return f"Awaitable({self.id!r})"
