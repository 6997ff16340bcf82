"""The public reads a domain app uses instead of the app's models: `objects.instance_exists`,
`objects.instance_keys`, `objects.state_read` and `objects.state_values`, over committed state rows."""

from __future__ import annotations

import pytest

import objects
from objects.models import Instance, StateEntry

pytestmark = pytest.mark.django_db


def _key(type_name: str, key: str, **entries) -> Instance:
    instance = Instance.objects.create(type_name=type_name, key=key)
    for name, value in entries.items():
        StateEntry.objects.create(instance=instance, name=name, value=value)
    return instance


def test_the_reads_are_exported_with_the_errors():
    for name in ("instance_exists", "instance_keys", "state_read", "state_values", "NotFound", "ObjectsError"):
        assert name in objects.__all__
        assert getattr(objects, name) is not None
    assert issubclass(objects.NotFound, objects.ObjectsError)
    assert issubclass(objects.TerminalError, objects.ObjectsError)


def test_instance_exists_is_per_type_and_key():
    _key("Box", "a")
    assert objects.instance_exists("Box", "a")
    assert not objects.instance_exists("Box", "b")
    assert not objects.instance_exists("Crate", "a")


def test_instance_keys_by_prefix_and_state_entries_newest_first_or_by_key():
    _key("Order", "o1", user="rex", total=5)
    _key("Order", "o2", user="ann")
    _key("Order", "o3", user="rex", total=7)
    _key("Order", "x1", user="rex")
    _key("Other", "o4", user="rex")
    assert objects.instance_keys("Order") == ["o1", "o2", "o3", "x1"]
    assert objects.instance_keys("Order", prefix="o") == ["o1", "o2", "o3"]
    assert objects.instance_keys("Order", where={"user": "rex"}, newest_first=True) == ["x1", "o3", "o1"]
    assert objects.instance_keys("Order", prefix="o", where={"user": "rex", "total": 7}) == ["o3"]
    assert objects.instance_keys("Order", where={"user": "nobody"}) == []


def test_state_read_is_the_committed_entries_or_some_of_them():
    _key("Box", "a", size=3, tags=["x"], empty=None)
    assert objects.state_read("Box", "a") == {"size": 3, "tags": ["x"], "empty": None}
    assert objects.state_read("Box", "a", "size", "missing") == {"size": 3}
    assert objects.state_read("Box", "never") == {}


def test_state_values_reads_one_entry_of_many_keys():
    _key("Counter", "t/a", value=3)
    _key("Counter", "t/b")
    _key("Counter", "t/c", value=1)
    assert objects.state_values("Counter", ["t/a", "t/b", "t/c", "t/none"], "value") == {"t/a": 3, "t/c": 1}
    assert objects.state_values("Counter", [], "value") == {}
