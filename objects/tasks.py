"""Celery tasks: the doorbells (`objects.drain_partition`, `objects.drain`) and the sweeper (`objects.sweep`).

A new invocation rings its partition: one Celery message per burst of calls to the partition, whose drain
runs many keys per transaction (objects/partition.py). Per-key drains remain for what concerns one key:
a timed retry or delayed send, a key whose row was busy, a slow key, the sweeper's re-dispatch.
"""

from __future__ import annotations

import logging
import threading
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
    from django.db import close_old_connections

    from .partition import drain_pass

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
    from .partition import drain_pass

    seen = _bells_hold(partitions, delete_hints=[partition_published_key(partition)])
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
            _bells_renew(partitions)
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
        seen = _bells_release(partitions, seen)
        if seen is None:
            return total
        if overdue:  # rings keep coming: keep the counters, queue the partition again behind the others
            ring_partition(partition, force=True)
            return total


DRAIN_TASK_LIMIT = 1.0  # seconds a drain lingers and goes round before it lets the worker's queue move
WAKE_PREFIX = "objects:wake:"
PUBLISHED_PREFIX = "objects:published:"
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


def partition_wake_key(partition: int) -> str:
    return f"{WAKE_PREFIX}{partition}"


def partition_published_key(partition: int) -> str:
    return f"{PUBLISHED_PREFIX}{partition}"


def _linger(partitions: list[int], seconds: float) -> str | None:
    """Wait for a ring of one of `partitions`: "mine" when one came, None after `seconds`. In a pool without
    spare threads (solo, or one thread) a Celery message published to one of the worker's queues ends the
    wait ("other"): that message waits for this task to end. With spare threads another thread takes it."""
    from .notify import pipelined

    keys = [partition_wake_key(p) for p in partitions]
    if not _spare:
        keys += [partition_published_key(p) for p in [*partitions, *(p for p in _consumed if p not in partitions)]]
    try:
        (got,) = pipelined([("BLPOP", *keys, seconds)])
    except Exception:  # noqa: BLE001 - Redis down: stop lingering, let go of the partitions
        return None
    if got is None:
        return None
    woke = got[0].decode() if isinstance(got[0], bytes) else str(got[0])
    return "mine" if woke.startswith(WAKE_PREFIX) else "other"


@shared_task(name="objects.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    from .sweeper import sweep as run_sweep

    return run_sweep()


# Hold the counters of the drain's partitions: count each (a ring that does not publish, so rings that follow
# count above 1 and only wake the drain), renew their expiry, and clear the wake lists and hints (ARGV[2:])
# that the pass about to run makes stale. Returns the counts.
_HOLD = """
local counts = {}
for i = 1, tonumber(ARGV[2]) do
    counts[i] = tostring(redis.call('INCR', KEYS[i]))
    redis.call('EXPIRE', KEYS[i], ARGV[1])
end
for i = tonumber(ARGV[2]) + 1, #KEYS do
    redis.call('DEL', KEYS[i])
end
return counts
"""
# Drop the counters only if no ring counted on any of them since the drain read them (all or none);
# otherwise return their new values, and the drain goes round again (an invocation accepted during the
# drain is never left behind). An absent counter reads as ''.
_RELEASE = """
local now = {}
local changed = false
for i, key in ipairs(KEYS) do
    now[i] = redis.call('GET', key) or ''
    if now[i] ~= ARGV[i] then
        changed = true
    end
end
if not changed then
    redis.call('DEL', unpack(KEYS))
    return false
end
return now
"""
_scripts: dict[str, Any] = {}


def _script(name: str, text: str) -> Any:
    from .notify import client

    if name not in _scripts:
        _scripts[name] = client().register_script(text)
    return _scripts[name]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bells_hold(partitions: list[int], delete_hints: list[str] | None = None) -> list[str] | None:
    """Count and hold the partitions' counters before a pass; their values, or None when Redis is unreachable.
    The partitions' wake lists (and `delete_hints`) are cleared in the same round trip."""
    bells = [partition_bell_key(p) for p in partitions]
    hints = [partition_wake_key(p) for p in partitions] + (delete_hints or [])
    try:
        counts = _script("hold", _HOLD)(keys=bells + hints, args=[PARTITION_BELL_TTL, len(bells)])
    except Exception:  # noqa: BLE001 - Redis down: every ring publishes; one pass, then stop
        return None
    return [_text(count) for count in counts]


def _bells_renew(partitions: list[int]) -> None:
    from .notify import client

    try:
        with client().pipeline(transaction=False) as pipe:
            for partition in partitions:
                pipe.expire(partition_bell_key(partition), PARTITION_BELL_TTL)
            pipe.execute()
    except Exception:  # noqa: BLE001 - an expired counter only lets one more drain start
        pass


def _bells_release(partitions: list[int], seen: list[str] | None) -> list[str] | None:
    """Delete the counters if they all still read `seen` (None: done); otherwise their new values (drain
    again)."""
    if seen is None:
        return None
    try:
        now = _script("release", _RELEASE)(keys=[partition_bell_key(p) for p in partitions], args=seen)
    except Exception:  # noqa: BLE001 - Redis down: rings publish without the counter, nothing waits on it
        return None
    return None if now is None else [_text(value) for value in now]


# Count a ring of the partition. The counter's expiry is set by the first ring only, so a counter left by a
# dead drain runs out however many rings follow; a live drain renews it. A later ring wakes the drain that
# holds the counter (the partition's wake list); the first one, which publishes a Celery message, tells a
# drain lingering in a worker that consumes the partition to make way (the "published" list). With a fourth
# key, a caller's completion list (`ring_and_wait`), the first ring also pushes RING_MARK in front of it:
# the caller, blocked on that list in the same round trip, then publishes the message.
_RING = """
local count = redis.call('INCR', KEYS[1])
local hint = KEYS[2]
if count == 1 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
    hint = KEYS[3]
    if KEYS[4] then
        redis.call('LPUSH', KEYS[4], ARGV[2])
        redis.call('EXPIRE', KEYS[4], ARGV[3])
    end
end
redis.call('LPUSH', hint, '1')
redis.call('LTRIM', hint, 0, 0)
redis.call('EXPIRE', hint, ARGV[1])
return count
"""
RING_MARK = "ring"  # on a completion list: "publish the partition's drain", never an outcome (those are JSON)


def ring_script() -> Any:
    """The ring script (`_RING`), registered once per process (its SHA1 needs no round trip)."""
    return _script("ring", _RING)


def bell_keys(partition: int) -> list[str]:
    """The ring script's keys for a partition: its counter, its wake list, its "published" hint."""
    return [partition_bell_key(partition), partition_wake_key(partition), partition_published_key(partition)]


def _partition_bell_count(partition: int) -> bool:
    """Count a ring of the partition (one round trip); True when it is the first since its last drain
    finished, so it must publish."""
    import redis

    from .notify import pipelined

    keys = bell_keys(partition)
    script = ring_script()
    try:
        try:
            (count,) = pipelined([("EVALSHA", script.sha, 3, *keys, PARTITION_BELL_TTL)])
        except redis.exceptions.NoScriptError:  # Redis restarted: the script object loads it again
            count = script(keys=keys, args=[PARTITION_BELL_TTL])
    except Exception:  # noqa: BLE001 - Redis down: ring anyway (a duplicate drain is harmless)
        return True
    return int(count) == 1


def _hint_published(partition: int) -> None:
    """Tell a drain lingering in the worker that consumes `partition` that a message waits in its queue."""
    from .notify import client

    key = partition_published_key(partition)
    try:
        with client().pipeline(transaction=False) as pipe:
            pipe.lpush(key, "1")
            pipe.ltrim(key, 0, 0)
            pipe.expire(key, PARTITION_BELL_TTL)
            pipe.execute()
    except Exception:  # noqa: BLE001 - without the hint the drain makes way within DRAIN_TASK_LIMIT
        pass


def ring_and_wait(partition: int, done_key: str, timeout: float, signal_ttl: int) -> Any:
    """Ring the partition and block on `done_key` (a caller's completion list) in one round trip; returns
    BLPOP's reply, which is RING_MARK when the ring must publish (the caller calls `publish_drain`, then
    waits again). When the round trip fails the partition is rung the usual way (`ring_partition`, which
    never raises) and the RedisError raised; when Redis has forgotten the script (a restart), the ring is
    sent alone, which loads it again (None: no signal yet)."""
    import redis

    from .notify import pipelined

    script = ring_script()
    try:
        # EVALSHA, not the script object, which would first ask Redis whether it has the script
        bell = ("EVALSHA", script.sha, 4, *bell_keys(partition), done_key, PARTITION_BELL_TTL, RING_MARK, signal_ttl)
        return pipelined([bell, ("BLPOP", done_key, timeout)])[1]
    except redis.exceptions.NoScriptError:
        pass  # ring_partition's script object loads it again
    except redis.RedisError:
        ring_partition(partition)
        raise
    ring_partition(partition)
    return None


def ring_partition(partition: int, *, force: bool = False) -> bool:
    """Publish the partition's doorbell unless a drain of it is already pending or running (or `force`)."""
    if not force and not _partition_bell_count(partition):
        return True
    return publish_drain(partition)


def publish_drain(partition: int) -> bool:
    """Publish a drain of the partition (a Celery message to its queue); False when the broker refused it."""
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
    _hint_published(partition)
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
    global _consumed, _one_loop, _spare
    _consumed = partitions
    limit = getattr(getattr(getattr(sender, "controller", None), "pool", None), "limit", None)
    _one_loop = True  # this signal runs in the process that runs the tasks (solo, threads; not prefork children)
    _spare = isinstance(limit, int) and limit > 1
    if _spare and not _rescuer:
        _rescuer.append(threading.Thread(target=_rescue_forever, name="objects-rescue", daemon=True))
        _rescuer[0].start()
    from .notify import client

    for partition in partitions:
        try:
            client().delete(partition_bell_key(partition))
        except Exception:  # noqa: BLE001 - without Redis every ring publishes anyway
            pass
        ring_partition(partition, force=True)


from . import heartbeat  # noqa: E402,F401  - registers the worker heartbeat signals
