"""A worker's drains: the partition drain loop, the per-key drain, and what a worker does when it starts.

objects/tasks.py holds the Celery entry points over these; objects/worker/partition.py runs one pass over a
partition's keys, objects/worker/inbox.py one key's inbox; objects/signals/doorbell.py keeps the counters in Redis.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from django.db import close_old_connections

from .. import conf
from ..routing import queue_name
from ..signals import notify
from ..signals.doorbell import (
    WAKE_PREFIX,
    bells_hold,
    bells_release,
    bells_renew,
    partition_bell_key,
    partition_published_key,
    partition_wake_key,
    ring,
    ring_partition,
)
from .inbox import DrainResult, drain_key
from .partition import drain_pass

log = logging.getLogger("objects.worker")


def key_drain(type_name: str, key: str, busy: int = 0) -> int:
    """Per-key doorbell: run one key's inbox now. It is rung for one key's sake: a retry or a delayed send
    that is due, a key whose row the partition's drain found busy, a slow key, the sweeper's re-dispatch;
    what it was rung for is committed before it rings, and anything accepted later rings the partition.
    Carries no invocation, so duplicates and losses are harmless. When another transaction holds the key's
    row, it comes back shortly with growing pauses instead of dropping the work."""
    ran, result = drain_key(type_name, key)
    if result == DrainResult.BUSY:
        ring(type_name, key, countdown=min(0.02 * 2**busy, 1.0), force=True, busy=busy + 1)
    return ran


def partition_drain(partition: int) -> int:
    """Doorbell of a partition: run the runnable keys of every partition this worker consumes, many per
    transaction, until a pass finds nothing new.

    A counter per partition in Redis: a ring counts after its invocation committed, only the ring that takes
    the counter from 0 to 1 publishes, and the drain deletes the counters only if no ring counted since it
    read them; otherwise it goes round again. So unchanged counters prove that the drain's last pass saw
    every invocation rung for (docs/decisions/0002). The drain holds the counters of all the partitions its
    worker consumes (`_consumed`), not only the one it was rung for, and each pass covers them all: while it
    runs, no ring to any of them publishes a Celery message, and the worker's partitions share one loop.

    Before letting go, the drain lingers up to OBJECTS_DRAIN_LINGER_MS on the partitions' wake lists, which
    every ring pushes to, so calls arriving one after another are run without a Celery message each. It
    stops lingering when another Celery message is published to one of its worker's queues (a per-key
    drain, a drain of a partition whose counter ran out), and hands its partitions back to the queue after
    DRAIN_TASK_LIMIT seconds, so the worker's other messages (timed retries, busy keys, sweeps) are not held
    up.

    In a thread pool one drain loop runs at a time per worker: a drain message that arrives while one runs
    (a worker's start rings every partition; a drain past its time limit queues its partition again) makes the
    running loop go round once more instead of starting a second loop over the same keys, which would find
    them locked and hand each to a per-key drain.
    """
    partitions = _partitions_of_worker(partition)
    if len(partitions) == 1:
        return _drain_loop(partition, partitions)
    with _loop_guard:
        if _loop_state["running"]:
            _loop_state["again"] = True
            return 0
        _loop_state["running"] = True
    total = 0
    try:
        while True:
            total += _drain_loop(partition, partitions, main=True)
            with _loop_guard:
                if not _loop_state["again"]:
                    return total
                _loop_state["again"] = False
    finally:
        with _loop_guard:
            _loop_state["running"] = _loop_state["again"] = False


_loop_guard = threading.Lock()
_loop_state = {"running": False, "again": False}  # this worker's one drain loop (solo and thread pools)
_main_pass: list[float | None] = [None]  # when the drain loop's current pass started (None between passes)


def _rescue_forever() -> None:
    """A thread of a worker with spare threads: when the drain loop's pass outruns the pass budget (a handler
    that turned slow, before it is known as slow), run passes over the worker's partitions beside it until
    that pass ends. They skip the stuck pass's keys (their rows are locked) and leave the partitions'
    counters to the loop, which goes round again afterwards for whatever was rung meanwhile. So a newly slow
    handler delays only the keys of its own pass."""

    while True:
        budget = conf.get("OBJECTS_GROUP_BUDGET_MS") / 1000
        time.sleep(budget / 4)
        stuck = _main_pass[0]
        if stuck is None or time.monotonic() - stuck < budget:
            continue
        try:
            while _main_pass[0] == stuck:
                result = drain_pass(list(_consumed))
                if not result.ran and not result.more and _main_pass[0] == stuck:
                    _linger(list(_consumed), budget / 4)
        except Exception:  # noqa: BLE001 - a rescue that fails leaves the work to the loop, as without it
            log.exception("rescue pass failed")
        finally:
            close_old_connections()


_rescuer: list[threading.Thread] = []


def _drain_loop(partition: int, partitions: list[int], *, main: bool = False) -> int:
    seen = bells_hold(partitions, delete_hints=[partition_published_key(partition)])
    started = renewed = time.monotonic()
    linger = conf.get("OBJECTS_DRAIN_LINGER_MS") / 1000
    overdue = False
    total = 0
    while True:
        if main:
            _main_pass[0] = time.monotonic()
        try:
            result = drain_pass(partitions)
        finally:
            _main_pass[0] = None
        total += result.ran
        if seen is not None and time.monotonic() - renewed > 1.0:
            bells_renew(partitions)
            renewed = time.monotonic()
        if result.more:
            if time.monotonic() - started > DRAIN_TASK_LIMIT:  # a backlog: let the worker's queue move first
                ring_partition(partition, force=True)  # the counters stay held: the next drain goes on
                return total
            continue
        if seen is None:  # Redis was unreachable: every ring publishes its own message meanwhile
            return total
        overdue = overdue or time.monotonic() - started > DRAIN_TASK_LIMIT
        if linger and not overdue:
            woke = _linger(partitions, linger)
            if woke == "mine":
                # Straight to the next pass, the counters still held: the ring that woke the drain counted
                # after `seen` was read, so letting go later finds them changed and goes round once more.
                continue
            overdue = woke == "other"
        seen = bells_release(partitions, seen)
        if seen is None:
            return total
        if overdue:  # rings keep coming: keep the counters, queue the partition again behind the others
            ring_partition(partition, force=True)
            return total


DRAIN_TASK_LIMIT = 1.0  # seconds a drain lingers and goes round before it lets the worker's queue move
_consumed: list[int] = []  # partitions this worker process consumes (set when it starts)
_one_loop = False  # whether one drain covers all of them: the pool runs tasks in this process (solo, threads)
_spare = False  # whether the pool has threads beside the drain's, which take the worker's other messages


def _partitions_of_worker(partition: int) -> list[int]:
    """The partitions a drain rung for `partition` covers: in a worker whose pool runs tasks in its own process
    (solo, threads), all those it consumes, so one loop groups every partition's keys into its passes and
    the pool's other threads stay free for per-key drains (slow keys, retries, delayed sends). In a prefork
    child, which does not know what its worker consumes, just `partition`."""
    if _one_loop and partition in _consumed:
        return [partition] + [p for p in _consumed if p != partition]
    return [partition]


def _linger(partitions: list[int], seconds: float) -> str | None:
    """Wait for a ring of one of `partitions`: "mine" when one came, None after `seconds`. In a pool without
    spare threads (solo, or one thread) a Celery message published to one of the worker's queues ends the
    wait ("other"): that message waits for this task to end. With spare threads another thread takes it."""
    keys = [partition_wake_key(p) for p in partitions]
    if not _spare:
        keys += [partition_published_key(p) for p in [*partitions, *(p for p in _consumed if p not in partitions)]]
    try:
        (got,) = notify.pipelined([("BLPOP", *keys, seconds)])
    except Exception:  # noqa: BLE001 - Redis down: stop lingering, let go of the partitions
        return None
    if got is None:
        return None
    woke = got[0].decode() if isinstance(got[0], bytes) else str(got[0])
    return "mine" if woke.startswith(WAKE_PREFIX) else "other"


def worker_started(sender: Any) -> None:
    """A worker that starts (or restarts after being killed mid-drain) clears the counters of the partitions
    it consumes and drains them, instead of waiting for a dead drain's counter to run out."""
    try:
        queues = [q.name for q in sender.app.amqp.queues.consume_from.values()]
    except AttributeError:
        return
    prefix = queue_name(0)[:-1]
    numbers = [name[len(prefix) :] for name in queues if name.startswith(prefix)]
    partitions = [int(number) for number in numbers if number.isdigit()]
    global _consumed, _one_loop, _spare
    _consumed = partitions
    limit = getattr(getattr(getattr(sender, "controller", None), "pool", None), "limit", None)
    _one_loop = True  # this signal runs in the process that runs the tasks (solo, threads; not prefork children)
    _spare = isinstance(limit, int) and limit > 1
    if _spare and not _rescuer:
        _rescuer.append(threading.Thread(target=_rescue_forever, name="objects-rescue", daemon=True))
        _rescuer[0].start()
    for partition in partitions:
        try:
            notify.client().delete(partition_bell_key(partition))
        except Exception:  # noqa: BLE001 - without Redis every ring publishes anyway
            pass
        ring_partition(partition, force=True)
