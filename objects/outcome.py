"""An invocation's outcome written in its transaction: its status, output or error, and for a success the key's
state entries, history and version, in one statement that applies whole (`finish_succeeded`). Raw SQL
(objects/backends says why).
"""

from __future__ import annotations

import traceback
from typing import Any

from django.utils import timezone

from .backends import db, fetchone, rowcount
from .models import Instance, Invocation, StateChange, Status
from .signals import notify, tally
from .state import StateCache, entry_delete, entry_upsert, history_trim


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
    """The invocation's finishing UPDATE. Each field prepares its own value, as the ORM would (JSON
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
