"""An operator's state edit queues behind the key's lock, but not forever: when the lock is held longer than
OBJECTS_LOCK_TIMEOUT_MS the edit is refused with 409 Conflict saying what to do, and nothing is written."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction

from objects.errors import Conflict
from objects.models import Instance, StateEntry
from objects.services import state_edit

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_edit_behind_a_lock_held_too_long_is_refused(settings):
    settings.OBJECTS_LOCK_TIMEOUT_MS = 300
    instance = Instance.objects.create(type_name="Recorder", key="held")
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Instance.objects.select_for_update().get(pk=instance.pk)
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        with pytest.raises(Conflict, match="is busy: its lock was held for more than 0.3s"):
            state_edit(type_name="Recorder", key="held", expected_version=None, set_entries={"a": 1})
        assert holder.is_alive(), "the edit must give up while the lock is still held"
    finally:
        release.set()
        holder.join(30)
    assert not StateEntry.objects.filter(instance=instance).exists()
    # Once the lock is free the same edit goes through.
    state_edit(type_name="Recorder", key="held", expected_version=None, set_entries={"a": 1})
    assert StateEntry.objects.get(instance=instance).value == 1
