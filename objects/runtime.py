"""The runtime of one invocation: its context, call chain, ctx.call / ctx.send / ctx.run, and its outcome.

The inbox of a key (which invocations run, in which order, under which lock) is objects/inbox.py.

Guarantees (DESIGN.md invariants 2-6) and their preconditions:
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
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import journal, notify, tally, waits
from .backends import db, fetchone, rowcount
from .context import Awaitable, Caller, ObjectContext, Principal, SharedObjectContext
from .errors import DeadlockError, NotFound, ObjectsError, Suspended, TerminalError
from .models import Instance, Invocation, JournalEntry, StateChange, Status
from .registry import Handler, get_object
from .state import StateCache, committed_state, entry_delete, entry_upsert, history_trim
from .validation import build_argument, json_size, validate_input, validate_key

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


def resolve(type_name: str, handler_name: str) -> Handler:
    obj = get_object(type_name)
    from .registry import all_objects

    if obj is None:
        known = ", ".join(o.name for o in all_objects()) or "none"
        raise NotFound(f"Unknown object type {type_name!r}; known types: {known}.")
    handler = obj.handlers.get(handler_name)
    if handler is None:
        known = ", ".join(sorted(obj.handlers)) or "none"
        raise NotFound(f"Object type {type_name!r} has no handler {handler_name!r}; its handlers: {known}.")
    return handler


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
        from .services import invocation_submit

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
        from .services import awakeable_complete

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
        from .services import timer_arm

        me = self.invocation
        self.timers_touched.add(name)
        try:
            armed = timer_arm(invocation=me, name=name, handler=handler_name, arg=arg, delay=delay, at=at, every=every)
        except ObjectsError as exc:
            raise TerminalError(str(exc), exc.status_code) from exc
        return armed.public_id

    def cancel_timer(self, name: str) -> bool:
        from .services import timer_cancel

        self.timers_touched.add(name)
        return timer_cancel(instance_id=self.invocation.instance_id, name=name, keep=self.invocation.pk)


def _step_text(kind: str, name: str) -> str:
    return repr(name) if kind == JournalEntry.Kind.RUN else f"ctx.{kind}()"


def instance_id_find(type_name: str, key: str) -> int | None:
    """The id of the key's row, None when the key has none yet. One indexed SELECT on the hot paths (raw: the
    ORM's query building cost more than the query)."""
    connection = db()
    table = connection.ops.quote_name(Instance._meta.db_table)
    row = fetchone(connection, _INSTANCE_ID_SQL.format(table=table), [type_name, key])
    return None if row is None else int(row[0])


def instance_id_ensure(type_name: str, key: str, *, missing: bool = False) -> int:
    """The id of the key's row, created when the key is new (`missing`: the caller just found no row, so
    the row is created without looking first). On PostgreSQL one raw `INSERT ... ON CONFLICT DO NOTHING
    RETURNING id`, and a look-up only when another request created the row meanwhile (the ORM's path took
    three statements and a fifth of a new key's first call)."""
    if not missing:
        found = instance_id_find(type_name, key)
        if found is not None:
            return found
    connection = db()
    if connection.vendor == "postgresql":
        row = fetchone(connection, *instance_create_statement(connection, type_name, key))
        if row is not None:
            return int(row[0])
    else:
        Instance.objects.bulk_create([Instance(type_name=type_name, key=key)], ignore_conflicts=True)
    found = instance_id_find(type_name, key)
    if found is None:  # created and deleted again in between (an operator's delete): create it once more
        return instance_id_ensure(type_name, key, missing=True)
    return found


_INSTANCE_ID_SQL = 'SELECT id FROM {table} WHERE type_name = %s AND "key" = %s'
# A new key's row with its fields' defaults (tests/integration/test_submit_statement.py compares it with
# the ORM's row, so a field added to Instance without a default here fails there).
_INSTANCE_CREATE_SQL = (
    'INSERT INTO {table} (type_name, "key", version, paused, paused_reason, created_at, changed_at) '
    "VALUES (%s, %s, 0, false, '', %s, NULL) ON CONFLICT (type_name, \"key\") DO NOTHING RETURNING id"
)


def instance_create_statement(connection: Any, type_name: str, key: str) -> tuple[str, list[Any]]:
    """PostgreSQL's statement making a new key's row (its id returned; no row when the key has one already),
    and its parameters. Shared with the event loop's ingress (objects/asgi.py)."""
    table = connection.ops.quote_name(Instance._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    return _INSTANCE_CREATE_SQL.format(table=table), [type_name, key, now]


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


def finish(
    invocation: Invocation,
    status: str,
    *,
    output: Any = None,
    error: BaseException | None = None,
    only_if_open: bool = False,
) -> bool:
    """Record an invocation's outcome. With `only_if_open`, refuse when an operator cancelled or killed it."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "status": status,
        "finished_at": now,
        "output": output,
        "started_at": invocation.started_at or now,
    }
    if error is not None:
        fields["error_message"] = str(error)
        fields["error_code"] = getattr(error, "status_code", 500)
        fields["error_type"] = type(error).__name__
        fields["error_traceback"] = "".join(traceback.format_exception(error))
    if not _finish_row(invocation.pk, fields, only_if_open):
        return False
    for name, value in fields.items():
        setattr(invocation, name, value)
    tally.finished(invocation)
    return True


def finish_succeeded(invocation: Invocation, state: StateCache, output: Any, *, entries: bool = True) -> bool:
    """Record a handler's success and write its state changes, only while the invocation is open (an operator
    may have cancelled or killed it meanwhile: then nothing is written and False is returned).

    On PostgreSQL one statement does it all (data-modifying CTEs, each state write conditional on the finish):
    one round trip instead of four on the worker's hot path. Elsewhere, the flush then the finish; the
    caller's savepoint undoes the flush when the finish is refused.

    Without `entries` (PostgreSQL), the version and history are written but not the entry rows: the caller
    writes them later with `state.store()` (a group pass, once per key after its last invocation)."""
    connection = db()
    if connection.vendor != "postgresql":
        version = state.flush(invocation_id=invocation.pk)
        if not finish(invocation, Status.SUCCEEDED, output=output, only_if_open=True):
            return False
        if version is not None:
            notify.state_changed(invocation.type_name, invocation.key, version)
        return True
    now = timezone.now()
    fields: dict[str, Any] = {
        "status": Status.SUCCEEDED,
        "finished_at": now,
        "output": output,
        "started_at": invocation.started_at or now,
    }
    update, params = _finish_sql(invocation.pk, fields, only_if_open=True)
    sql = f"WITH f AS ({update} RETURNING id)"
    pending = state.changes()
    if pending is not None:
        more_sql, more_params = _state_write_sql(state, pending, invocation.pk, now, entries=entries)
        sql += more_sql
        params += more_params
        sql += " SELECT (SELECT COUNT(*) FROM f), (SELECT version FROM v)"
    else:
        sql += " SELECT COUNT(*), NULL FROM f"
    row = fetchone(connection, sql, params)  # always one row: the count of opened rows
    if row is None or row[0] == 0:  # not opened
        return False
    if pending is not None:
        state.flushed(entries=entries)
        notify.state_changed(invocation.type_name, invocation.key, row[1])
    for name, value in fields.items():
        setattr(invocation, name, value)
    tally.finished(invocation)
    return True


def _state_write_sql(
    state: StateCache, pending: tuple[dict[str, str], list[str]], invocation_id: int, now: Any, *, entries: bool
) -> tuple[str, list[Any]]:
    """The state flush of `StateCache.flush` (entries upserted and deleted, version bumped, history rows with
    the new value only) as CTEs that run only if `f` (the finish) updated its row."""
    connection = db()
    to_write, to_delete = state.entry_changes() if entries else ({}, [])  # since the rows were last written
    instance_id = state.instance_id
    when = connection.ops.adapt_datetimefield_value(now)
    sql = (
        f", v AS (UPDATE {connection.ops.quote_name(Instance._meta.db_table)} SET version = version + 1, "
        "changed_at = %s WHERE id = %s AND EXISTS (SELECT 1 FROM f) RETURNING version)"
    )
    params: list[Any] = [when, instance_id]
    if to_write:
        typed = "(%s::bigint, %s::text, %s::jsonb, %s::integer, %s::timestamptz)"
        upsert, upsert_params = entry_upsert(instance_id, to_write, when, row=typed, where="EXISTS (SELECT 1 FROM f)")
        sql += f", e AS ({upsert})"
        params += upsert_params
    if to_delete:
        delete, delete_params = entry_delete(instance_id, to_delete, where="EXISTS (SELECT 1 FROM f)")
        sql += f", d AS ({delete})"
        params += delete_params
    history = state.history_rows(pending)  # since the last recorded change (none for a type without history)
    if not history:
        return sql, params
    rows = ", ".join(["(%s::text, %s::text, %s::jsonb, %s::jsonb)"] * len(history))
    sql += (
        f", h AS (INSERT INTO {connection.ops.quote_name(StateChange._meta.db_table)} (instance_id, name, action, "
        "old_value, new_value, version, invocation_id, user_id, at) SELECT %s::bigint, x.name, x.action, x.old, "
        f"x.new, v.version, %s::bigint, NULL, %s::timestamptz FROM v, (VALUES {rows}) AS x(name, action, old, new))"
    )
    params += [instance_id, invocation_id, when]
    for row in history:
        params += list(row)
    trim, trim_params = history_trim(instance_id, "(SELECT version FROM v)", [])  # the key's oldest versions
    return sql + f", t AS ({trim})", params + trim_params


def _finish_row(pk: int, fields: dict[str, Any], only_if_open: bool) -> bool:
    connection = db()
    sql, params = _finish_sql(pk, fields, only_if_open=only_if_open)
    return rowcount(connection, sql, params) > 0


def _finish_sql(pk: int, fields: dict[str, Any], *, only_if_open: bool) -> tuple[str, list[Any]]:
    """The invocation's finishing UPDATE in raw SQL (it runs once per invocation on the hot path; the ORM's
    query building cost more than the statement). Each field prepares its own value, as the ORM would (JSON
    null as SQL NULL). With `only_if_open`, it changes nothing once an operator cancelled or killed it."""
    connection = db()
    columns = [f"{connection.ops.quote_name(str(_FIELDS[name].column))} = %s" for name in fields]
    params = [_FIELDS[name].get_db_prep_save(value, connection) for name, value in fields.items()]
    sql = f"UPDATE {connection.ops.quote_name(Invocation._meta.db_table)} SET {', '.join(columns)} WHERE id = %s"
    params.append(pk)
    if only_if_open:
        sql += " AND status IN (%s, %s, %s) AND kill_requested = %s"
        params += [Status.PENDING.value, Status.BACKING_OFF.value, Status.SUSPENDED.value, False]
    return sql, params


_FIELDS = {field.attname: field for field in Invocation._meta.concrete_fields}


def timer_rearm(invocation: Invocation, now: datetime) -> None:
    """A periodic timer's next run, written with the run that just ended (objects/services.py)."""
    from .services import timer_rearm as rearm

    rearm(invocation, now)
