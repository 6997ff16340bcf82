"""A key's inbox read in raw SQL: its row locked without waiting, its head invocations, and invocation rows
built into model instances by the fields' own converters (what a queryset does).
"""

from __future__ import annotations

from typing import Any

from ..models import Invocation
from .db import db, fetchall, fetchone
from .sql import inbox_heads_sql, key_lock_sql


def key_lock(type_name: str, key: str) -> tuple[int, bool] | None:
    """Lock the key's row without waiting (SKIP LOCKED); None when it is held elsewhere or does not exist."""
    connection = db()
    row = fetchone(connection, key_lock_sql(connection), [type_name, key])
    return None if row is None else (int(row[0]), bool(row[1]))


def inbox_heads(instance_id: int, now: Any, batch: int) -> list[Invocation]:
    """The key's next invocations, as model instances built from one cursor read with the fields' own
    converters (what a queryset does, without its per-call query compilation)."""
    connection = db()
    sql = inbox_heads_sql(connection)
    rows = fetchall(connection, sql, [instance_id, connection.ops.adapt_datetimefield_value(now), batch])
    return invocations_from_rows(rows)


def invocations_from_rows(rows: list[tuple[Any, ...]]) -> list[Invocation]:
    """Model instances from rows of `sql.invocation_columns()`, converted by the fields' own converters."""
    connection = db()
    fields = Invocation._meta.concrete_fields
    converters = _converters(connection)
    names = [f.attname for f in fields]
    heads = []
    for row in rows:
        values = list(row)
        for index, column, functions in converters:
            for function in functions:
                values[index] = function(values[index], column, connection)
        heads.append(Invocation.from_db(connection.alias, names, values))
    return heads


_converter_cache: dict[str, list[tuple[int, Any, list[Any]]]] = {}


def _converters(conn: Any) -> list[tuple[int, Any, list[Any]]]:
    if conn.alias not in _converter_cache:
        found = []
        for index, field in enumerate(Invocation._meta.concrete_fields):
            column = field.get_col(Invocation._meta.db_table)
            functions = conn.ops.get_db_converters(column) + column.get_db_converters(conn)
            if functions:
                found.append((index, column, functions))
        _converter_cache[conn.alias] = found
    return _converter_cache[conn.alias]
