"""The hot paths' way to the database: the current connection, and one raw statement run on it.

`db()` is this thread's default connection, looked up once. `django.db.connection` is a proxy that looks the
connection up on every attribute access, and the hot paths touch it many times per call; a function on the
hot path binds `connection = db()` once and uses that.

`fetchone`, `fetchall` and `rowcount` run one raw statement of a hot path. On PostgreSQL (objects/backends)
they use a cursor the connection keeps (`DatabaseWrapper.kept_cursor`) instead of a new Django cursor
per statement. The same checks run (health check, thread sharing, broken transaction) and psycopg's errors
become Django's. While anything observes the connection's statements (`execute_wrapper`, debug logging,
`CaptureQueriesContext`, `django_assert_num_queries`) they take Django's cursor, so those see every statement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections


def db() -> Any:
    """The default database connection of this thread (and async context), as `django.db.connection` is."""
    return connections[DEFAULT_DB_ALIAS]


def fetchone(connection: Any, sql: str, params: Sequence[Any]) -> tuple | None:
    """Run one statement; its first row (None without one)."""
    return _run(connection, sql, params, lambda cursor: cursor.fetchone())


def fetchall(connection: Any, sql: str, params: Sequence[Any]) -> list[tuple]:
    """Run one statement; all its rows."""
    return _run(connection, sql, params, lambda cursor: cursor.fetchall())


def rowcount(connection: Any, sql: str, params: Sequence[Any]) -> int:
    """Run one statement; how many rows it changed."""
    return _run(connection, sql, params, lambda cursor: cursor.rowcount)


def _run(connection: Any, sql: str, params: Sequence[Any], read: Callable[[Any], Any]) -> Any:
    kept = getattr(connection, "kept_cursor", None)
    if kept is None or connection.execute_wrappers or connection.queries_logged:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return read(cursor)
    cursor = kept()
    with connection.wrap_database_errors:
        cursor.execute(sql, params)
        return read(cursor)
