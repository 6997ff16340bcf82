"""State values are stored as PostgreSQL json, the text as written (models.JSONText): a value keeps the key order
its handler gave it, the ORM writes compact text, and queries on the columns compare as jsonb, as on a JSONField."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import JSONField, Value

import objects
from objects.models import Instance, StateChange, StateEntry
from objects.runtime.state import StateCache, committed_state
from objects.selectors import instance_keys, state_read

pytestmark = pytest.mark.django_db


def stored_text(entry_id: int) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT value::text FROM objects_stateentry WHERE id = %s", [entry_id])
        return cursor.fetchone()[0]


def test_the_state_columns_are_json_not_jsonb():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_name IN ('objects_stateentry', 'objects_statechange') AND column_name LIKE '%%value'"
        )
        found = sorted(cursor.fetchall())
    assert found == [
        ("objects_statechange", "new_value", "json"),
        ("objects_statechange", "old_value", "json"),
        ("objects_stateentry", "value", "json"),
    ]


def test_a_value_keeps_its_key_order_through_the_store():
    instance = Instance.objects.create(type_name="Ordered", key="k")
    state = StateCache(instance.pk)
    state.set("v", {"zeta": 1, "alpha": {"y": 2, "b": 3}})
    state.flush()
    assert stored_text(StateEntry.objects.get(instance=instance).pk) == '{"zeta":1,"alpha":{"y":2,"b":3}}'
    again = StateCache(instance.pk).get("v")
    assert list(again) == ["zeta", "alpha"] and list(again["alpha"]) == ["y", "b"]
    assert list(committed_state("Ordered", "k")[1]) == ["v"]
    assert list(state_read("Ordered", "k")["v"]) == ["zeta", "alpha"]  # the ORM reads the text too
    (change,) = StateChange.objects.filter(instance=instance)
    assert list(change.new_value) == ["zeta", "alpha"]


@pytest.mark.workers
def test_a_handler_reads_back_the_key_order_it_wrote(live):
    objects.call("Ephemeral", "names", "put_names", {"names": ["b", "c", "a"]})
    assert objects.call("Ephemeral", "names", "put_names", {"names": []}) == ["b", "c", "a"]


def test_orm_writes_store_compact_text_and_null_as_sql_null_or_json_null():
    instance = Instance.objects.create(type_name="Ordered", key="orm")
    entry = StateEntry.objects.create(instance=instance, name="v", value={"b": [1, 2], "a": "é"})
    assert stored_text(entry.pk) == '{"b":[1,2],"a":"é"}'
    StateEntry.objects.filter(pk=entry.pk).update(value=None)
    assert stored_text(entry.pk) is None
    StateEntry.objects.filter(pk=entry.pk).update(value=Value(None, JSONField()))
    assert stored_text(entry.pk) == "null"


def test_orm_lookups_compare_values_as_jsonb():
    instance = Instance.objects.create(type_name="Ordered", key="lookups")
    other = Instance.objects.create(type_name="Ordered", key="other")
    StateEntry.objects.create(instance=instance, name="v", value={"b": 1, "a": [1, 2]})
    StateEntry.objects.create(instance=other, name="v", value={"b": 2})
    entries = StateEntry.objects.filter(instance__type_name="Ordered")
    assert [e.instance_id for e in entries.filter(value={"a": [1, 2], "b": 1})] == [instance.pk]  # any key order
    assert [e.instance_id for e in entries.filter(value__contains={"a": [1, 2]})] == [instance.pk]
    assert [e.instance_id for e in entries.filter(value__b=2)] == [other.pk]
    assert [e.instance_id for e in entries.filter(value__has_key="a")] == [instance.pk]
    assert list(entries.order_by("-value").values_list("instance_id", flat=True)) == [instance.pk, other.pk]
    assert list(entries.filter(value__b=1).values_list("value__a", flat=True)) == [[1, 2]]
    assert instance_keys("Ordered", where={"v": {"b": 2}}) == ["other"]


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_every_stored_value():
    """A database from before the json columns (jsonb) keeps its values, JSON null and SQL NULL included."""
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("objects", "0007_claim_blocker_index")], [("objects", "0008_state_values_as_json")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO objects_instance (type_name, key, version, paused, paused_reason, created_at) "
                "VALUES ('Old', 'k', 1, false, '', now()) RETURNING id"
            )
            (instance_id,) = cursor.fetchone()
            for name, text in [("obj", '{"b": 1, "a": [1, 2.5, "x"]}'), ("null", "null"), ("none", None)]:
                cursor.execute(
                    "INSERT INTO objects_stateentry (instance_id, name, value, size, updated_at) "
                    "VALUES (%s, %s, %s::jsonb, 0, now())",
                    [instance_id, name, text],
                )
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())  # the later migrations, for the tests after this one
    assert state_read("Old", "k") == {"obj": {"a": [1, 2.5, "x"], "b": 1}, "null": None, "none": None}
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, value IS NULL FROM objects_stateentry ORDER BY name")
        assert cursor.fetchall() == [("none", True), ("null", False), ("obj", False)]


@pytest.mark.django_db(transaction=True)
def test_large_values_are_compressed_with_lz4_and_the_migration_undoes_it():
    """PostgreSQL compresses a value over about 2 KB when it stores it; lz4 costs a fraction of pglz's CPU, and a
    growing list is written twice per call (its entry and its history row)."""
    from django.db.migrations.executor import MigrationExecutor

    def methods() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT attname, attcompression FROM pg_attribute WHERE attrelid IN "
                "('objects_stateentry'::regclass, 'objects_statechange'::regclass) AND attname LIKE '%%value' "
                "ORDER BY attrelid, attname"
            )
            return [method for _name, method in cursor.fetchall()]

    assert methods() == ["l", "l", "l"]
    listed = ",".join(f"p{n % 50}:{n}" for n in range(1000))  # about 8 KB
    objects.call("Recorder", "lz4", "append", {"value": listed})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_column_compression(e.value), pg_column_compression(c.new_value) FROM objects_stateentry e "
            "JOIN objects_instance k ON k.id = e.instance_id JOIN objects_statechange c ON c.instance_id = k.id "
            "WHERE k.type_name = 'Recorder' AND k.\"key\" = 'lz4'"
        )
        assert cursor.fetchall() == [("lz4", "lz4")]
    executor = MigrationExecutor(connection)
    executor.migrate([("objects", "0008_state_values_as_json")])
    try:
        assert methods() == ["", "", ""]  # the server's default_toast_compression again
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert methods() == ["l", "l", "l"]
