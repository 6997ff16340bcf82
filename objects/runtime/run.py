"""The runtime of one invocation: its context, call chain, ctx.call / ctx.send / ctx.run, and its outcome.

The inbox of a key (which invocations run, in which order, under which lock) is objects/worker/inbox.py.

Guarantees (docs/architecture.md) and their preconditions:
- Exclusive per key: the worker holds the key's Instance row lock (SELECT ... FOR NO KEY UPDATE) for the whole
  transaction in which it runs the key's inbox, from the head, in acceptance (id) order.
- All or nothing: a handler's state writes, its sends, nested calls and its result are written inside one
  savepoint; any failure rolls the savepoint back and only the failure is recorded.
- No silent deadlock: a request-response call to a key held by its own call chain raises DeadlockError.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import waits
from ..context import Awaitable, Caller, ObjectContext, Principal, SharedObjectContext
from ..errors import DeadlockError, ObjectsError, Suspended, TerminalError
from ..models import Instance, Invocation, JournalEntry, Status
from ..registry import Handler
from ..signals import notify
from ..validation import build_argument, json_size, validate_input, validate_key
from . import journal
from .outcome import finish
from .state import StateCache, committed_state
from .submit import instance_id_ensure, invocation_submit, resolve
from .timers import awakeable_complete, timer_arm, timer_cancel

log = logging.getLogger("objects.runtime")
_local = threading.local()


@dataclasses.dataclass(frozen=True)
class Frame:
    type_name: str
    key: str
    handler: str
    exclusive: bool

    def __str__(self) -> str:
        return f"{self.type_name}/{self.key}.{self.handler}"


def current_chain() -> tuple[Frame, ...]:
    """The call chain of the handler running on this thread (empty outside handlers)."""
    return getattr(_local, "chain", ())


class InvocationRun:
    """One handler execution: its context, chain, journal cursor and the rows it writes."""

    def __init__(self, invocation: Invocation, handler: Handler, state: StateCache, chain: tuple[Frame, ...]) -> None:
        self.invocation = invocation
        self.handler = handler
        self.state = state
        self.chain = chain
        self._step = 0
        self._journal: dict[int, journal.Step] | None = None
        self._unsaved: list[tuple[Callable[..., None], tuple[Any, ...], dict[str, Any]]] = []
        self.timers_touched: set[str] = set()  # timer names the handler armed or cancelled

    def execute(self) -> Any:
        invocation = self.invocation
        arg = build_argument(self.handler, invocation.input)
        ctx_cls = ObjectContext if self.handler.kind == "exclusive" else SharedObjectContext
        caller = Caller(invocation.caller_type, invocation.caller_key) if invocation.caller_type else None
        principal = Principal.from_json(invocation.principal)
        ctx = ctx_cls(invocation.key, self.state, invocation.public_id, caller=caller, principal=principal)
        ctx._run = self  # type: ignore[attr-defined]
        previous = current_chain()
        _local.chain = self.chain
        try:
            output = self.handler.fn(ctx, arg) if self.handler.takes_input else self.handler.fn(ctx)
        finally:
            _local.chain = previous
        try:
            json_size(output)
        except (TypeError, ValueError) as exc:
            raise TerminalError(
                f"Handler {self.handler.qualified_name} returned a value that is not JSON: {exc}"
            ) from exc
        return output

    # -- ctx.call -------------------------------------------------------------------------------------
    def call(self, type_name: str, key: str, handler_name: str, arg: Any) -> Any:
        try:
            target = resolve(type_name, handler_name)
            validate_key(key)
            stored = validate_input(target, arg)
        except ObjectsError as exc:
            raise TerminalError(str(exc), exc.status_code) from exc
        frame = Frame(type_name, key, handler_name, target.kind == "exclusive")
        me = self.invocation
        if target.kind == "shared":
            return run_shared(
                type_name,
                key,
                handler_name,
                stored,
                chain=self.chain + (frame,),
                caller=Caller(me.type_name, me.key),
                principal=Principal.from_json(me.principal),
            )
        held = [f for f in self.chain if f.exclusive and (f.type_name, f.key) == (type_name, key)]
        if held:
            cycle = " → ".join(str(f) for f in self.chain + (frame,))
            raise DeadlockError(
                f"Deadlock: {cycle}. {type_name}/{key} is already held exclusively by this call chain, so the "
                "call would wait for itself forever. Use ctx.send(...) for a one-way message, or make the "
                "target handler shared if it only reads."
            )
        instance = instance_lock(type_name, key)
        callee = Invocation.objects.create(
            instance=instance,
            type_name=type_name,
            key=key,
            handler=handler_name,
            kind=target.kind,
            input=stored,
            status=Status.RUNNING,
            caller=me,
            caller_type=me.type_name,
            caller_key=me.key,
            principal=me.principal,
            started_at=timezone.now(),
            partition=me.partition,
        )
        state = StateCache.for_instance(instance.pk, type_name=type_name)
        run = InvocationRun(callee, target, state, self.chain + (frame,))
        try:
            with transaction.atomic():
                output = run.execute()
                version = state.flush(invocation_id=callee.pk)
                finish(callee, Status.SUCCEEDED, output=output)
                if version is not None:
                    notify.state_changed(type_name, key, version)
        except TerminalError as exc:
            finish(callee, Status.FAILED, error=exc)
            raise
        return output

    # -- ctx.send -------------------------------------------------------------------------------------
    def send(self, type_name: str, key: str, handler_name: str, arg: Any, delay: timedelta | None) -> str:
        try:
            invocation, _ = invocation_submit(
                type_name=type_name, key=key, handler=handler_name, arg=arg, delay=delay, caller=self.invocation
            )
        except ObjectsError as exc:
            raise TerminalError(str(exc), exc.status_code) from exc
        return invocation.public_id

    # -- the journal: ctx.run, ctx.sleep, ctx.awakeable ------------------------------------------------------
    def _steps(self) -> dict[int, journal.Step]:
        if self._journal is None:
            self._journal = journal.load(self.invocation.pk)
        return self._journal

    def _next_step(self, kind: str, name: str) -> tuple[int, journal.Step | None]:
        """The position of the handler's next step and what the journal recorded there (None: a new step)."""
        index = self._step
        self._step += 1
        recorded = self._steps().get(index)
        if recorded is not None and (recorded.kind, recorded.name) != (kind, name):
            was, now = _step_text(recorded.kind, recorded.name), _step_text(kind, name)
            raise TerminalError(
                f"Journal mismatch at step {index}: recorded {was}, now {now}. "
                "Handlers must call ctx.run steps in the same order on every attempt."
            )
        return index, recorded

    def _write(self, write: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Write a step; where it does not outlive the attempt (SQLite), remember it for `journal_rewrite`."""
        write(*args, **kwargs)
        if not journal.durable():
            self._unsaved.append((write, args, kwargs))

    def journal_rewrite(self) -> None:
        """Write again the steps this attempt wrote in its rolled-back savepoint (SQLite): they are kept with
        the suspension or the retry, outside the attempt."""
        unsaved, self._unsaved = self._unsaved, []
        for write, args, kwargs in unsaved:
            write(*args, **kwargs)

    def run_step(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        index, recorded = self._next_step(JournalEntry.Kind.RUN, name)
        if recorded is not None:
            if recorded.failure and recorded.terminal:
                raise TerminalError(recorded.failure, 500)
            if not recorded.failure:
                return recorded.result
        pk = self.invocation.pk
        try:
            result = fn(*args)
            json_size(result)
        except TerminalError as exc:
            self._write(journal.record, pk, index, name, None, failure=str(exc), terminal=True)
            raise
        except Exception as exc:
            self._write(journal.record, pk, index, name, None, failure=f"{type(exc).__name__}: {exc}")
            raise
        self._write(journal.record, pk, index, name, result)
        return result

    def _may_wait(self, what: str) -> None:
        if len(self.chain) > 1:
            raise TerminalError(
                f"{what} cannot wait in {self.handler.qualified_name}: it runs inside its caller's transaction "
                "(ctx.call). Reach it with ctx.send instead, or wait in the calling handler.",
                500,
            )

    def sleep(self, duration: timedelta | float) -> None:
        """Wait until `duration` after the step was first reached: suspend the invocation when it is not over."""
        self._may_wait("ctx.sleep")
        try:
            delay = waits.duration(duration)
        except ObjectsError as exc:
            raise TerminalError(f"ctx.sleep: {exc}", 500) from exc
        index, recorded = self._next_step(JournalEntry.Kind.SLEEP, "sleep")
        if recorded is None:
            until = timezone.now() + delay
            self._write(journal.record, self.invocation.pk, index, "sleep", {"until": until.isoformat()}, kind="sleep")
        else:
            until = waits.parse_time(recorded.result["until"])
        if timezone.now() < until:
            raise Suspended(until=until)

    def awakeable(self) -> tuple[str, Awaitable]:
        """A new awakeable (or the one recorded at this step), and what waits for it."""
        self._may_wait("ctx.awakeable")
        index, recorded = self._next_step(JournalEntry.Kind.AWAKEABLE, "awakeable")
        if recorded is None:
            token = waits.awakeable_id()
            self._write(journal.awakeable_create, self.invocation.pk, index, token)
            self._steps()[index] = journal.Step(str(JournalEntry.Kind.AWAKEABLE), "awakeable", {"id": token})
        else:
            token = recorded.result["id"]
        return token, Awaitable(self, token, index)

    def awakeable_result(self, token: str, index: int) -> Any:
        """The awakeable's value; TerminalError when it was rejected; a suspension while it has neither."""
        step = self._steps().get(index)
        if step is None or not step.completed:
            step = journal.awakeable_read(token)  # completed since the journal was read (in this transaction)
        if step is not None and step.completed:
            if step.rejected:
                raise TerminalError(step.reason, 500)
            return step.value
        raise Suspended(awakeable=token)

    def resolve_awakeable(self, token: str, value: Any, *, rejected: bool) -> None:
        try:
            awakeable_complete(awakeable_id=token, value=value, rejected=rejected)
        except ObjectsError as exc:
            raise TerminalError(str(exc), exc.status_code) from exc

    # -- named timers ---------------------------------------------------------------------------------------
    def timer(
        self,
        name: str,
        handler_name: str,
        arg: Any,
        *,
        delay: timedelta | float | None,
        at: datetime | None,
        every: timedelta | float | None,
    ) -> str:
        me = self.invocation
        self.timers_touched.add(name)
        try:
            armed = timer_arm(invocation=me, name=name, handler=handler_name, arg=arg, delay=delay, at=at, every=every)
        except ObjectsError as exc:
            raise TerminalError(str(exc), exc.status_code) from exc
        return armed.public_id

    def cancel_timer(self, name: str) -> bool:
        self.timers_touched.add(name)
        return timer_cancel(instance_id=self.invocation.instance_id, name=name, keep=self.invocation.pk)


def _step_text(kind: str, name: str) -> str:
    return repr(name) if kind == JournalEntry.Kind.RUN else f"ctx.{kind}()"


def instance_lock(type_name: str, key: str) -> Instance:
    """Lock the key's row (waiting for it), creating the row first when the key is new."""
    return Instance.objects.select_for_update(no_key=True).get(pk=instance_id_ensure(type_name, key))


def run_shared(
    type_name: str,
    key: str,
    handler_name: str,
    stored: Any,
    chain: tuple[Frame, ...] = (),
    *,
    state: StateCache | None = None,
    caller: Caller | None = None,
    principal: Principal | None = None,
) -> Any:
    """Run a shared handler on the last committed state (read here unless given), without any lock and
    without a row, for `principal` (the user it runs for) and called by `caller` (None from outside)."""
    handler = resolve(type_name, handler_name)
    state = state if state is not None else StateCache(*committed_state(type_name, key))
    chosen = {"uid": uuid.uuid4(), "type_name": type_name, "key": key, "handler": handler_name, "input": stored}
    if caller is not None:
        chosen.update(caller_type=caller.type_name, caller_key=caller.key)
    if principal is not None:
        chosen["principal"] = principal.as_json()
    fake = Invocation.built(None, {**chosen, "kind": "shared"})  # never saved
    frame = Frame(type_name, key, handler_name, False)
    return InvocationRun(fake, handler, state, chain or (frame,)).execute()
