"""The indexes of the tables every call writes: only those a query needs (migration 0004).

Each index of objects_invocation, objects_statechange and objects_stateentry costs an insertion on every
row the hot path writes (and on every non-HOT update of an invocation). The lookups Django makes by foreign
key (deleting an instance, a user or a caller invocation; a key's history and entries) still find an index.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import connection

from objects.models import Instance, Invocation, StateChange, StateEntry

pytestmark = pytest.mark.django_db

EXPECTED = {
    "objects_invocation": {
        "objects_invocation_pkey",
        "objects_invocation_uid_key",
        "objects_invocation_instance_id_9cb80962",
        "objects_inv_inbox_idx",
        "objects_inv_partition_idx",
        "objects_inv_status_idx",
        "objects_inv_type_idx",
        "objects_inv_idempotency_uniq",
        "objects_inv_caller_idx",
        "objects_inv_blocker_idx",  # partial: a pending, running or finished row never enters it
    },
    "objects_statechange": {
        "objects_statechange_pkey",
        "objects_statechange_invocation_id_157c380f",
        "objects_change_instance_idx",
        "objects_change_at_idx",
        "objects_change_user_idx",
    },
    "objects_stateentry": {"objects_stateentry_pkey", "objects_entry_instance_name_uniq"},
}


def indexes(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return dict(cursor.fetchall())


@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_the_hot_tables_have_only_the_indexes_a_query_needs(table):
    assert set(indexes(table)) == EXPECTED[table]


def test_caller_and_user_indexes_hold_only_rows_that_have_one():
    assert indexes("objects_invocation")["objects_inv_caller_idx"].endswith("WHERE (caller_id IS NOT NULL)")
    blocker = indexes("objects_invocation")["objects_inv_blocker_idx"]
    assert "backing_off" in blocker and "suspended" in blocker and "pending" not in blocker
    assert indexes("objects_statechange")["objects_change_user_idx"].endswith("WHERE (user_id IS NOT NULL)")


def plan(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize(
    ("sql", "index"),
    [
        ("SELECT id FROM objects_invocation WHERE caller_id = %s", "objects_inv_caller_idx"),
        ("SELECT id FROM objects_statechange WHERE user_id = %s", "objects_change_user_idx"),
        ("SELECT id FROM objects_statechange WHERE instance_id = %s", "objects_change_instance_idx"),
        ("SELECT id FROM objects_stateentry WHERE instance_id = %s", "objects_entry_instance_name_uniq"),
    ],
)
def test_lookups_by_foreign_key_still_use_an_index(sql, index):
    """A parameter (as Django sends it) still proves the partial index's condition."""
    assert index in plan(sql, [1])


def test_deleting_a_caller_and_a_user_still_clears_their_references():
    instance = Instance.objects.create(type_name="T", key="k")
    caller = Invocation.objects.create(instance=instance, type_name="T", key="k", handler="h", kind="exclusive")
    callee = Invocation.objects.create(
        instance=instance, type_name="T", key="k", handler="h", kind="exclusive", caller=caller
    )
    user = User.objects.create_user("editor")
    change = StateChange.objects.create(instance=instance, name="n", action="set", version=1, user=user)
    StateEntry.objects.create(instance=instance, name="n", value=1)
    caller.delete()
    user.delete()
    callee.refresh_from_db()
    change.refresh_from_db()
    assert (callee.caller_id, change.user_id) == (None, None)
    instance.delete()
    assert not StateEntry.objects.filter(name="n").exists()
    assert not StateChange.objects.filter(pk=change.pk).exists()
