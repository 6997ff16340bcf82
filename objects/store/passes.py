"""The statements of a partition pass (objects/worker/partition.py): the runnable keys of some partitions,
their row locks, and their inboxes with their state entries, each built once per database kind and list length.
"""

from __future__ import annotations

import functools
from typing import Any

from ..models import Instance, Invocation, StateEntry
from .sql import RUNNABLE_SQL, SKIP_LOCKED, invocation_columns, marks, quoted

# The NOT EXISTS names the statuses of objects_inv_blocker_idx, a small index that the held-back test reads
# whatever plan PostgreSQL picks: planned from statistics taken while few invocations were pending, as an
# anti-join over the pending rows' index it scanned every pending row for each once a burst had arrived.
RUNNABLE_KEYS_SQL = (
    'SELECT i.instance_id, k.type_name, k."key", i.partition, MIN(i.id) AS head FROM {invocation} i '
    "JOIN {instance} k ON k.id = i.instance_id "
    "WHERE i.partition IN ({partitions}) AND i." + RUNNABLE_SQL + " "
    "AND (i.not_before <= %s OR (i.not_before IS NULL AND i.status <> 'suspended')) AND k.paused = %s "
    "AND NOT EXISTS (SELECT 1 FROM {invocation} b WHERE b.instance_id = i.instance_id "
    "AND b.status IN ('backing_off', 'suspended') "
    "AND ((b.status = 'backing_off' AND b.not_before > %s AND b.id < i.id) "
    "OR (b.status = 'suspended' AND b.id <> i.id))) "
    'GROUP BY i.instance_id, k.type_name, k."key", i.partition ORDER BY head LIMIT %s'
)
KEYS_LOCK_SQL = "SELECT id FROM {instance} WHERE id IN ({marks}) AND paused = %s ORDER BY id"
# PostgreSQL: the runnable keys and their locks in one statement. It leaves the locked keys' ids and their
# smallest head in two settings local to the transaction (CLAIMED_KEYS, CLAIMED_FLOOR), from which the next
# statement reads their inboxes: sent with the claim in one message (objects/store/batch.py), it runs once the
# claim has finished, with a snapshot taken after the locks are held. (One taken by the claim itself could
# predate a drain that committed between it and the lock, and show that drain's invocations as still pending.)
CLAIM_SQL = (
    "WITH cand AS (" + RUNNABLE_KEYS_SQL + "), "
    "locked AS (SELECT k.id FROM {instance} k WHERE k.id IN (SELECT instance_id FROM cand) AND k.paused = %s "
    "ORDER BY k.id FOR NO KEY UPDATE SKIP LOCKED), "
    "mark AS (SELECT set_config('objects.claimed_keys', coalesce(array_agg(l.id)::text, '{{}}'), true), "
    "set_config('objects.claimed_floor', coalesce(min(c.head), 0)::text, true) "
    "FROM locked l JOIN cand c ON c.instance_id = l.id) "
    'SELECT c.instance_id, c.type_name, c."key", c.partition, l.id IS NOT NULL, c.head FROM cand c '
    "LEFT JOIN locked l ON l.id = c.instance_id CROSS JOIN mark ORDER BY c.head"
)
CLAIMED_KEYS = "coalesce(nullif(current_setting('objects.claimed_keys', true), ''), '{{}}')::bigint[]"
CLAIMED_FLOOR = "coalesce(nullif(current_setting('objects.claimed_floor', true), ''), '0')::bigint"
PASS_HEADS_SQL = (
    "SELECT {columns}{state} FROM (SELECT {columns}, ROW_NUMBER() OVER (PARTITION BY instance_id ORDER BY id) AS "
    "rank_ FROM {invocation} WHERE {keys} "
    "AND " + RUNNABLE_SQL + " "
    "AND (not_before IS NULL OR not_before <= %s OR status <> 'pending')) heads "
    "WHERE rank_ <= %s ORDER BY instance_id, id"
)
# Which keys it reads: those of a list, from a floor (SQLite), or those the claim locked (PostgreSQL).
LISTED = "instance_id IN ({marks}) AND id >= %s"
CLAIMED = "instance_id = ANY(" + CLAIMED_KEYS + ") AND id >= " + CLAIMED_FLOOR
# PostgreSQL: each key's state entries ride on its first row (one statement per pass instead of one per key;
# read after the locks, like the inboxes): a JSON array of [name, length] pairs, a newline, then the values'
# stored texts one after another (`state.entries_from_pass`), so that no value is parsed or quoted on the way.
HEADS_STATE = (
    ", CASE WHEN rank_ = 1 THEN (SELECT json_agg(json_build_array(e.name, length(e.value::text)) ORDER BY e.id)::text "
    "|| chr(10) || coalesce(string_agg(e.value::text, '' ORDER BY e.id), '') FROM {entry} e "
    "WHERE e.instance_id = heads.instance_id) END"
)


def _tables() -> dict[str, str]:
    return {"invocation": quoted(Invocation), "instance": quoted(Instance), "entry": quoted(StateEntry)}


@functools.cache
def pass_sql(template: str, count: int) -> str:
    """A statement's text for `count` placeholders in its list, built once per list length (built on every pass
    it was a few per cent of the worker's CPU). The inbox read by a list of keys reads no state: it is the read
    of databases without row locks, where each key reads its own entries when it runs."""
    placeholders = marks(count)
    columns = invocation_columns() if "{columns}" in template else ""
    keys = LISTED.format(marks=placeholders)
    return template.format(
        partitions=placeholders, marks=placeholders, columns=columns, state="", keys=keys, **_tables()
    )


@functools.cache
def claimed_heads_sql() -> str:
    """PostgreSQL: the inboxes and state entries of the keys the claim just locked (CLAIM_SQL)."""
    tables = _tables()
    state = HEADS_STATE.format(**tables)
    return PASS_HEADS_SQL.format(columns=invocation_columns(), state=state, keys=CLAIMED.format(), **tables)


@functools.cache
def claim_text(vendor: str, count: int, generation: int) -> str:
    """The claim for `count` partitions in plan generation `generation` (a new generation is a new text, so
    PostgreSQL plans it afresh)."""
    return pass_sql(CLAIM_SQL, count) + f" /* plan {generation} */"


def keys_lock_sql(connection: Any, count: int) -> str:
    """Lock `count` keys' rows without waiting, where the database has row locks."""
    sql = pass_sql(KEYS_LOCK_SQL, count)
    if connection.features.has_select_for_update_skip_locked:
        sql += SKIP_LOCKED
    return sql
