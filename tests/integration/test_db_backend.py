"""The PostgreSQL backend's health check (objects/backends/postgresql): no statement while the connection is
quiet, and a connection the server closed is still found unusable and replaced before the next query."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def _server_side(sql: str, *params) -> list[tuple]:
    """Run SQL on a connection of its own (a fresh statistics snapshot each time)."""
    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"], port=settings["PORT"], autocommit=True
    ) as other:
        return other.execute(sql, params).fetchall()


def _last_statement(pid: int) -> str:
    return _server_side("SELECT query FROM pg_stat_activity WHERE pid = %s", pid)[0][0]


def test_the_settings_use_the_backend():
    assert connection.settings_dict["ENGINE"] == "objects.backends.postgresql"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_quiet_connection_passes_the_check_without_a_statement():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'before the check'")
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    assert _last_statement(pid) == "SELECT pg_backend_pid()"
    for _ in range(3):
        assert connection.is_usable()
    assert _last_statement(pid) == "SELECT pg_backend_pid()"  # Django's own check would have run SELECT 1


def test_a_connection_the_server_closed_is_unusable_and_replaced_before_the_next_query():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    assert _server_side("SELECT pg_terminate_backend(%s)", pid) == [(True,)]
    deadline = time.monotonic() + 10
    while connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not connection.is_usable()
    # What Django does before a request's (or a task's) first query with CONN_HEALTH_CHECKS on.
    connection.health_check_done = False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_a_connection_inside_a_transaction_is_checked_with_a_statement():
    """Only an idle connection is judged by its socket; anything else gets Django's SELECT 1."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    raw = connection.connection
    raw.execute("BEGIN")
    try:
        assert connection.is_usable()
        assert _last_statement(pid) == "SELECT 1"
    finally:
        raw.execute("ROLLBACK")
