"""Django's PostgreSQL backend with a health check that costs no round trip while the connection is quiet.

With `CONN_HEALTH_CHECKS` (on in config/settings.py) Django checks a persistent connection before the
first query of every request and of every Celery task, with `SELECT 1`: one more statement per call on the
ingress's hot path.

A connection whose server went away (a restart, an administrator's `pg_terminate_backend`, an idle
timeout) is readable: the server sent its FATAL message and closed the socket. A healthy idle connection has
nothing to read. So the check asks the socket first, without waiting, and runs `SELECT 1` only when
something is there or psycopg already knows the connection is broken. A server that vanished without closing
the socket (a network partition) is not detected by either check before the query's own timeout; the query
then fails, the request answers 503, and Django closes the connection at the request's end.

`kept_cursor` gives the hot paths' raw statements (objects.store.db.fetchone and the like) one psycopg cursor
per connection, made again when Django opens a new connection.
"""

from __future__ import annotations

import select
from typing import Any

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept: tuple[Any, Any] | None = None

    def kept_cursor(self) -> Any:
        """This connection's kept psycopg cursor, after the checks Django's `cursor()` makes (a failed health
        check, thread sharing) and its `execute` makes (a transaction that must be rolled back first)."""
        self.close_if_health_check_failed()
        self.ensure_connection()
        self.validate_thread_sharing()
        self.validate_no_broken_transaction()
        kept = self._kept
        if kept is None or kept[0] is not self.connection:
            with self.wrap_database_errors:
                kept = self._kept = (self.connection, self.create_cursor())
        return kept[1]

    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        if connection.info.transaction_status == pq.TransactionStatus.IDLE and _quiet(connection):
            return True
        return super().is_usable()


def _quiet(connection) -> bool:
    """Nothing to read on the connection's socket right now (no FATAL message, no end of stream)."""
    try:
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False
