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
# PostgreSQL: the runnable keys and their locks in one statement. The inboxes are read by the next statement,
# whose snapshot is taken after the locks are held (one taken here could predate a drain that committed
# between it and the lock, and show that drain's invocations as still pending).
CLAIM_SQL = (
    "WITH cand AS (" + RUNNABLE_KEYS_SQL + "), "
    "locked AS (SELECT k.id FROM {instance} k WHERE k.id IN (SELECT instance_id FROM cand) AND k.paused = %s "
    "ORDER BY k.id FOR NO KEY UPDATE SKIP LOCKED) "
    'SELECT c.instance_id, c.type_name, c."key", c.partition, l.id IS NOT NULL, c.head FROM cand c '
    "LEFT JOIN locked l ON l.id = c.instance_id ORDER BY c.head"
)
PASS_HEADS_SQL = (
    "SELECT {columns}{state} FROM (SELECT {columns}, ROW_NUMBER() OVER (PARTITION BY instance_id ORDER BY id) AS "
    "rank_ FROM {invocation} WHERE instance_id IN ({marks}) AND id >= %s "
    "AND " + RUNNABLE_SQL + " "
    "AND (not_before IS NULL OR not_before <= %s OR status <> 'pending')) heads "
    "WHERE rank_ <= %s ORDER BY instance_id, id"
)
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
def pass_sql(template: str, vendor: str, count: int) -> str:
    """A statement's text for `count` placeholders in its list, built once per database kind and list length
    (built on every pass it was a few per cent of the worker's CPU)."""
    placeholders = marks(count)
    columns = invocation_columns() if "{columns}" in template else ""
    tables = _tables()
    state = HEADS_STATE.format(**tables) if vendor == "postgresql" else ""
    return template.format(partitions=placeholders, marks=placeholders, columns=columns, state=state, **tables)


@functools.cache
def claim_text(vendor: str, count: int, generation: int) -> str:
    """The claim for `count` partitions in plan generation `generation` (a new generation is a new text, so
    PostgreSQL plans it afresh)."""
    return pass_sql(CLAIM_SQL, vendor, count) + f" /* plan {generation} */"


def keys_lock_sql(connection: Any, count: int) -> str:
    """Lock `count` keys' rows without waiting, where the database has row locks."""
    sql = pass_sql(KEYS_LOCK_SQL, connection.vendor, count)
    if connection.features.has_select_for_update_skip_locked:
        sql += SKIP_LOCKED
    return sql
