"""The journal of `ctx.run` steps: each result is committed in its own transaction before the handler goes on.

On PostgreSQL the step is written through a second connection of this thread, so it survives the rollback
of the invocation's transaction. SQLite allows one writer at a time and the invocation's transaction holds
it, so there the step is written in the invocation's transaction (a failed attempt loses its steps).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from django.db import connection

from .models import JournalEntry

_local = threading.local()


def load(invocation_pk: int) -> dict[int, dict[str, Any]]:
    if connection.vendor == "postgresql":
        with _side_connection().cursor() as cursor:
            cursor.execute(
                "SELECT index, name, result::text, failure FROM objects_journalentry WHERE invocation_id = %s",
                [invocation_pk],
            )
            rows = cursor.fetchall()
    else:
        rows = [
            (i, n, json.dumps(r), f)
            for i, n, r, f in JournalEntry.objects.filter(invocation_id=invocation_pk).values_list(
                "index", "name", "result", "failure"
            )
        ]
    return {
        index: {
            "name": name,
            "result": json.loads(result) if result is not None else None,
            "failure": _failure_text(failure),
            "terminal": failure.startswith("terminal:"),
        }
        for index, name, result, failure in rows
    }


def record(
    invocation_pk: int, index: int, name: str, result: Any, *, failure: str = "", terminal: bool = False
) -> None:
    failure_text = f"terminal:{failure}" if terminal else failure
    if connection.vendor == "postgresql":
        side = _side_connection()
        with side.cursor() as cursor:
            cursor.execute(
                "INSERT INTO objects_journalentry (invocation_id, index, name, result, failure, created_at) "
                "VALUES (%s, %s, %s, %s::jsonb, %s, now()) ON CONFLICT (invocation_id, index) DO UPDATE "
                "SET name = EXCLUDED.name, result = EXCLUDED.result, failure = EXCLUDED.failure",
                [invocation_pk, index, name, json.dumps(result), failure_text],
            )
        return
    JournalEntry.objects.update_or_create(
        invocation_id=invocation_pk, index=index, defaults={"name": name, "result": result, "failure": failure_text}
    )


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
