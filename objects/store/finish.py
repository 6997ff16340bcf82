"""An invocation's finishing statement (objects/runtime/outcome.py): its UPDATE, and on PostgreSQL for a success the
state writes as CTEs that apply only if the UPDATE changed the row, so the whole applies or nothing does.
"""

from __future__ import annotations

from typing import Any

from ..models import Instance, Invocation, StateChange, Status
from .db import db
from .sql import entry_delete, entry_upsert, history_trim

_FIELDS = {field.attname: field for field in Invocation._meta.concrete_fields}
# The finish's condition for the state writes: its UPDATE changed the row.
IF_FINISHED = "EXISTS (SELECT 1 FROM f)"


def finish_update(pk: int, fields: dict[str, Any], *, only_if_open: bool) -> tuple[str, list[Any]]:
    """The invocation's finishing UPDATE. Each field prepares its own value, as the ORM would (JSON
    null as SQL NULL). With `only_if_open`, it changes nothing once an operator cancelled or killed it."""
    connection = db()
    columns = [f"{connection.ops.quote_name(str(_FIELDS[name].column))} = %s" for name in fields]
    params = [_FIELDS[name].get_db_prep_save(value, connection) for name, value in fields.items()]
    sql = f"UPDATE {connection.ops.quote_name(Invocation._meta.db_table)} SET {', '.join(columns)} WHERE id = %s"
    params.append(pk)
    if only_if_open:
        sql += " AND status IN (%s, %s, %s) AND kill_requested = %s"
        params += [Status.PENDING.value, Status.BACKING_OFF.value, Status.SUSPENDED.value, False]
    return sql, params


def finish_statement(update: str, params: list[Any], writes: tuple[str, list[Any]] | None) -> tuple[str, list[Any]]:
    """The finishing UPDATE as `f`, with the state `writes` (`state_writes`) if any; its one row: how many rows
    it finished, and the key's new version (NULL without writes)."""
    sql = f"WITH f AS ({update} RETURNING id)"
    if writes is None:
        return sql + " SELECT COUNT(*), NULL FROM f", params
    return sql + writes[0] + " SELECT (SELECT COUNT(*) FROM f), (SELECT version FROM v)", params + writes[1]


def state_writes(
    instance_id: int | None,
    to_write: dict[str, str],
    to_delete: list[str],
    history: list[tuple[str, str, str | None, str | None]],
    invocation_id: int,
    when: Any,
) -> tuple[str, list[Any]]:
    """The state flush of `StateCache.flush` (entries upserted and deleted, version bumped, history rows with
    the new value only) as CTEs that run only if `f` (the finish) updated its row."""
    connection = db()
    sql = (
        f", v AS (UPDATE {connection.ops.quote_name(Instance._meta.db_table)} SET version = version + 1, "
        f"changed_at = %s WHERE id = %s AND {IF_FINISHED} RETURNING version)"
    )
    params: list[Any] = [when, instance_id]
    if to_write:
        typed = "(%s::bigint, %s::text, %s::json, %s::integer, %s::timestamptz)"
        upsert, upsert_params = entry_upsert(instance_id, to_write, when, row=typed, where=IF_FINISHED)
        sql += f", e AS ({upsert})"
        params += upsert_params
    if to_delete:
        delete, delete_params = entry_delete(instance_id, to_delete, where=IF_FINISHED)
        sql += f", d AS ({delete})"
        params += delete_params
    if not history:
        return sql, params
    rows = ", ".join(["(%s::text, %s::text, %s::json, %s::json)"] * len(history))
    sql += (
        f", h AS (INSERT INTO {connection.ops.quote_name(StateChange._meta.db_table)} (instance_id, name, action, "
        "old_value, new_value, version, invocation_id, user_id, at) SELECT %s::bigint, x.name, x.action, x.old, "
        f"x.new, v.version, %s::bigint, NULL, %s::timestamptz FROM v, (VALUES {rows}) AS x(name, action, old, new))"
    )
    params += [instance_id, invocation_id, when]
    for row in history:
        params += list(row)
    trim, trim_params = history_trim(instance_id, "(SELECT version FROM v)", [])  # the key's oldest versions
    return sql + f", t AS ({trim})", params + trim_params
