"""The worker's claim (objects/partition.py) is planned on every pass, for the tables as they are.

In a benchmark round of one-way sends the claim read 244,181 blocks per pass (docs/benchmarks.md, tenth round):
psycopg had prepared it in the worker's first passes, while the tables were nearly empty, and PostgreSQL kept
that plan (a nested loop over every key row for each pending invocation) until the next ANALYZE.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from objects import partition
from objects.backends import fetchall

pytestmark = pytest.mark.django_db

KEYS = 300


def fill(status: str, per_key: int, *, first_key: int = 0) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO objects_instance (type_name, "key", version, paused, paused_reason, created_at) '
            "SELECT 'Recorder', 'k' || n, 0, false, '', now() FROM generate_series(%s::int, %s::int) n "
            'ON CONFLICT (type_name, "key") DO NOTHING',
            [first_key, KEYS - 1],
        )
        cursor.execute(
            'INSERT INTO objects_invocation (uid, instance_id, type_name, "key", handler, kind, partition, input, '
            "status, error_message, error_type, error_traceback, attempts, created_at, input_hash, kill_requested) "
            "SELECT md5(k.id || '-' || r || %s)::uuid, k.id, k.type_name, k.\"key\", 'append', 'exclusive', "
            "k.id %% 8, '{}'::jsonb, %s, '', '', '', 0, now(), '', false "
            "FROM objects_instance k, generate_series(1, %s::int) r ORDER BY r, k.id",
            [status, status, per_key],
        )


def test_the_claim_is_planned_on_every_pass_not_prepared():
    """A prepared claim keeps the plan of its first passes; the claim is sent unprepared, so PostgreSQL plans it
    for the tables as they are (psycopg prepares a statement on its fifth run otherwise)."""
    fill("pending", 1)
    when = connection.ops.adapt_datetimefield_value(timezone.now())
    sql = partition._sql(partition._CLAIM_SQL, connection.vendor, 8)
    params = [*range(8), when, False, when, 16, False]
    for _ in range(8):  # the worker's claim, as each pass runs it
        candidates, locked = partition._claim_keys(list(range(8)), timezone.now(), 16)
        assert len(candidates) == 16 and len(locked) == 16
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'WITH cand AS%%'")
        assert cursor.fetchone()[0] == 0
    for _ in range(8):  # the same statement, prepared as the hot path's others are
        fetchall(connection, sql, params)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'WITH cand AS%%'")
        assert cursor.fetchone()[0] == 1, "the connection does not prepare statements: this test shows nothing"
