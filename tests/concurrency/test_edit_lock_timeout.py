"""An operator's state edit queues behind the key's lock, but not forever: when the lock is held longer than
OBJECTS_LOCK_TIMEOUT_MS the edit is refused with 409 Conflict saying what to do, and nothing is written."""

from __future__ import annotations

import pytest

from objects.errors import Conflict
from objects.models import Instance, StateEntry
from objects.services import state_edit
from tests.support import key_row_held

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_edit_behind_a_lock_held_too_long_is_refused(settings):
    settings.OBJECTS_LOCK_TIMEOUT_MS = 300
    instance = Instance.objects.create(type_name="Recorder", key="held")
    with key_row_held(instance.pk) as holder:
        with pytest.raises(Conflict, match="is busy: its lock was held for more than 0.3s"):
            state_edit(type_name="Recorder", key="held", expected_version=None, set_entries={"a": 1})
        assert holder.is_alive(), "the edit must give up while the lock is still held"
    assert not StateEntry.objects.filter(instance=instance).exists()
    # Once the lock is free the same edit goes through.
    state_edit(type_name="Recorder", key="held", expected_version=None, set_entries={"a": 1})
    assert StateEntry.objects.get(instance=instance).value == 1
