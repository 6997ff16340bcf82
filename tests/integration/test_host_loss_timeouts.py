"""A worker's PostgreSQL session ends a transaction left idle, or a statement, after OBJECTS_HOST_LOSS_BOUND
(objects/timeouts.py), which rolls it back and frees the keys it held; the server also probes the client's
socket with the bound's keepalives. Here on the real server, with a bound of one second."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
from django.db import DatabaseError, OperationalError, connection, connections

from objects import timeouts

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def session(*, worker: bool) -> Iterator[object]:
    """A new connection opened as a worker's (its session timeouts) or as a web process's (without)."""
    options = connections.settings["default"]["OPTIONS"]
    saved = dict(options)
    conn = connections.create_connection("default")
    try:
        if worker:
            timeouts.apply_worker_session()
        conn.ensure_connection()
    finally:
        options.clear()
        options.update(saved)
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0] == 1


def idle_in_transaction(conn, seconds: float) -> int:
    conn.set_autocommit(False)
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    time.sleep(seconds)
    return pid


def test_a_worker_transaction_left_idle_is_ended_after_the_bound(settings):
    settings.OBJECTS_HOST_LOSS_BOUND = 1.0
    with session(worker=True) as conn:
        pid = idle_in_transaction(conn, 2.5)
        assert not backend_alive(pid), "PostgreSQL should have ended the idle transaction's session"
        with pytest.raises(DatabaseError, match="idle-in-transaction timeout"), conn.cursor() as cursor:
            cursor.execute("SELECT 1")


def test_a_web_session_is_not_given_the_workers_timeouts(settings):
    settings.OBJECTS_HOST_LOSS_BOUND = 1.0
    with session(worker=False) as conn:
        pid = idle_in_transaction(conn, 2.5)
        assert backend_alive(pid)
        with conn.cursor() as cursor:
            cursor.execute("SELECT 1")
        conn.rollback()


def test_a_worker_statement_is_cancelled_after_the_bound(settings):
    settings.OBJECTS_HOST_LOSS_BOUND = 1.0
    with session(worker=True) as conn:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="statement timeout"), conn.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(5)")
        assert time.monotonic() - started < 3


def test_every_session_probes_its_client_with_the_bounds_keepalives():
    t = timeouts.timers(30)
    with session(worker=False) as conn, conn.cursor() as cursor:
        cursor.execute("SHOW tcp_keepalives_idle")
        idle = cursor.fetchone()[0]
        cursor.execute("SHOW tcp_user_timeout")
        user_timeout = cursor.fetchone()[0]
    assert (idle, user_timeout) == (str(t.idle), str(t.detect_ms))
