"""Invariants 1-4 and 8 against real PostgreSQL, real Redis and two real Celery worker processes."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import objects
from objects.models import Invocation, StateEntry, Status
from tests.support import threaded_call as _threaded_call
from tests.support import wait_for
from tests.testobjects.models import Event

pytestmark = pytest.mark.workers


def test_hot_key_keeps_every_update(live):
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda i: _threaded_call("Recorder", "hot", "append", {"value": i}), range(500)))
    stored = objects.call("Recorder", "hot", "items")
    assert sorted(stored) == list(range(500))
    assert sorted(results) == list(range(1, 501))


def test_sends_to_one_key_run_in_acceptance_order(live):
    for i in range(200):
        objects.send("Recorder", "ordered", "append", {"value": i})
    wait_for(lambda: len(objects.call("Recorder", "ordered", "items")) == 200)
    assert objects.call("Recorder", "ordered", "items") == list(range(200))


def test_one_key_never_overlaps_itself_while_two_keys_overlap(live):
    for _ in range(4):
        for key in ("k1", "k2"):
            objects.send("Recorder", key, "hold", {"sleep": 0.3})
    wait_for(lambda: Event.objects.filter(kind="exit").count() == 8, timeout=60)
    for key in ("k1", "k2"):
        events = list(Event.objects.filter(key=key).order_by("at"))
        kinds = [e.kind for e in events]
        assert kinds == ["enter", "exit"] * 4, kinds
    spans = {
        key: [(e.at, x.at) for e, x in zip(evs[::2], evs[1::2], strict=True)]
        for key in ("k1", "k2")
        for evs in [list(Event.objects.filter(key=key).order_by("at"))]
    }
    overlaps = sum(1 for a in spans["k1"] for b in spans["k2"] if a[0] < b[1] and b[0] < a[1])
    assert overlaps > 0, "different keys should run concurrently"


def test_shared_read_does_not_wait_for_a_running_exclusive_handler(live, redis_client):
    objects.call("Recorder", "busy", "append", {"value": "before"})
    objects.send("Recorder", "busy", "hold", {"release": "busy", "timeout": 30})
    assert redis_client.blpop(["entered:busy"], timeout=20)
    started = time.monotonic()
    assert objects.call("Recorder", "busy", "items") == ["before"]
    assert time.monotonic() - started < 5
    assert not Event.objects.filter(key="busy", kind="exit").exists(), "the exclusive handler is still running"
    redis_client.rpush("release:busy", 1)
    wait_for(lambda: Event.objects.filter(key="busy", kind="exit").exists())


def test_shared_handler_cannot_write(live):
    with pytest.raises(objects.SharedWriteError, match="read-only"):
        objects.call("Recorder", "ro", "sneaky_write")


def test_terminal_error_keeps_state_and_is_not_retried(live, redis_client):
    objects.call("Recorder", "t", "append", {"value": 1})
    with pytest.raises(objects.TerminalError) as info:
        objects.call("Recorder", "t", "refuse", {"message": "no way", "status": 422})
    assert info.value.status_code == 422 and "no way" in str(info.value)
    assert objects.call("Recorder", "t", "items") == [1]
    assert int(redis_client.get("refuse:t")) == 1
    failed = Invocation.objects.get(handler="refuse")
    assert failed.status == Status.FAILED and failed.error_code == 422 and failed.attempts == 0


def test_retried_handler_is_applied_exactly_once(live):
    assert objects.call("Recorder", "f", "flaky", {"id": 7, "fail_times": 2}) == 1
    assert objects.call("Recorder", "f", "items") == [7]
    invocation = Invocation.objects.get(handler="flaky")
    assert invocation.status == Status.SUCCEEDED and invocation.attempts == 2
    assert "transient failure 2" in invocation.error_message
    assert StateEntry.objects.get(instance__key="f", name="touched").value == 1


def test_sigkill_mid_handler_loses_nothing_and_applies_once(live, redis_client):
    sent = objects.send("Recorder", "crashy", "crash_once", {"id": 1})
    assert redis_client.blpop(["crash-started:crashy"], timeout=20)
    live.kill(0)
    live.kill(1)
    live.start_one(0)
    live.start_one(1)
    live.wait_ready()
    from objects.worker.sweeper import sweep

    def done():
        sweep()
        return Invocation.objects.get(uid=sent.removeprefix("inv_")).status == Status.SUCCEEDED

    wait_for(done, timeout=60, interval=0.5)
    assert objects.call("Recorder", "crashy", "items") == [1]


def test_flushall_with_pending_invocations_completes_them_all(live, redis_client):
    objects.call("Recorder", "pause-me", "append", {"value": -1})
    from objects.models import Instance
    from objects.services import instance_pause

    instance = Instance.objects.get(key="pause-me")
    instance_pause(instance=instance, reason="test")
    for i in range(100):
        objects.send("Recorder", "pause-me", "append", {"value": i})
    redis_client.flushall()
    from django.db.models import F  # noqa: F401

    Instance.objects.filter(pk=instance.pk).update(paused=False)
    from objects.worker.sweeper import sweep

    def done():
        sweep()
        return not Invocation.objects.filter(key="pause-me", status=Status.PENDING).exists()

    with __import__("django.test.utils", fromlist=["override_settings"]).override_settings(OBJECTS_REDISPATCH_AFTER=0):
        wait_for(done, timeout=60, interval=0.5)
    assert objects.call("Recorder", "pause-me", "items") == [-1, *range(100)]


def test_threads_see_committed_results_across_workers(live):
    barrier = threading.Barrier(4)

    def go(k):
        barrier.wait()
        return [_threaded_call("Recorder", f"multi{k}", "append", {"value": i}) for i in range(20)]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(go, range(4)))
    assert all(r == list(range(1, 21)) for r in results)


def test_oversized_state_entry_fails_at_once_with_413_and_keeps_nothing(live, settings):
    objects.call("Recorder", "big", "append", {"value": 1})
    with pytest.raises(objects.TerminalError) as info:
        objects.call("Recorder", "big", "append", {"value": "x" * (1024 * 1024 + 10)})
    assert info.value.status_code == 413 and "limit is 1048576 bytes" in str(info.value)
    failed = Invocation.objects.filter(key="big").order_by("-id").first()
    assert failed.status == Status.FAILED and failed.attempts == 0
    assert objects.call("Recorder", "big", "items") == [1]


def test_a_backing_off_head_holds_back_later_invocations_of_its_key(live):
    objects.send("Recorder", "blocked", "flaky", {"id": 1, "fail_times": 3})
    objects.send("Recorder", "blocked", "append", {"value": 2})
    objects.send("Recorder", "other-key", "append", {"value": 3})
    wait_for(lambda: objects.call("Recorder", "blocked", "items") == [1, 2], timeout=30)
    flaky = Invocation.objects.get(key="blocked", handler="flaky")
    later = Invocation.objects.get(key="blocked", handler="append")
    assert flaky.attempts == 3 and later.started_at >= flaky.finished_at


def test_sweeper_clears_state_idle_longer_than_the_state_ttl(live):
    from datetime import timedelta

    from django.utils import timezone

    from objects.models import Instance
    from objects.worker.sweeper import sweep

    objects.call("Ephemeral", "old", "put", {"value": "a"})
    objects.call("Ephemeral", "fresh", "put", {"value": "b"})
    Instance.objects.filter(type_name="Ephemeral", key="old").update(changed_at=timezone.now() - timedelta(minutes=2))
    assert sweep()["state_expired"] == 1
    assert objects.call("Ephemeral", "old", "value") is None
    assert objects.call("Ephemeral", "fresh", "value") == "b"
