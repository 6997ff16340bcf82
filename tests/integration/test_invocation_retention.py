"""The sweeper deletes invocations finished longer than OBJECTS_INVOCATION_RETENTION ago (objects/worker/sweeper.py),
oldest first and a batch at a time, and keeps every one still open or still holding its idempotency key."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from objects.models import Instance, Invocation, JournalEntry, StateChange, Status
from objects.worker.sweeper import delete_finished, sweep

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


@pytest.fixture
def key():
    return Instance.objects.create(type_name="Recorder", key="kept")


def invocation(key, *, status, age, **fields):
    made = Invocation.objects.create(
        instance=key, type_name=key.type_name, key=key.key, handler="append", kind="exclusive", status=status, **fields
    )
    when = timezone.now() - age
    finished = when if status in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.KILLED) else None
    Invocation.objects.filter(pk=made.pk).update(created_at=when, finished_at=finished)
    return made


def test_old_finished_invocations_go_and_everything_else_stays(key):
    old = invocation(key, status=Status.SUCCEEDED, age=8 * DAY)
    old_failed = invocation(key, status=Status.FAILED, age=9 * DAY)
    recent = invocation(key, status=Status.SUCCEEDED, age=DAY)
    waiting = invocation(key, status=Status.PENDING, age=30 * DAY)
    backing_off = invocation(key, status=Status.BACKING_OFF, age=30 * DAY)
    remembered = invocation(
        key,
        status=Status.SUCCEEDED,
        age=8 * DAY,
        idempotency_key="still-known",
        idempotency_expires_at=timezone.now() + DAY,
    )
    JournalEntry.objects.create(invocation=old, index=0, name="charge", result={"ok": True})
    change = StateChange.objects.create(instance=key, name="items", action="set", version=1, invocation=old)
    callee = invocation(key, status=Status.SUCCEEDED, age=DAY, caller=old)

    assert delete_finished(timezone.now(), 1000) == 2
    left = set(Invocation.objects.values_list("pk", flat=True))
    assert left == {recent.pk, waiting.pk, backing_off.pk, remembered.pk, callee.pk}
    assert old_failed.pk not in left
    assert not JournalEntry.objects.exists()  # the journal goes with its invocation
    change.refresh_from_db()
    callee.refresh_from_db()
    assert (change.invocation_id, callee.caller_id) == (None, None)  # history and callees stay, unlinked


def test_a_sweep_deletes_a_batch_oldest_first(key, settings):
    oldest = [invocation(key, status=Status.SUCCEEDED, age=(20 - n) * DAY) for n in range(3)]
    assert delete_finished(timezone.now(), 2) == 2
    assert list(Invocation.objects.values_list("pk", flat=True)) == [oldest[2].pk]
    settings.OBJECTS_INVOCATION_RETENTION = timedelta(days=30)
    assert sweep()["invocations_deleted"] == 0
    settings.OBJECTS_INVOCATION_RETENTION = timedelta(days=1)
    assert sweep()["invocations_deleted"] == 1
    assert not Invocation.objects.exists()
