"""The engine's raw statements (objects/store says why raw): named texts and the small functions that build
them, but the invocation INSERTs (inserts), the finishing statement (finish) and a pass's reads (passes).
Callers run them; nothing here touches a row.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from .. import conf
from ..models import RUNNABLE_STATUSES, Awakeable, Instance, Invocation, JournalEntry, StateChange, StateEntry
from .db import db


def quoted(model: Any) -> str:
    """A model's table, quoted for the default database (how the statements name their tables, but the
    state's: below)."""
    return db().ops.quote_name(model._meta.db_table)


def marks(count: int) -> str:
    """`count` placeholders, comma-separated: an IN list or a VALUES row."""
    return ", ".join(["%s"] * count)


def json_mark(vendor: str) -> str:
    """The placeholder of a state value's JSON text: json on PostgreSQL (models.JSONText), a plain text on SQLite."""
    return "%s::json" if vendor == "postgresql" else "%s"


# An inbox's runnable invocations, by the statuses of RUNNABLE_STATUSES.
RUNNABLE_SQL = "status IN (" + ", ".join(f"'{status.value}'" for status in RUNNABLE_STATUSES) + ")"
# Appended to a key lock where the database has row locks (SQLite has none: immediate transactions serialize
# writers).
SKIP_LOCKED = " FOR NO KEY UPDATE SKIP LOCKED"

PING_SQL = "SELECT 1"
# Bound every lock wait (OBJECTS_LOCK_TIMEOUT_MS): for the transaction, or the session. SET LOCAL takes no
# parameter, set_config does.
LOCK_TIMEOUT_LOCAL_SQL = "SELECT set_config('lock_timeout', %s, true)"
LOCK_TIMEOUT_SESSION_SQL = "SELECT set_config('lock_timeout', %s, false)"


def synchronous_commit_sql(flush: bool) -> str:
    """Whether a session's commits wait for the WAL flush (the event loop's connections)."""
    return "SET synchronous_commit TO " + ("DEFAULT" if flush else "OFF")


# A statement that writes WAL (a row lock) and so, with synchronous_commit on, commits only once the WAL up to
# it is on disk: every earlier commit is durable when it returns. FOR KEY SHARE never waits for a worker that
# runs the invocation (its update takes a weaker lock).
FLUSH_SQL = f'SELECT 1 FROM "{Invocation._meta.db_table}" WHERE id = %s FOR KEY SHARE'


# The key's row: found, made, locked.
INSTANCE_ID_SQL = 'SELECT id FROM {table} WHERE type_name = %s AND "key" = %s'
# A new key's row with its fields' defaults (tests/integration/test_submit_statement.py compares it with
# the ORM's row, so a field added to Instance without a default here fails there).
INSTANCE_CREATE_SQL = (
    'INSERT INTO {table} (type_name, "key", version, paused, paused_reason, created_at, changed_at) '
    "VALUES (%s, %s, 0, false, '', %s, NULL) ON CONFLICT (type_name, \"key\") DO NOTHING RETURNING id"
)
KEY_LOCK_SQL = 'SELECT id, paused FROM {instance} WHERE type_name = %s AND "key" = %s'
INBOX_HEADS_SQL = (
    "SELECT {columns} FROM {invocation} WHERE instance_id = %s AND " + RUNNABLE_SQL + " "
    "AND (not_before IS NULL OR not_before <= %s OR status <> 'pending') ORDER BY id LIMIT %s"
)


def instance_id_sql(connection: Any) -> str:
    return INSTANCE_ID_SQL.format(table=connection.ops.quote_name(Instance._meta.db_table))


def instance_create_statement(connection: Any, type_name: str, key: str) -> tuple[str, list[Any]]:
    """PostgreSQL's statement making a new key's row (its id returned; no row when the key has one already),
    and its parameters. Shared with the event loop's ingress (objects/asgi.py)."""
    table = connection.ops.quote_name(Instance._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    return INSTANCE_CREATE_SQL.format(table=table), [type_name, key, now]


def key_lock_sql(connection: Any) -> str:
    """Lock the key's row without waiting, where the database has row locks."""
    sql = KEY_LOCK_SQL.format(instance=connection.ops.quote_name(Instance._meta.db_table))
    if connection.features.has_select_for_update_skip_locked:
        sql += SKIP_LOCKED
    return sql


def inbox_heads_sql(connection: Any) -> str:
    return INBOX_HEADS_SQL.format(
        columns=invocation_columns(),
        invocation=connection.ops.quote_name(Invocation._meta.db_table),
    )


def invocation_columns() -> str:
    """Every column of an invocation row, in its model's field order (store/rows.py builds instances of them)."""
    connection = db()
    return ", ".join(connection.ops.quote_name(str(f.column)) for f in Invocation._meta.concrete_fields)


# The state's statements name their tables bare (Django's names need no quotes).
_ENTRY = StateEntry._meta.db_table
_INSTANCE = Instance._meta.db_table
_CHANGE = StateChange._meta.db_table
# A key's entries, each value its stored JSON text (on PostgreSQL a json column, which psycopg would decode).
ENTRIES_SQL = f"SELECT name, CAST(value AS text) FROM {_ENTRY} WHERE instance_id = %s"
VERSION_BUMP_SQL = f"UPDATE {_INSTANCE} SET version = version + 1, changed_at = %s WHERE id = %s RETURNING version"
# A shared handler's read: the key's row id and its entries (one row per entry; none when the key has no row).
COMMITTED_SQL = (
    f"SELECT k.id, e.name, CAST(e.value AS text) FROM {_INSTANCE} k LEFT JOIN {_ENTRY} e ON e.instance_id = k.id "
    'WHERE k.type_name = %s AND k."key" = %s'
)
# A watcher's read (objects/watch.py): the key's version and entries; no row when the key has none yet.
WATCHED_SQL = (
    f"SELECT k.version, e.name, CAST(e.value AS text) FROM {_INSTANCE} k LEFT JOIN {_ENTRY} e ON e.instance_id = k.id "
    'WHERE k.type_name = %s AND k."key" = %s'
)


def history_insert_sql(rows: int, json_param: str) -> str:
    """`rows` history rows, each (instance id, name, action, old, new, version, invocation id, user id, time)."""
    values = ", ".join([f"(%s, %s, %s, {json_param}, {json_param}, %s, %s, %s, %s)"] * rows)
    return (
        f"INSERT INTO {_CHANGE} (instance_id, name, action, old_value, new_value, version, "
        f"invocation_id, user_id, at) VALUES {values}"
    )


def history_trim(instance_id: int | None, version: str, params: list[Any]) -> tuple[str, list[Any]]:
    """The statement deleting a key's history older than its last OBJECTS_STATE_HISTORY_PER_KEY versions, once
    `version` (an SQL expression with `params`) is its new version. An operator's edits stay (until
    OBJECTS_HISTORY_RETENTION, as every row): they are the audit trail. Run with each write of history, so a
    key keeps at most that many versions of its handlers' changes."""
    sql = f"DELETE FROM {_CHANGE} WHERE instance_id = %s AND version <= {version} - %s AND user_id IS NULL"
    return sql, [instance_id, *params, conf.get("OBJECTS_STATE_HISTORY_PER_KEY")]


def entry_upsert(
    instance_id: int | None, changed: dict[str, str], now: Any, *, row: str, where: str | None = None
) -> tuple[str, list[Any]]:
    """The statement writing `changed` entries (name -> JSON text), one `row` of placeholders each (instance id,
    name, value, size, time); with `where`, only the rows that meet it (the finishing statement's condition)."""
    rows = ", ".join([row] * len(changed))
    source = f"VALUES {rows}" if where is None else f"SELECT * FROM (VALUES {rows}) x WHERE {where}"
    params: list[Any] = []
    for name, text in changed.items():
        params += [instance_id, name, sql_json(text), len(text.encode()), now]
    sql = (
        f"INSERT INTO {_ENTRY} (instance_id, name, value, size, updated_at) {source} ON CONFLICT (instance_id, name) "
        "DO UPDATE SET value = EXCLUDED.value, size = EXCLUDED.size, updated_at = EXCLUDED.updated_at"
    )
    return sql, params


def entry_delete(instance_id: int | None, removed: list[str], *, where: str | None = None) -> tuple[str, list[Any]]:
    """The statement deleting the `removed` entries; with `where`, only if it holds."""
    condition = f" AND {where}" if where else ""
    sql = f"DELETE FROM {_ENTRY} WHERE instance_id = %s AND name IN ({marks(len(removed))}){condition}"
    return sql, [instance_id, *removed]


def sql_json(text: str | None) -> str | None:
    """JSON null is stored as SQL NULL, as the ORM's JSONField stores None."""
    return None if text is None or text == "null" else text


# The journal (objects/runtime/journal.py), on PostgreSQL through its second connection.
JOURNAL_LOAD_SQL = (
    'SELECT j."index", j.kind, j.name, j.result{cast}, j.failure, a.completed_at IS NOT NULL, a.value{cast}, '
    "a.rejected, a.failure FROM {journal} j LEFT JOIN {awakeable} a ON a.invocation_id = j.invocation_id "
    'AND a."index" = j."index" WHERE j.invocation_id = %s'
)
JOURNAL_RECORD_SQL = (
    'INSERT INTO {journal} (invocation_id, "index", kind, name, result, failure, created_at) '
    'VALUES (%s, %s, %s, %s, %s::jsonb, %s, now()) ON CONFLICT (invocation_id, "index") DO UPDATE '
    "SET kind = EXCLUDED.kind, name = EXCLUDED.name, result = EXCLUDED.result, failure = EXCLUDED.failure"
)
# An awakeable and its journal step in one statement.
AWAKEABLE_CREATE_SQL = (
    'WITH a AS (INSERT INTO {awakeable} (token, invocation_id, "index", created_at, rejected, failure) '
    "VALUES (%s, %s, %s, now(), false, '') ON CONFLICT (token) DO NOTHING) " + JOURNAL_RECORD_SQL
)


def journal_sql(template: str, *, cast: str = "") -> str:
    """A journal statement with its tables named; `cast`: how its JSON columns are read (`::text` on the
    second connection, which has no JSON loader)."""
    return template.format(cast=cast, journal=quoted(JournalEntry), awakeable=quoted(Awakeable))
