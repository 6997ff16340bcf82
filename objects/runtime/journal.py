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

from ..models import Awakeable, JournalEntry
from ..store.sql import AWAKEABLE_CREATE_SQL, JOURNAL_LOAD_SQL, JOURNAL_RECORD_SQL, journal_sql

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


def load(invocation_pk: int) -> dict[int, Step]:
    """The invocation's recorded steps by position."""
    sql = journal_sql(JOURNAL_LOAD_SQL, cast="::text" if durable() else "")
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
            cursor.execute(journal_sql(JOURNAL_RECORD_SQL), params)
        return
    JournalEntry.objects.update_or_create(
        invocation_id=invocation_pk,
        index=index,
        defaults={"name": name, "kind": kind, "result": result, "failure": failure_text},
    )


def awakeable_create(invocation_pk: int, index: int, token: str) -> None:
    """Record a new awakeable of the invocation at step `index`."""
    kind = str(JournalEntry.Kind.AWAKEABLE)
    if durable():
        with _side_connection().cursor() as cursor:
            cursor.execute(
                journal_sql(AWAKEABLE_CREATE_SQL),
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


def _side_connection() -> Any:
    """A raw autocommit connection of this thread, opened like the default one: each statement commits on
    its own, and no transaction is ever left open (an idle transaction would hold locks)."""
    side = getattr(_local, "side", None)
    if side is None or side.closed:
        side = connection.get_new_connection(connection.get_connection_params())
        side.autocommit = True
        _local.side = side
    return side
