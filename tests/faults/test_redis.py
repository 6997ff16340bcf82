"""Invariant 1 under load: Redis restarted empty, or flushed, loses nothing accepted; waiting callers get
their result or a clear error carrying the invocation id."""

from __future__ import annotations

import time

import pytest

from tests.faults.model import Sweeper, check_invariants, settle

pytestmark = pytest.mark.workers


def _assert_waiters_answered(load, moment: float, until: float) -> int:
    waiting = load.in_flight_at(moment, until)
    assert waiting, "no call was waiting at the fault: the test proved nothing about waiters"
    unclear = [a for a in waiting if a.outcome not in ("returned", "timeout")]
    assert not unclear, f"waiting callers got neither a result nor a CallTimeout with the id: {unclear[:5]}"
    return len(waiting)


def test_redis_restart_under_load_loses_nothing(live, load_factory, fast_redispatch, redis_server):
    load = load_factory(prefix="rrestart", keys=50, threads=10, call_share=0.4, seed=21)
    with Sweeper(interval=1.0) as sweeper:
        load.start()
        time.sleep(3.0)
        down_at = time.monotonic()
        argv = redis_server.kill()
        time.sleep(2.0)
        redis_server.start(argv)
        up_at = time.monotonic()
        time.sleep(8.0)  # the workers' broker connections come back on their own (Celery retries every 2 s)
        load.stop()
        assert not live.dead(), f"a worker did not survive the Redis restart: {live.dead()}"
        settle_seconds = settle("rrestart")
    figures = check_invariants(load)
    waiting = _assert_waiters_answered(load, down_at, up_at)
    live.wait_ready()
    after = [a for a in load.attempts if a.started > up_at]
    returned = [a.ended for a in after if a.outcome == "returned"]
    recovered_in = min(returned) - up_at if returned else None
    print(
        f"\nredis restart: down {up_at - down_at:.1f}s; load {load.stopped - load.started:.1f}s at "
        f"{load.rate():.0f} accepted/s; {figures}; calls waiting across the outage {waiting}; "
        f"accepted after restart {sum(a.accepted for a in after)}; first call started after the restart "
        f"returned {recovered_in if recovered_in is None else round(recovered_in, 1)}s after it; "
        f"settled in {settle_seconds:.1f}s; "
        f"doorbells re-rung {sweeper.redispatched}"
    )
    assert figures.get("call_refused", 0) + figures.get("send_refused", 0) == 0, "Redis down must not refuse requests"
    assert returned, "no call started after the restart returned"


def test_flushall_under_load_loses_nothing(live, load_factory, fast_redispatch, redis_client):
    load = load_factory(prefix="flush", keys=50, threads=10, call_share=0.4, seed=22)
    flushes = []
    with Sweeper(interval=1.0) as sweeper:
        load.start()
        for _ in range(3):
            time.sleep(2.0)
            flushes.append(time.monotonic())
            redis_client.flushall()
        time.sleep(3.0)
        load.stop()
        assert not live.dead(), f"a worker did not survive FLUSHALL: {live.dead()}"
        settle_seconds = settle("flush")
    figures = check_invariants(load)
    waiting = sum(_assert_waiters_answered(load, moment, moment) for moment in flushes)
    live.wait_ready()
    print(
        f"\nredis flushall x{len(flushes)}: load {load.stopped - load.started:.1f}s at {load.rate():.0f} accepted/s; "
        f"{figures}; calls waiting at a flush {waiting}; settled in {settle_seconds:.1f}s; "
        f"doorbells re-rung {sweeper.redispatched}"
    )
    assert figures.get("call_refused", 0) + figures.get("send_refused", 0) == 0
