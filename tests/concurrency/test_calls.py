"""Invariants 5-7: calls between objects, deadlock detection, sends, delayed sends, ctx.run, idempotency."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

import objects
from objects.models import Invocation, JournalEntry, Status
from objects.services import invocation_cancel, invocation_get
from objects.worker.sweeper import sweep
from tests.support import threaded_call as _call
from tests.support import wait_for

pytestmark = pytest.mark.workers


def test_self_call_fails_fast_with_deadlock_error_naming_the_chain(live):
    started = time.monotonic()
    with pytest.raises(objects.DeadlockError) as info:
        objects.call("Chain", "u1", "call_self")
    assert time.monotonic() - started < 1.0 + 0.5  # one round trip through a worker, no waiting on a lock
    assert info.value.status_code == 409
    assert "Chain/u1.call_self → Chain/u1.bump" in str(info.value)
    assert "ctx.send" in str(info.value)


def test_three_object_cycle_fails_with_the_exact_chain(live):
    with pytest.raises(objects.DeadlockError) as info:
        objects.call("Chain", "u1", "cycle")
    assert "Chain/u1.cycle → Relay/r1.forward → Third/t1.forward → Chain/u1.bump" in str(info.value)
    assert objects.call("Chain", "u1", "peek") == 0


def test_callee_writes_commit_with_the_caller_and_roll_back_with_it(live):
    assert objects.call("Chain", "a", "bump_other_then", {"other": "b"}) == 1
    assert objects.call("Chain", "b", "peek") == 1
    with pytest.raises(objects.TerminalError):
        objects.call("Chain", "a", "bump_other_then", {"other": "b", "then_fail": True})
    assert objects.call("Chain", "b", "peek") == 1, "the callee's write must roll back with the failed caller"
    assert objects.call("Chain", "a", "peek") == 1


def test_callee_terminal_error_reaches_the_caller_as_catchable_terminal_error(live):
    assert objects.call("Chain", "c", "catch_callee_error") == "caught 409: callee says no"


def test_shared_call_to_own_key_takes_no_lock(live):
    objects.call("Chain", "s", "bump")
    assert objects.call("Chain", "s", "read_shared_of_held") == 1


def test_opposite_order_chains_both_complete(live):
    for round_ in range(50):
        a, b = f"x{round_}", f"y{round_}"
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(_call, "Chain", a, "cross", {"other": b, "pause": 0.02})
            second = pool.submit(_call, "Chain", b, "cross", {"other": a, "pause": 0.02})
            first.result(timeout=60)
            second.result(timeout=60)
        assert objects.call("Chain", a, "peek") == 2 and objects.call("Chain", b, "peek") == 2


def test_send_from_a_failing_handler_never_runs(live):
    with pytest.raises(objects.TerminalError):
        objects.call("Chain", "f", "send_then", {"target": "never", "value": 1, "then_fail": True})
    objects.call("Chain", "f", "send_then", {"target": "after", "value": 2})
    wait_for(lambda: objects.call("Recorder", "after", "items") == [2])
    assert objects.call("Recorder", "never", "items") == []
    assert not Invocation.objects.filter(key="never").exists()


def test_delayed_send_runs_after_its_delay_not_before_even_across_worker_restarts(live):
    sent_at = time.time()
    objects.call("Chain", "d", "send_then", {"target": "later", "value": 9, "delay": 3})
    delayed = Invocation.objects.get(key="later")
    assert delayed.not_before is not None
    for index in range(len(live.procs)):
        live.kill(index)
    time.sleep(1)
    assert objects.call("Recorder", "later", "items") == []
    for index in range(len(live.procs)):
        live.start_one(index)
    live.wait_ready()

    def applied():
        sweep()
        return objects.call("Recorder", "later", "items") == [9]

    wait_for(applied, timeout=30, interval=0.3)
    delayed.refresh_from_db()
    assert delayed.finished_at.timestamp() >= sent_at + 3


def test_pending_delayed_send_can_be_cancelled(live):
    invocation_id = objects.send("Recorder", "cancelled", "append", {"value": 1}, delay=timedelta(seconds=2))
    invocation_cancel(invocation=invocation_get(invocation_id))
    time.sleep(3)
    sweep()
    time.sleep(0.5)
    assert objects.call("Recorder", "cancelled", "items") == []
    assert invocation_get(invocation_id).status == Status.CANCELLED


def test_journaled_step_is_not_repeated_when_the_handler_is_retried(live, redis_client):
    assert objects.call("Chain", "j", "step_then_fail_once", {"id": "s1"}) == 1
    assert int(redis_client.get("step:s1")) == 1, "the step ran once although the handler ran twice"
    assert int(redis_client.get("attempt:s1")) == 2
    invocation = Invocation.objects.get(handler="step_then_fail_once")
    assert invocation.attempts == 1
    entry = JournalEntry.objects.get(invocation=invocation)
    assert (entry.name, entry.result, entry.failure) == ("count", 1, "")


def test_concurrent_requests_with_one_idempotency_key_execute_once(live, redis_client):
    with ThreadPoolExecutor(20) as pool:
        results = list(
            pool.map(lambda _: _call("Chain", "idem", "slow_once", {"id": "i1"}, idempotency_key="order-42"), range(20))
        )
    assert results == [1] * 20
    assert int(redis_client.get("exec:i1")) == 1
    assert Invocation.objects.filter(handler="slow_once").count() == 1


def test_idempotency_key_reused_with_another_input_is_refused(live):
    objects.send("Recorder", "idem2", "append", {"value": 1}, idempotency_key="k1")
    with pytest.raises(objects.Conflict, match="already used"):
        objects.send("Recorder", "idem2", "append", {"value": 2}, idempotency_key="k1")
    assert (
        objects.send("Recorder", "idem2", "append", {"value": 1}, idempotency_key="k1")
        == Invocation.objects.get(key="idem2").public_id
    )


def test_expired_idempotency_key_can_be_used_again(live):
    from django.test.utils import override_settings

    with override_settings(OBJECTS_IDEMPOTENCY_RETENTION=timedelta(seconds=0)):
        first = objects.send("Recorder", "idem3", "append", {"value": 1}, idempotency_key="k")
    wait_for(lambda: objects.call("Recorder", "idem3", "items") == [1])
    assert sweep()["idempotency_expired"] >= 1
    second = objects.send("Recorder", "idem3", "append", {"value": 1}, idempotency_key="k")
    assert second != first
    wait_for(lambda: objects.call("Recorder", "idem3", "items") == [1, 1])
