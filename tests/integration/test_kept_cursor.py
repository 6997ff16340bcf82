"""The hot paths' raw statements (objects.store.db.fetchone/fetchall/rowcount) on the cursor a PostgreSQL
connection keeps: no Django cursor per statement, Django's errors and checks, and every statement still seen
by whatever observes the connection (execute wrappers, captured queries)."""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import DataError, IntegrityError, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from objects.models import Instance
from objects.store.db import db, fetchall, fetchone, rowcount
from tests.integration.test_shared_read import statements

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection():
    connection = db()
    if connection.vendor != "postgresql":
        pytest.fail("these tests need the PostgreSQL the test command starts")
    return connection


def test_statements_run_on_one_kept_cursor_without_a_django_cursor(connection):
    with mock.patch.object(type(connection), "cursor", side_effect=AssertionError("a Django cursor")):
        assert fetchone(connection, "SELECT %s::int + 1", [1]) == (2,)
        kept = connection._kept[1]
        assert fetchall(connection, "SELECT generate_series(1, %s)", [3]) == [(1,), (2,), (3,)]
        assert connection._kept[1] is kept


@pytest.mark.django_db(transaction=True)  # closing the connection inside the test's transaction would break it
def test_a_new_connection_gets_a_new_cursor(connection):
    fetchone(connection, "SELECT 1", [])
    old_connection, old_cursor = connection._kept
    connection.close()
    assert fetchone(connection, "SELECT %s::text", ["again"]) == ("again",)
    assert connection._kept[0] is connection.connection is not old_connection
    assert connection._kept[1] is not old_cursor


def test_errors_are_djangos_and_the_transaction_must_be_rolled_back_first(connection):
    Instance.objects.create(type_name="KeptCursor", key="k1")
    sql = 'INSERT INTO objects_instance (type_name, "key", version, paused, paused_reason, created_at) '
    sql += "VALUES (%s, %s, 0, false, '', now())"
    with pytest.raises(IntegrityError), transaction.atomic():
        rowcount(connection, sql, ["KeptCursor", "k1"])
    assert rowcount(connection, sql, ["KeptCursor", "k2"]) == 1  # the savepoint rolled back: usable again
    with pytest.raises(DataError), transaction.atomic():
        fetchone(connection, "SELECT 1 / %s", [0])
    with transaction.atomic():
        transaction.set_rollback(True)  # what an error escaping an inner block leaves
        with pytest.raises(TransactionManagementError):
            fetchone(connection, "SELECT 1", [])


def test_observed_connections_see_every_statement(connection):
    result, seen = statements(lambda: fetchone(connection, "SELECT %s::int", [7]))
    assert result == (7,)
    with CaptureQueriesContext(connection) as captured:
        assert fetchall(connection, "SELECT %s::int", [8]) == [(8,)]
    assert seen == ["SELECT %s::int"]
    assert [q["sql"] for q in captured.captured_queries] == ["SELECT 8::int"]
