"""The opening of a worker's pass on PostgreSQL in one round trip: `BEGIN` and prepared statements, sent as one
simple-protocol message (objects/worker/partition.py: the claim, then the inbox read).

Through psycopg, `BEGIN`, the claim and the inbox read were three round trips: psycopg sends its own `BEGIN`
and waits for it, and a statement with parameters goes alone. A simple-protocol message may hold several
statements, each run after the one before has finished, with its own snapshot. It takes no parameters, so the
arguments are written as literals (the worker's own numbers, flags and times, never a caller's text), and a
statement is prepared on the session with `PREPARE` and run with `EXECUTE`, after as many runs planned each
time as psycopg would make (`prepare_threshold`). psycopg deallocates every statement of a session when a
transaction on it rolls back; an `EXECUTE` that finds its statement gone makes the opening roll back and go
again, preparing afresh. Used only where the settings allow prepared statements (`server_side_binding` with a
`prepare_threshold`); elsewhere, and while anything observes the connection's statements, `run_opening` runs
the statements one after another."""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import re
from collections.abc import Sequence
from typing import Any

from .db import fetchall

_names = itertools.count(1)
_PLACEHOLDER = re.compile(r"%(s|%)")


def run_opening(connection: Any, statements: Sequence[tuple[str, str, Sequence[Any]]]) -> list[list[tuple]]:
    """Open a transaction (inside an atomic block whose transaction has not begun yet) and run `statements`,
    each a (key, sql, params): its key names the statement on the session, whatever its text. All the rows of
    each, in order."""
    connection.ensure_connection()
    if not _batched(connection):
        return [fetchall(connection, sql, params) for _key, sql, params in statements]
    import psycopg  # PostgreSQL's only: a project on SQLite may not have it

    try:
        cursor = connection.kept_cursor()
        with connection.wrap_database_errors:
            # The message's BEGIN opens the transaction; psycopg's own BEGIN would be one more round trip.
            # Django sets autocommit again when the atomic block ends, and psycopg's COMMIT and ROLLBACK go by
            # the transaction's status, not by this flag.
            connection.connection.autocommit = True
            try:
                return _send(cursor, _message(connection, statements))
            except psycopg.errors.InvalidSqlStatementName:
                # psycopg deallocates every prepared statement of the session after a rollback: prepare again.
                forget(connection)
                return _send(cursor, "ROLLBACK; " + _message(connection, statements))
    except BaseException:
        forget(connection)  # what was prepared before the failure is not known: prepare afresh under new names
        raise


def _message(connection: Any, statements: Sequence[tuple[str, str, Sequence[Any]]]) -> str:
    return "; ".join(["BEGIN"] + [_execute(connection, key, sql, params) for key, sql, params in statements])


def _send(cursor: Any, message: str) -> list[list[tuple]]:
    """Send `message`; the rows of each of its statements that returns rows."""
    from psycopg.pq import ExecStatus

    cursor.execute(message, prepare=False)
    results = []
    while True:
        result = cursor.pgresult  # not `description`, which builds every column's description each time
        if result is not None and result.status == ExecStatus.TUPLES_OK:
            results.append(cursor.fetchall())
        if not cursor.nextset():
            return results


def forget(connection: Any) -> None:
    """Forget the statements this module prepared on the connection's session."""
    connection._objects_prepared = None


def _prepared(connection: Any) -> dict[str, _Statement]:
    """The statements of the connection's current session, by key. A new session has none."""
    held = getattr(connection, "_objects_prepared", None)
    if held is None or held[0] is not connection.connection:
        held = connection._objects_prepared = (connection.connection, {})
    return held[1]


def _batched(connection: Any) -> bool:
    if getattr(connection, "kept_cursor", None) is None or connection.execute_wrappers or connection.queries_logged:
        return False
    if not connection.in_atomic_block or connection.connection is None:
        return False
    from psycopg.pq import TransactionStatus

    if connection.connection.info.transaction_status != TransactionStatus.IDLE:
        return False  # the transaction has begun already
    binds_on_server = connection.settings_dict.get("OPTIONS", {}).get("server_side_binding")
    return bool(binds_on_server) and connection.connection.prepare_threshold is not None


@dataclasses.dataclass
class _Statement:
    """A key's statement on a session: its text, how often it ran, its prepared name once it has one, and the
    name of the key's former text, deallocated when the new one is prepared."""

    sql: str
    runs: int = 0
    name: str = ""
    former: str = ""


def _execute(connection: Any, key: str, sql: str, params: Sequence[Any]) -> str:
    """`sql` with `params` as literals. As psycopg does with a statement it binds, the first runs of a text on
    a session are planned each time (with the arguments' values, for the tables as they are then); the run after
    `prepare_threshold` of them prepares it, and later ones run it with `EXECUTE`."""
    held = _prepared(connection)
    statement = held.get(key)
    if statement is None or statement.sql != sql:
        former = (statement.name or statement.former) if statement else ""
        statement = held[key] = _Statement(sql, former=former)
    literals = [_literal(value) for value in params]
    if statement.name:
        return f"EXECUTE {statement.name}({', '.join(literals)})"
    statement.runs += 1
    if statement.runs <= connection.connection.prepare_threshold:
        return _numbered(sql, literals)
    prologue = f"DEALLOCATE {statement.former}; " if statement.former else ""
    statement.name, statement.former = f"objects_{key}_{next(_names)}", ""
    prepare = f"PREPARE {statement.name} AS {_numbered(sql)}"
    return f"{prologue}{prepare}; EXECUTE {statement.name}({', '.join(literals)})"


def _numbered(sql: str, literals: Sequence[str] | None = None) -> str:
    """`sql` with its %s placeholders as $1, $2, ... or as `literals` (and %% as %)."""
    count = itertools.count()

    def placeholder(match: re.Match[str]) -> str:
        if match[1] == "%":
            return "%"
        n = next(count)
        return f"${n + 1}" if literals is None else literals[n]

    return _PLACEHOLDER.sub(placeholder, sql)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime.datetime):  # naive without USE_TZ, as psycopg would send it
        return f"'{value.isoformat()}'::{'timestamptz' if value.tzinfo is not None else 'timestamp'}"
    raise TypeError(f"no literal for {type(value).__name__} in a prepared statement's arguments")
