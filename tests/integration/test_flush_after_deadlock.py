"""The flush after a transactional test runs again when PostgreSQL picked it as a deadlock's victim
(tests/conftest.py `flush_again_after_a_deadlock`): a worker's transaction that began after the workers were let
go quiet can hold a table the flush's TRUNCATE waits for, while waiting for one the flush holds. Without the
retry the flush is rolled back and the next test finds the last one's rows.

The first test makes its own flush fail once with PostgreSQL's message; the second, which runs after that
flush, checks that it ran again and emptied the tables."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.db.backends.postgresql.operations import DatabaseOperations

from objects.models import Instance

pytestmark = pytest.mark.django_db(transaction=True)

flushes: list[int] = []
real_flush = DatabaseOperations.execute_sql_flush


def test_a_flush_that_meets_a_deadlock():
    Instance.objects.create(type_name="Leftover", key="k")

    def flush_once_deadlocked(self: DatabaseOperations, sql_list: list[str]) -> None:
        flushes.append(1)
        if len(flushes) == 1:
            raise OperationalError("deadlock detected\nDETAIL:  Process 1 waits for AccessExclusiveLock ...")
        real_flush(self, sql_list)

    DatabaseOperations.execute_sql_flush = flush_once_deadlocked  # type: ignore[method-assign]


def test_runs_again_and_leaves_the_next_test_empty_tables():
    DatabaseOperations.execute_sql_flush = real_flush  # type: ignore[method-assign]
    assert len(flushes) == 2
    assert not Instance.objects.filter(type_name="Leftover").exists()
