"""Celery tasks: the doorbells (`objects.drain_partition`, `objects.drain`) and the sweeper (`objects.sweep`).

A new invocation rings its partition: one Celery message per burst of calls to the partition, whose drain
runs many keys per transaction (objects/partition.py). Per-key drains remain for what concerns one key:
a timed retry or delayed send, a key whose row was busy, a slow key, the sweeper's re-dispatch.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from . import conf
from .routing import partition_of, queue_name

log = logging.getLogger("objects.tasks")
SWEEP_QUEUE = "objects.sweeper"


PARTITION_BELL_PREFIX = "objects:pbell:"
# A partition's counter outlives a dead drain (SIGKILL: Celery redelivers its message only after the
# visibility timeout) by at most this long; a live drain renews it every pass. Meanwhile the sweeper's
# per-key doorbells keep the partition's keys running.
PARTITION_BELL_TTL = 10

# Drop a doorbell counter only if no ring counted since the drain read it; otherwise return the new count,
# and the drain goes round again (an invocation accepted during the drain is never left behind).
_RELEASE = """
local now = redis.call('GET', KEYS[1])
if now == ARGV[1] or (not now and ARGV[1] == '') then
    redis.call('DEL', KEYS[1])
    return false
end
return now or ''
"""


_release_script = None


@shared_task(name="objects.drain", ignore_result=True, acks_late=True)
def drain(type_name: str, key: str, busy: int = 0) -> int:
    """Per-key doorbell: run one key's inbox now. It is rung for one key's sake: a retry or a delayed send
    that is due, a key whose row the partition's drain found busy, a slow key, the sweeper's re-dispatch;
    what it was rung for is committed before it rings, and anything accepted later rings the partition.
    Carries no invocation, so duplicates and losses are harmless. When another transaction holds the key's
    row, it comes back shortly with growing pauses instead of dropping the work."""
    from .inbox import DrainResult, drain_key

    ran, result = drain_key(type_name, key)
    if result == DrainResult.BUSY:
        ring(type_name, key, countdown=min(0.02 * 2**busy, 1.0), force=True, busy=busy + 1)
    return ran


def partition_bell_key(partition: int) -> str:
    return f"{PARTITION_BELL_PREFIX}{partition}"


@shared_task(name="objects.drain_partition", ignore_result=True, acks_late=True)
def drain_partition(partition: int) -> int:
    """Doorbell of a partition: run its runnable keys, many per transaction, until a pass finds nothing new.

    A counter per partition in Redis: a ring counts after its invocation committed, only the ring that takes
    the counter from 0 to 1 publishes, and the drain deletes the counter only if no ring counted since it
    read it; otherwise it goes round again. So an unchanged counter proves that the drain's last pass saw
    every invocation rung for (docs/decisions/0002).

    Before letting go, the drain lingers up to OBJECTS_DRAIN_LINGER_MS on the partition's wake list, which
    every ring pushes to: while it holds the counter no ring publishes a Celery message, so calls arriving
    one after another are run without one. It stops lingering when a Celery message is published for
    another partition this worker consumes, and hands its partition back to the queue after
    DRAIN_TASK_LIMIT seconds, so the worker's other messages (other partitions, timed retries, sweeps) are
    not held up.
    """
    from .partition import drain_pass

    bell = partition_bell_key(partition)
    seen = _bell_read(
        bell, ttl=PARTITION_BELL_TTL, hints=[partition_wake_key(partition), partition_published_key(partition)]
    )
    started = renewed = time.monotonic()
    linger = conf.get("OBJECTS_DRAIN_LINGER_MS") / 1000
    overdue = False
    total = 0
    while True:
        result = drain_pass(partition)
        total += result.ran
        if seen is not None and time.monotonic() - renewed > 1.0:
            _bell_renew(bell)
            renewed = time.monotonic()
        if result.more:
            if time.monotonic() - started > DRAIN_TASK_LIMIT:  # a backlog: let the worker's queue move first
                ring_partition(partition, force=True)  # the counter stays held: the next drain goes on
                return total
            continue
        if seen is None:  # Redis was unreachable: every ring publishes its own message meanwhile
            return total
        overdue = overdue or time.monotonic() - started > DRAIN_TASK_LIMIT
        if linger and not overdue:
            woke = _linger(partition, linger)
            if woke == "mine":
                seen = _bell_read(bell)  # read before the next pass, as at the start
                if seen is None:
                    return total
                continue
            overdue = woke == "other"
        seen = _bell_release(bell, seen)
        if seen is None:
            return total
        if overdue:  # rings keep coming: keep the counter, queue the partition again behind the others
            ring_partition(partition, force=True)
            return total


DRAIN_TASK_LIMIT = 1.0  # seconds a drain lingers and goes round before it lets the worker's queue move
WAKE_PREFIX = "objects:wake:"
PUBLISHED_PREFIX = "objects:published:"
_consumed: list[int] = []  # partitions this worker process consumes (set when it starts)


def partition_wake_key(partition: int) -> str:
    return f"{WAKE_PREFIX}{partition}"


def partition_published_key(partition: int) -> str:
    return f"{PUBLISHED_PREFIX}{partition}"


def _linger(partition: int, seconds: float) -> str | None:
    """Wait for a ring of `partition`: "mine" when one came, None after `seconds`. A Celery message published
    for another partition this worker consumes ends the wait ("other"): in a solo worker that message waits
    for this task to end, and in a thread pool this thread may be the one it needs."""
    from .notify import client

    mine = partition_wake_key(partition)
    keys = [mine]
    keys += [partition_published_key(p) for p in _consumed if p != partition]
    try:
        got = client().blpop(keys, timeout=seconds)
    except Exception:  # noqa: BLE001 - Redis down: stop lingering, let go of the partition
        return None
    if got is None:
        return None
    woke = got[0].decode() if isinstance(got[0], bytes) else str(got[0])
    return "mine" if woke == mine else "other"


@shared_task(name="objects.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    from .sweeper import sweep as run_sweep

    return run_sweep()


def _bell_read(bell: str, ttl: int | None = None, hints: list[str] | None = None) -> str | None:
    """The counter's value as text ('' when absent), or None when Redis is unreachable. With `ttl`, the
    counter's expiry is renewed in the same round trip; `hints` (wake lists the pass about to run makes
    stale) are deleted in it."""
    from .notify import client

    try:
        if ttl is None and not hints:
            value = client().get(bell)
        else:
            with client().pipeline(transaction=False) as pipe:
                pipe.get(bell)
                if ttl is not None:
                    pipe.expire(bell, ttl)
                if hints:
                    pipe.delete(*hints)
                value = pipe.execute()[0]
    except Exception:  # noqa: BLE001 - Redis down: every ring publishes; one pass, then stop
        return None
    return "" if value is None else value.decode() if isinstance(value, bytes) else str(value)


def _bell_renew(bell: str) -> None:
    from .notify import client

    try:
        client().expire(bell, PARTITION_BELL_TTL)
    except Exception:  # noqa: BLE001 - an expired counter only lets one more drain start
        pass


def _bell_release(bell: str, seen: str | None) -> str | None:
    """Delete the counter if it still reads `seen` (None: done); otherwise its new value (drain again)."""
    from .notify import client

    if seen is None:
        return None
    global _release_script
    try:
        if _release_script is None:
            _release_script = client().register_script(_RELEASE)
        now = _release_script(keys=[bell], args=[seen])
    except Exception:  # noqa: BLE001 - Redis down: rings publish without the counter, nothing waits on it
        return None
    return None if now is None else (now.decode() if isinstance(now, bytes) else str(now))


# Count a ring of the partition. The counter's expiry is set by the first ring only, so a counter left by a
# dead drain runs out however many rings follow; a live drain renews it. A later ring wakes the drain that
# holds the counter (the partition's wake list); the first one, which publishes a Celery message, tells a
# drain of another partition lingering in a worker that consumes it to make way (the "published" list).
_RING = """
local count = redis.call('INCR', KEYS[1])
local hint = KEYS[2]
if count == 1 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
    hint = KEYS[3]
end
redis.call('LPUSH', hint, '1')
redis.call('LTRIM', hint, 0, 0)
redis.call('EXPIRE', hint, ARGV[1])
return count
"""
_ring_script = None


def _partition_bell_count(partition: int) -> bool:
    """Count a ring of the partition (one round trip); True when it is the first since its last drain
    finished, so it must publish."""
    from .notify import client

    global _ring_script
    try:
        if _ring_script is None:
            _ring_script = client().register_script(_RING)
        keys = [partition_bell_key(partition), partition_wake_key(partition), partition_published_key(partition)]
        count = _ring_script(keys=keys, args=[PARTITION_BELL_TTL])
    except Exception:  # noqa: BLE001 - Redis down: ring anyway (a duplicate drain is harmless)
        return True
    return int(count) == 1


def ring_partition(partition: int, *, force: bool = False) -> bool:
    """Publish the partition's doorbell unless a drain of it is already pending or running (or `force`)."""
    if not force and not _partition_bell_count(partition):
        return True
    try:
        drain_partition.apply_async(args=[partition], queue=queue_name(partition), retry=False)
    except Exception as exc:  # noqa: BLE001 - the invocation is committed; a lost doorbell is swept later
        log.warning("doorbell for partition %s not delivered (%s); the sweeper will re-dispatch it", partition, exc)
        return False
    return True


def ring(
    type_name: str,
    key: str,
    *,
    countdown: float | None = None,
    partition: int | None = None,
    force: bool = False,
    busy: int = 0,
) -> bool:
    """Ring for a key. Never raises: the sweeper covers losses.

    Plain rings (a new invocation, a resume, a retry) go to the key's partition (`ring_partition`). A timed
    ring (`countdown`: a delayed send, a retry when due) or a forced one (a busy row, a slow key, the
    sweeper) publishes a per-key drain of the key's queue.
    """
    partition = partition_of(type_name, key) if partition is None else partition
    if not force and countdown is None:
        return ring_partition(partition)
    try:
        drain.apply_async(args=[type_name, key, busy], queue=queue_name(partition), countdown=countdown, retry=False)
    except Exception as exc:  # noqa: BLE001 - the invocation is committed; a lost doorbell is swept later
        log.warning("doorbell for %s/%s not delivered (%s); the sweeper will re-dispatch it", type_name, key, exc)
        return False
    return True


@worker_ready.connect
def _reset_partition_bells(sender: Any = None, **kwargs: Any) -> None:
    """A worker that starts (or restarts after being killed mid-drain) clears the counters of the partitions
    it consumes and drains them, instead of waiting for a dead drain's counter to run out."""
    try:
        queues = [q.name for q in sender.app.amqp.queues.consume_from.values()]
    except AttributeError:
        return
    prefix = queue_name(0)[:-1]
    numbers = [name[len(prefix) :] for name in queues if name.startswith(prefix)]
    partitions = [int(number) for number in numbers if number.isdigit()]
    global _consumed
    _consumed = partitions
    from .notify import client

    for partition in partitions:
        try:
            client().delete(partition_bell_key(partition))
        except Exception:  # noqa: BLE001 - without Redis every ring publishes anyway
            pass
        ring_partition(partition, force=True)


from . import heartbeat  # noqa: E402,F401  - registers the worker heartbeat signals
