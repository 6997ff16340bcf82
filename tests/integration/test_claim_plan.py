"""The worker's claim (objects/worker/partition.py) never keeps a plan made while its tables were nearly empty.

psycopg prepares a statement on its fifth run on a connection, and PostgreSQL then keeps one generic plan for
it until the next ANALYZE of its tables. A plan made in a worker's first passes on a fresh database (a nested
loop over every key row for each pending invocation) read hundreds of thousands of blocks per pass once the
tables had grown. The claim is planned again as the worker's work grows, so its plan fits the tables.

Nor does a burst of pending invocations that the statistics have not seen yet make every plan of it scan the
pending rows once per pending row: its test for held-back keys reads an index of the held-back rows only.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction
from django.utils import timezone

from objects.worker import partition

pytestmark = pytest.mark.django_db(transaction=True)

KEYS = 2000
PARTITIONS = list(range(8))


def fill(per_key: int, keys: int = KEYS) -> None:
    """`keys` keys of the Recorder type with `per_key` pending invocations each, spread over the partitions."""
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO objects_instance (type_name, "key", version, paused, paused_reason, created_at) '
            "SELECT 'Recorder', 'grow-' || n, 0, false, '', now() FROM generate_series(1, %s::int) n "
            'ON CONFLICT (type_name, "key") DO NOTHING',
            [keys],
        )
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'objects_invocation' "
            "AND is_nullable = 'NO' AND column_default IS NULL"
        )
        required = {row[0] for row in cursor.fetchall()}
        values = {
            "uid": "md5(k.id || '-' || r)::uuid",
            "instance_id": "k.id",
            "type_name": "k.type_name",
            "key": 'k."key"',
            "handler": "'append'",
            "kind": "'exclusive'",
            "partition": "k.id %% 8",
            "input": "'{\"value\": 1}'::jsonb",
            "status": "'pending'",
            "attempts": "0",
            "created_at": "now()",
            "kill_requested": "false",
        }
        for column in required - set(values) - {"id"}:
            values[column] = "''"
        names = ", ".join(f'"{name}"' for name in values)
        cursor.execute(
            f"INSERT INTO objects_invocation ({names}) SELECT {', '.join(values.values())} "
            "FROM objects_instance k, generate_series(1, %s::int) r WHERE k.\"key\" LIKE 'grow-%%' "
            "ON CONFLICT DO NOTHING",
            [per_key],
        )


def sql_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return f"'{value}'"


def claim(partitions: list[int] = PARTITIONS) -> None:
    """One claim as a worker's pass makes it: first in its transaction (objects/store/batch.py)."""
    with transaction.atomic():
        partition._claim_keys(partitions, timezone.now(), 16)


def claim_blocks() -> int:
    """Shared blocks the claim's current prepared statement touches in one run, as the worker runs it."""
    claim()  # prepared by now: this run uses the statement's kept plan
    when = connection.ops.adapt_datetimefield_value(timezone.now())
    params = [*PARTITIONS, when, False, when, 16, False]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM pg_prepared_statements WHERE name LIKE 'objects_claim_%%' ORDER BY prepare_time DESC"
        )
        row = cursor.fetchone()
        assert row is not None, "the claim is not prepared on this connection: this test shows nothing"
        literals = ", ".join(sql_literal(value) for value in params)  # EXPLAIN EXECUTE takes no bound parameters
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE {row[0]}({literals})")
        plan = cursor.fetchone()[0]
    top = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    return int(top.get("Shared Hit Blocks", 0)) + int(top.get("Shared Read Blocks", 0))


def test_the_claim_is_planned_again_once_the_tables_have_grown():
    fill(per_key=1, keys=9)  # a warm-up's few rows, and their statistics
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE objects_instance, objects_invocation")
    partition.plan_reset()
    for _ in range(8):  # a fresh worker's first passes: psycopg prepares the claim, PostgreSQL keeps a plan
        claim()
    fill(per_key=3)
    partition.plan_grown(ran=20_000)  # what the worker's passes count as they run the grown tables' work
    for _ in range(8):
        claim()
    blocks = claim_blocks()
    print(f"\nclaim after growth: {blocks} blocks")
    assert blocks < 2_000  # with the warm-up's plan kept: 12,254 blocks here


def test_the_claim_is_planned_again_as_the_work_doubles_and_seldom_after():
    plan = partition._ClaimPlan()
    generations = []
    for _ in range(1000):
        plan.grown(ran=16)
        generations.append(plan.generation)
    assert generations[2] == 0 and generations[3] == 1  # 64 invocations run
    assert plan.generation == 8  # 16,000 invocations: planned again at 64, 128, ... 8,192, 16,384 not yet
    assert len(partition.claim_sql("postgresql", 8)) > 0


def test_a_burst_of_pending_invocations_after_a_quiet_analyze_keeps_the_claim_cheap():
    """Statistics taken while nothing was pending (a quiet moment's autoanalyze, after a few thousand calls),
    then a burst of sends to 200 keys: the claim's test for held-back keys must not scan every pending row
    for each pending row."""
    fill(per_key=4)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE objects_invocation SET status = 'succeeded'")
        cursor.execute("ANALYZE objects_instance, objects_invocation")
        cursor.execute(  # ten pending invocations for each of 200 keys, none of them in the statistics
            'INSERT INTO objects_invocation (uid, instance_id, type_name, "key", handler, kind, partition, input, '
            "status, attempts, created_at, kill_requested, error_message, error_type, error_traceback, "
            "caller_type, caller_key, input_hash, timer_name) "
            "SELECT md5('burst-' || k.id || '-' || r)::uuid, k.id, k.type_name, k.\"key\", 'append', 'exclusive', "
            "k.id % 8, '{\"value\": 1}'::jsonb, 'pending', 0, now(), false, '', '', '', '', '', '', '' "
            "FROM (SELECT * FROM objects_instance ORDER BY id DESC LIMIT 200) k, generate_series(1, 10) r"
        )
    partition.plan_grown(ran=20_000)  # a fresh plan, made from those statistics
    for _ in range(8):
        claim()
    blocks = claim_blocks()
    print(f"\nclaim after a burst: {blocks} blocks")
    assert blocks < 40_000  # as an anti-join scanning the pending rows for each: about 4,000,000
