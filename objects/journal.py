"""The journal of an invocation's steps (`ctx.run` results, sleeps, awakeables), and its awakeables' completions.

On PostgreSQL a step is written through a second connection of this thread, committed before the handler goes
on, so it survives the rollback of the invocation's attempt (a failure, or a suspension). SQLite allows one
writer at a time and the invocation's transaction holds it, so there a step is written in that transaction; the
runner writes the attempt's steps again after rolling the attempt back (`InvocationRun.journal_rewrite`).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

from django.db import connection

from .models import Awakeable, JournalEntry

_local = threading.local()


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """A recorded step; for an awakeable, also whether it was completed and how."""

    kind: str
    name: str
    result: Any
    failure: str = ""
    terminal: bool = False
    completed: bool = False
    value: Any = None
    rejected: bool = False
    reason: str = ""


def durable() -> bool:
    """Whether a step survives the rollback of the attempt that wrote it (PostgreSQL's second connection)."""
    return connection.vendor == "postgresql"


_LOAD_SQL = (
    'SELECT j."index", j.kind, j.name, j.result{cast}, j.failure, a.completed_at IS NOT NULL, a.value{cast}, '
    "a.rejected, a.failure FROM {journal} j LEFT JOIN {awakeable} a ON a.invocation_id = j.invocation_id "
    'AND a."index" = j."index" WHERE j.invocation_id = %s'
)


def load(invocation_pk: int) -> dict[int, Step]:
    """The invocation's recorded steps by position."""
    sql = _LOAD_SQL.format(cast="::text" if durable() else "", **_tables())
    if durable():
        with _side_connection().cursor() as cursor:
            cursor.execute(sql, [invocation_pk])
            rows = cursor.fetchall()
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, [invocation_pk])
            rows = cursor.fetchall()
    return {
        index: Step(
            kind=kind,
            name=name,
            result=_json(result),
            failure=_failure_text(failure),
            terminal=failure.startswith("terminal:"),
            completed=bool(completed),
            value=_json(value),
            rejected=bool(rejected),
            reason=reason or "",
        )
        for index, kind, name, result, failure, completed, value, rejected, reason in rows
    }


def record(
    invocation_pk: int,
    index: int,
    name: str,
    result: Any,
    *,
    failure: str = "",
    terminal: bool = False,
    kind: str = JournalEntry.Kind.RUN,
) -> None:
    failure_text = f"terminal:{failure}" if terminal else failure
    if durable():
        side = _side_connection()
        with side.cursor() as cursor:
            params = [invocation_pk, index, str(kind), name, json.dumps(result), failure_text]
            cursor.execute(_RECORD_SQL.format(**_tables()), params)
        return
    JournalEntry.objects.update_or_create(
        invocation_id=invocation_pk,
        index=index,
        defaults={"name": name, "kind": kind, "result": result, "failure": failure_text},
    )


_RECORD_SQL = (
    'INSERT INTO {journal} (invocation_id, "index", kind, name, result, failure, created_at) '
    'VALUES (%s, %s, %s, %s, %s::jsonb, %s, now()) ON CONFLICT (invocation_id, "index") DO UPDATE '
    "SET kind = EXCLUDED.kind, name = EXCLUDED.name, result = EXCLUDED.result, failure = EXCLUDED.failure"
)
# An awakeable and its journal step in one statement (PostgreSQL, on the second connection).
_AWAKEABLE_SQL = (
    'WITH a AS (INSERT INTO {awakeable} (token, invocation_id, "index", created_at, rejected, failure) '
    "VALUES (%s, %s, %s, now(), false, '') ON CONFLICT (token) DO NOTHING) " + _RECORD_SQL
)


def awakeable_create(invocation_pk: int, index: int, token: str) -> None:
    """Record a new awakeable of the invocation at step `index`."""
    kind = str(JournalEntry.Kind.AWAKEABLE)
    if durable():
        with _side_connection().cursor() as cursor:
            cursor.execute(
                _AWAKEABLE_SQL.format(**_tables()),
                [token, invocation_pk, index, invocation_pk, index, kind, "awakeable", json.dumps({"id": token}), ""],
            )
        return
    Awakeable.objects.get_or_create(token=token, defaults={"invocation_id": invocation_pk, "index": index})
    record(invocation_pk, index, "awakeable", {"id": token}, kind=kind)


def awakeable_read(token: str) -> Step | None:
    """An awakeable's completion as committed now (None when it does not exist)."""
    row = Awakeable.objects.filter(token=token).values_list("completed_at", "value", "rejected", "failure").first()
    if row is None:
        return None
    completed_at, value, rejected, reason = row
    kind = str(JournalEntry.Kind.AWAKEABLE)
    done = completed_at is not None
    return Step(kind, "awakeable", {"id": token}, completed=done, value=value, rejected=rejected, reason=reason)


def _json(text: Any) -> Any:
    if text is None:
        return None
    return json.loads(text) if isinstance(text, (str, bytes)) else text


def _failure_text(failure: str) -> str:
    return failure.removeprefix("terminal:")


def _tables() -> dict[str, str]:
    quote = connection.ops.quote_name
    return {"journal": quote(JournalEntry._meta.db_table), "awakeable": quote(Awakeable._meta.db_table)}


def _side_connection() -> Any:
    """A raw autocommit connection of this thread, opened like the default one: each statement commits on
    its own, and no transaction is ever left open (an idle transaction would hold locks)."""
    side = getattr(_local, "side", None)
    if side is None or side.closed:
        side = connection.get_new_connection(connection.get_connection_params())
        side.autocommit = True
        _local.side = side
    return side
