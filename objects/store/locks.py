"""The bound on every lock wait of a session (OBJECTS_LOCK_TIMEOUT_MS), and PostgreSQL's SQLSTATE for a wait
that ran out (`LOCK_NOT_AVAILABLE`).
"""

from __future__ import annotations

from typing import Any

from django.db.backends.signals import connection_created
from django.dispatch import receiver

from .. import conf
from .db import db
from .sql import LOCK_TIMEOUT_LOCAL_SQL, LOCK_TIMEOUT_SESSION_SQL

LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout fired


def set_lock_timeout() -> None:
    """Bound every lock wait of this (worker) session, once per database connection, outside a transaction
    (a SET inside one would be undone by its rollback). Inside a caller's transaction: local to it, as before."""
    connection = db()
    if connection.vendor != "postgresql":
        return
    value = f"{conf.get('OBJECTS_LOCK_TIMEOUT_MS')}ms"
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(LOCK_TIMEOUT_LOCAL_SQL, [value])
        return
    connection.ensure_connection()  # a new session resets the marker (below) before it is read
    if getattr(connection, "_objects_lock_timeout", None) == value:
        return
    with connection.cursor() as cursor:
        cursor.execute(LOCK_TIMEOUT_SESSION_SQL, [value])
    connection._objects_lock_timeout = value  # type: ignore[attr-defined]


@receiver(connection_created)
def _forget_lock_timeout(sender: Any, connection: Any, **kwargs: Any) -> None:
    connection._objects_lock_timeout = None  # a new session starts with the server's default
