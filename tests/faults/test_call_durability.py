"""A call's invocation is durable once its id is given out, though the event loop inserts it without waiting for
the WAL flush: when a call times out with its id, the commit record of the invocation's insert is on disk.

The test server's commits are made synchronous again (it runs with synchronous_commit off for speed) and its
WAL writer is stopped (SIGSTOP) during the call, so only a flushed commit can have moved the flushed position
past that record within the call's 0.1 s timeout. pg_walinspect reads the records up to the flushed position only."""

from __future__ import annotations

import json
import os
import signal

import pytest
from django.db import connection

from objects.models import Instance, Invocation
from tests.security.servers import fetch, server_with

pytestmark = pytest.mark.workers


@pytest.fixture
def wal_writer_stopped(live):
    """PostgreSQL's WAL writer stopped: an unflushed commit stays unflushed until a flushed one follows."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        cursor.execute("ALTER SYSTEM SET synchronous_commit = on")  # the test server's is off
        cursor.execute("SELECT pg_reload_conf()")
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'")
        (pid,) = cursor.fetchone()
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
        with connection.cursor() as cursor:
            cursor.execute("DROP EXTENSION IF EXISTS pg_walinspect")
            cursor.execute("ALTER SYSTEM RESET synchronous_commit")
            cursor.execute("SELECT pg_reload_conf()")


def _wal_position() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_insert_lsn()::text")
        return cursor.fetchone()[0]


def _flushed_position() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_flush_lsn()::text")
        return cursor.fetchone()[0]


def _commit_flushed(uid: str, since: str, until: str) -> bool:
    """Whether the commit record of the transaction that inserted the invocation is among the flushed records."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT xmin::text FROM objects_invocation WHERE uid = %s", [uid])
        (xid,) = cursor.fetchone()
        cursor.execute("SELECT %s::pg_lsn <= %s::pg_lsn", [until, since])
        if cursor.fetchone()[0]:  # nothing flushed since the call began
            return False
        cursor.execute(
            "SELECT count(*) FROM pg_get_wal_records_info(%s::pg_lsn, %s::pg_lsn) "
            "WHERE xid::text = %s AND resource_manager = 'Transaction' AND record_type LIKE 'COMMIT%%'",
            [since, until, xid],
        )
        return cursor.fetchone()[0] == 1


def test_a_timed_out_calls_invocation_is_flushed_before_its_id_is_answered(live, django_db_blocker, wal_writer_stopped):
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=User.objects.create_user("durable-caller", password="x")).key
    auth = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    with server_with(django_db_blocker, OBJECTS_CALL_TIMEOUT="0.1") as server:
        answered = []
        for value in range(20):  # each of the server's processes caches the token: the calls stay on the loop
            first = fetch(
                server.url, "POST", "/ingress/Recorder/held/append", headers=auth, body=b'{"value": %d}' % value
            )
            answered.append(first.status)
        assert set(answered) <= {200, 504} and answered[-5:] == [200] * 5, answered  # a cold start may outlast 0.1 s
        Instance.objects.filter(type_name="Recorder", key="held").update(paused=True)  # the next call waits

        before = _wal_position()
        answer = fetch(server.url, "POST", "/ingress/Recorder/held/append", headers=auth, body=b'{"value": 2}')
        flushed = _flushed_position()  # first: nothing the checks below do can have moved it
        assert answer.status == 504, answer.body
        uid = json.loads(answer.body)["invocationId"].removeprefix("inv_")
        assert _commit_flushed(uid, before, flushed), "answered with the id before the invocation's commit was flushed"
        assert Invocation.objects.get(uid=uid).status == "pending"
        Instance.objects.filter(type_name="Recorder", key="held").update(paused=False)
