"""The ingress's INSERT (objects/services.invocation_insert): a fresh invocation for a known key is one statement
with its defaults as constants; any other invocation takes the general statement; both write the same row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection

from objects.models import Invocation, Status
from objects.services import invocation_submit
from objects.store.inserts import FRESH

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.workers]


@pytest.fixture(autouse=True)
def _settled(live):
    """The submitted invocations ring and the session's workers run them: `live` waits for the workers to be
    quiet before the database is flushed (a drain still in flight would deadlock against the flush)."""
    yield


COLUMNS = [f.attname for f in Invocation._meta.concrete_fields if f.attname not in ("id", "uid", "created_at")]


class Statements:
    """The parameters of every statement the connection runs (an execute wrapper)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def __call__(self, execute, sql, params, many, context):
        self.seen.append((sql, len(params or ())))
        return execute(sql, params, many, context)


def submit(key: str, **options):
    statements = Statements()
    with connection.execute_wrapper(statements):
        invocation, created = invocation_submit(
            type_name="Recorder", key=key, handler="append", arg={"value": 1}, **options
        )
    assert created
    inserts = [(sql, count) for sql, count in statements.seen if sql.startswith('INSERT INTO "objects_invocation"')]
    return Invocation.objects.get(pk=invocation.pk), inserts


def test_a_fresh_invocation_of_a_known_key_binds_only_what_the_call_chose():
    submit("fresh", idempotency_key="first")  # the key's row exists now
    row, inserts = submit("fresh")
    [(sql, count)] = inserts
    assert count == 11  # uid, type, key, handler, kind, partition, input, created_at, principal + the key's (type, key)
    assert "'pending'" in sql and "SELECT %s, k.id" in sql
    for name, value in FRESH.items():
        assert getattr(row, name) == value, name
    assert row.status == Status.PENDING and row.input == {"value": 1} and row.instance_id is not None


def test_an_invocation_with_a_delay_or_an_idempotency_key_takes_the_general_statement_and_the_same_row_results():
    submit("general", idempotency_key="first")
    fresh, _ = submit("general")
    delayed, [(_, count)] = submit("general", delay=timedelta(seconds=30))
    assert count == 30  # every column a parameter
    assert delayed.not_before is not None
    keyed, _ = submit("general", idempotency_key="second")
    assert keyed.idempotency_key == "second" and keyed.input_hash
    same = [name for name in COLUMNS if name not in ("not_before", "idempotency_key", "input_hash")]
    same.remove("idempotency_expires_at")
    for other in (delayed, keyed):
        assert [getattr(other, n) for n in same] == [getattr(fresh, n) for n in same]


def test_the_instance_a_fresh_submit_returns_is_the_row_it_wrote():
    """The fresh path builds its instance from the values it sent (no model to fill and read back): every
    field must read as the database has it, and the instance must be a saved one."""
    submit("mirror", idempotency_key="first")
    invocation, created = invocation_submit(type_name="Recorder", key="mirror", handler="append", arg={"value": 2})
    assert created and not invocation._state.adding and invocation._state.db == "default"
    row = Invocation.objects.get(pk=invocation.pk)
    names = [f.attname for f in Invocation._meta.concrete_fields]
    assert [getattr(invocation, n) for n in names] == [getattr(row, n) for n in names]
    assert invocation.public_id == row.public_id and invocation.status == Status.PENDING
    assert invocation.instance == row.instance


def test_a_new_key_gets_its_row_from_one_statement_with_the_orms_defaults():
    """A new key's first submit: the fresh INSERT finds no row, one `INSERT ... ON CONFLICT DO NOTHING
    RETURNING id` creates it (no look-up first, no ORM), then the invocation is inserted by id. The row holds
    what the ORM would have written."""
    from objects.models import Instance

    statements = Statements()
    with connection.execute_wrapper(statements):
        invocation, created = invocation_submit(
            type_name="Recorder", key="brand-new", handler="append", arg={"value": 1}
        )
    assert created
    sqls = [sql for sql, _ in statements.seen]
    assert len(sqls) == 3, sqls
    assert sqls[1].startswith('INSERT INTO "objects_instance"') and "ON CONFLICT" in sqls[1]
    row = Instance.objects.get(pk=invocation.instance_id)
    orm = Instance.objects.create(type_name="Recorder", key="made-by-the-orm")
    fields = [f.attname for f in Instance._meta.concrete_fields if f.attname not in ("id", "key", "created_at")]
    assert [getattr(row, n) for n in fields] == [getattr(orm, n) for n in fields]
    assert row.created_at is not None and (row.type_name, row.key) == ("Recorder", "brand-new")


def test_a_row_created_meanwhile_is_found_not_duplicated():
    from objects.models import Instance
    from objects.runtime.submit import instance_id_ensure

    existing = Instance.objects.create(type_name="Recorder", key="raced")
    assert instance_id_ensure("Recorder", "raced", missing=True) == existing.pk  # the conflict: looked up
    assert Instance.objects.filter(type_name="Recorder", key="raced").count() == 1
