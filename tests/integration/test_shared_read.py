"""A shared handler reads its key's committed state with one statement (objects.runtime.state.committed_state)."""

from __future__ import annotations

import pytest
from django.db import connection

from objects import SharedObjectContext, VirtualObject
from objects.models import Instance, StateEntry
from objects.registry import unregister
from objects.runtime.run import run_shared

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def reader():
    obj = VirtualObject("SharedReader")

    @obj.shared
    def snapshot(ctx: SharedObjectContext) -> dict:
        return {"names": ctx.state_keys(), "items": ctx.get("items", []), "id": ctx.invocation_id}

    yield obj
    unregister("SharedReader")


def statements(fn):
    seen = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        result = fn()
    return result, seen


def test_a_known_key_is_read_with_one_statement():
    instance = Instance.objects.create(type_name="SharedReader", key="k1")
    StateEntry.objects.create(instance=instance, name="items", value=[1, {"b": 2, "a": 1}])
    StateEntry.objects.create(instance=instance, name="other", value="x")
    result, seen = statements(lambda: run_shared("SharedReader", "k1", "snapshot", None))
    assert len(seen) == 1
    assert result["names"] == ["items", "other"] and result["items"] == [1, {"a": 1, "b": 2}]
    assert result["id"].startswith("inv_")


@pytest.mark.parametrize("has_row", [False, True])
def test_a_key_without_entries_reads_empty_state(has_row):
    if has_row:
        Instance.objects.create(type_name="SharedReader", key="k2")
    result, seen = statements(lambda: run_shared("SharedReader", "k2", "snapshot", None))
    assert len(seen) == 1
    assert result["names"] == [] and result["items"] == []


def test_each_shared_run_has_its_own_invocation_id():
    first = run_shared("SharedReader", "k3", "snapshot", None)["id"]
    assert first != run_shared("SharedReader", "k3", "snapshot", None)["id"]
