"""An invocation's outcome written in its transaction: its status, output or error, and for a success the key's
state entries, history and version, in one statement that applies whole (`finish_succeeded`). Its
statements are objects/store/finish.py's.
"""

from __future__ import annotations

import traceback
from typing import Any

from django.utils import timezone

from ..models import Invocation, Status
from ..signals import notify, tally
from ..store.db import db, fetchone, rowcount
from ..store.deferred import Deferred
from ..store.finish import finish_statement, finish_update, state_writes
from .state import StateCache


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


def finish_succeeded(
    invocation: Invocation, state: StateCache, output: Any, *, entries: bool = True, deferred: Deferred | None = None
) -> bool:
    """Record a handler's success and write its state changes, only while the invocation is open (an operator
    may have cancelled or killed it meanwhile: then nothing is written and False is returned).

    On PostgreSQL one statement does it all (data-modifying CTEs, each state write conditional on the finish):
    one round trip instead of four on the worker's hot path. Elsewhere, the flush then the finish; the
    caller's savepoint undoes the flush when the finish is refused.

    Without `entries` (PostgreSQL), the version and history are written but not the entry rows: the caller
    writes them later with `state.store()` (a group pass, once per key after its last invocation).

    With `deferred` (a group pass, a handler that ran no SQL of its own), the statement is sent without waiting
    and True returned at once; its row is read when the pass settles, which loses the pass when the statement
    finished nothing (objects/store/deferred.py)."""
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
    update, params = finish_update(invocation.pk, fields, only_if_open=True)
    pending = state.changes()
    writes = None
    if pending is not None:
        to_write, to_delete = state.entry_changes() if entries else ({}, [])  # since the rows were last written
        when = connection.ops.adapt_datetimefield_value(now)
        history = state.history_rows(pending)  # since the last recorded change (none for a type without history)
        writes = state_writes(state.instance_id, to_write, to_delete, history, invocation.pk, when)
    sql, params = finish_statement(update, params, writes)
    changed = pending is not None

    def recorded(row: tuple | None) -> bool:  # always one row: the count of opened rows, and the new version
        if row is None or row[0] == 0:  # not opened
            return False
        if changed:
            notify.state_changed(invocation.type_name, invocation.key, row[1])
        tally.finished(invocation)  # after the fields below are set: it counts the outcome
        return True

    row: tuple | None = None
    if deferred is not None and deferred.usable():
        deferred.send(sql, params, recorded)  # its row is read when the pass settles
    else:
        row = fetchone(connection, sql, params)
        if row is None or row[0] == 0:  # not opened
            return False
    if changed:
        state.flushed(entries=entries)
    for name, value in fields.items():
        setattr(invocation, name, value)
    return row is None or recorded(row)


def _finish_row(pk: int, fields: dict[str, Any], only_if_open: bool) -> bool:
    connection = db()
    sql, params = finish_update(pk, fields, only_if_open=only_if_open)
    return rowcount(connection, sql, params) > 0
