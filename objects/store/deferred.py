"""Statements whose results a group pass reads later: sent in psycopg's pipeline mode, so PostgreSQL runs one
invocation's finishing statement while the worker runs the next handler, instead of one after the other.

Only a finishing statement that needs no savepoint is deferred (objects/store/savepoints.py): it applies whole
or not at all. Any other statement on the connection first settles what is deferred (the pipeline is left and
every result read), so the rest of the pass, the handlers' own SQL included, sees results as it always did.
A deferred statement that changed nothing (an operator killed its invocation meanwhile) or failed loses the
pass: `check` raises, the pass rolls back whole, and its keys go to per-key drains, which run them again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import DatabaseError


class PassLost(DatabaseError):
    """A deferred statement changed nothing or failed: the pass must roll back whole."""


class Deferred:
    """The deferred statements of one pass on one PostgreSQL connection."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self._pipeline: Any = None
        self._pending: list[tuple[Any, Callable[[tuple | None], bool]]] = []
        self.lost: str | None = None

    def usable(self) -> bool:
        """Whether a statement may be deferred now: nothing else observes the connection's statements."""
        connection = self.connection
        if connection.vendor != "postgresql" or connection.queries_logged:
            return False
        return all(wrapper == self._settle_first for wrapper in connection.execute_wrappers)

    def send(self, sql: str, params: list[Any], then: Callable[[tuple | None], bool]) -> None:
        """Send a statement without waiting; `then(row)` gets its first row once settled, and returns False when
        the pass must be lost."""
        connection = self.connection
        with connection.wrap_database_errors:  # a failure here is the pass's, as a waited statement's would be
            if self._pipeline is None:
                pipeline = connection.connection.pipeline()
                pipeline.__enter__()
                self._pipeline = pipeline
                connection.execute_wrappers.insert(0, self._settle_first)
            cursor = connection.create_cursor()
            cursor.execute(sql, params)
        self._pending.append((cursor, then))

    def _settle_first(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.settle()
        return execute(sql, params, many, context)

    def settle(self) -> None:
        """Leave the pipeline and hand each deferred statement's row to its `then`. Never raises: what went wrong
        is kept in `lost` for `check`."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is None:
            return
        wrappers = self.connection.execute_wrappers
        if self._settle_first in wrappers:
            wrappers.remove(self._settle_first)
        pending, self._pending = self._pending, []
        try:
            pipeline.__exit__(None, None, None)
            for cursor, then in pending:
                row = cursor.fetchone()
                cursor.close()
                if not then(row):
                    self.lost = self.lost or "an invocation was cancelled or killed while its pass ran"
        except Exception as exc:  # noqa: BLE001 - kept for `check`, which loses the pass
            self.lost = self.lost or f"a deferred finishing statement failed: {exc}"

    def check(self) -> None:
        """Settle, and raise PassLost if a deferred statement changed nothing or failed."""
        self.settle()
        if self.lost:
            raise PassLost(self.lost)
