"""The savepoint around each handler run, made lazily: only a handler that runs SQL pays for one."""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError, connection

from .db import db


class LazySavepoint:
    """A handler's savepoint, made just before the first SQL statement the handler runs (a ctx.send, a
    ctx.call, a journaled step, its own ORM use), or never. Without one, a handler that raises has written
    nothing, and its success is written by one statement that either applies whole or fails the whole pass
    (whose keys then go to per-key drains, which always make savepoints). Leaving it: released on success,
    rolled back (and released, as Django's atomic does) on an exception."""

    def __init__(self) -> None:
        self.sid: str | None = None
        self._watching = True

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if self._watching and self.sid is None:
            self._watching = False  # connection.savepoint() runs a statement through this wrapper too
            self.sid = connection.savepoint()
            self._watching = True
        return execute(sql, params, many, context)

    def handler_done(self) -> None:
        """The handler returned: what follows is the runner's own finishing statement, which runs unwatched
        (an execute wrapper on the connection would also send it through Django's cursor)."""
        self._unwatch()
        if connection.needs_rollback:  # the handler caught a database error inside an atomic block
            raise DatabaseError(
                "The handler caught a database error inside transaction.atomic() and went on; its writes "
                "were rolled back. Let the error propagate, or catch it outside the atomic block."
            )

    def __enter__(self) -> LazySavepoint:
        connection.execute_wrappers.append(self)
        return self

    def _unwatch(self) -> None:
        wrappers = db().execute_wrappers
        if self in wrappers:
            wrappers.remove(self)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        connection = db()
        self._unwatch()
        if exc_type is None:
            if self.sid is not None:
                connection.savepoint_commit(self.sid)
            return
        if self.sid is not None:
            connection.needs_rollback = False
            try:
                connection.savepoint_rollback(self.sid)
                connection.savepoint_commit(self.sid)
            except Exception:
                connection.needs_rollback = True  # the pass cannot go on: it rolls back whole
                raise
