"""Database backends, and the hot paths' way to the database: the current connection, raw statements, the lock
timeout.

`db()` is this thread's default connection, looked up once. `django.db.connection` is a proxy that looks the
connection up on every attribute access, and the hot paths touch it many times per call; a function on the
hot path binds `connection = db()` once and uses that.

Why raw SQL on the hot paths (the ingress's insert, the worker's claim, run and commit; nowhere else): building
those statements through the ORM cost more CPU than PostgreSQL spent running them. Their texts are built from
the models' fields and table names, once per database kind, so a field added to a model is part of them.

`fetchone`, `fetchall` and `rowcount` run one raw statement of a hot path. On PostgreSQL (this package's
backend) they use a cursor the connection keeps (`DatabaseWrapper.kept_cursor`) instead of a new Django cursor
per statement. The same checks run (health check, thread sharing, broken transaction) and psycopg's errors
become Django's. While anything observes the connection's statements (`execute_wrapper`, debug logging,
`CaptureQueriesContext`, `django_assert_num_queries`) they take Django's cursor, so those see every statement.

`set_lock_timeout` bounds every lock wait of a session (OBJECTS_LOCK_TIMEOUT_MS); PostgreSQL's SQLSTATE for a
wait that ran out is `LOCK_NOT_AVAILABLE`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.signals import connection_created
from django.dispatch import receiver

from .. import conf

LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout fired


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


def set_lock_timeout() -> None:
    """Bound every lock wait of this (worker) session, once per database connection, outside a transaction
    (a SET inside one would be undone by its rollback). Inside a caller's transaction: local to it, as before."""
    connection = db()
    if connection.vendor != "postgresql":
        return
    value = f"{conf.get('OBJECTS_LOCK_TIMEOUT_MS')}ms"
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [value])  # SET LOCAL takes no parameter
        return
    connection.ensure_connection()  # a new session resets the marker (below) before it is read
    if getattr(connection, "_objects_lock_timeout", None) == value:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, false)", [value])
    connection._objects_lock_timeout = value  # type: ignore[attr-defined]


@receiver(connection_created)
def _forget_lock_timeout(sender: Any, connection: Any, **kwargs: Any) -> None:
    connection._objects_lock_timeout = None  # a new session starts with the server's default
