"""The doorbell protocol in Redis, and a caller's wait for its invocation's done signal.

A ring counts on its partition's counter (a Lua script, one round trip); only the ring that takes it from 0
publishes a drain (a Celery message, by task name: the tasks live in objects/tasks.py, above this), later
ones wake the drain that holds the counter. The drain holds the counters while it runs and drops them only
if no ring counted meanwhile, so an invocation accepted during a drain is never left behind
(docs/decisions/0002). A caller's first wait rings in the same round trip (`ring_and_wait`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import redis
from celery import current_app
from django.db import InterfaceError, OperationalError, connection

from ..models import DONE_STATUSES, Invocation
from ..routing import DRAIN_PARTITION_TASK, DRAIN_TASK, partition_of, queue_name
from . import notify
from .keys import PARTITION_BELL_PREFIX, PUBLISHED_PREFIX, WAKE_PREFIX
from .notify import SIGNAL_TTL, apply_outcome, call_timeout, done_key, fresh_invocation

log = logging.getLogger("objects.doorbell")

# A partition's counter outlives a dead drain (SIGKILL: Celery redelivers its message only after the
# visibility timeout) by at most this long; a live drain renews it every pass. Meanwhile the sweeper's
# per-key doorbells keep the partition's keys running.
PARTITION_BELL_TTL = 10


def partition_bell_key(partition: int) -> str:
    return f"{PARTITION_BELL_PREFIX}{partition}"


def partition_wake_key(partition: int) -> str:
    return f"{WAKE_PREFIX}{partition}"


def partition_published_key(partition: int) -> str:
    return f"{PUBLISHED_PREFIX}{partition}"


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
    if name not in _scripts:
        _scripts[name] = notify.client().register_script(text)
    return _scripts[name]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def bells_hold(partitions: list[int], delete_hints: list[str] | None = None) -> list[str] | None:
    """Count and hold the partitions' counters before a pass; their values, or None when Redis is unreachable.
    The partitions' wake lists (and `delete_hints`) are cleared in the same round trip."""
    bells = [partition_bell_key(p) for p in partitions]
    hints = [partition_wake_key(p) for p in partitions] + (delete_hints or [])
    try:
        counts = _script("hold", _HOLD)(keys=bells + hints, args=[PARTITION_BELL_TTL, len(bells)])
    except Exception:  # noqa: BLE001 - Redis down: every ring publishes; one pass, then stop
        return None
    return [_text(count) for count in counts]


def bells_renew(partitions: list[int]) -> None:
    try:
        with notify.client().pipeline(transaction=False) as pipe:
            for partition in partitions:
                pipe.expire(partition_bell_key(partition), PARTITION_BELL_TTL)
            pipe.execute()
    except Exception:  # noqa: BLE001 - an expired counter only lets one more drain start
        pass


def bells_release(partitions: list[int], seen: list[str] | None) -> list[str] | None:
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


# The commands of a ring, and of a ring with a caller's first wait, sent by this module and on the event loop
# (objects/loop/signals.py). EVALSHA, not the script object, which would first ask Redis whether it has the script.
def ring_command(partition: int) -> tuple[Any, ...]:
    """Count a ring of the partition (the reply: the count; 1 means publish a drain)."""
    return ("EVALSHA", ring_script().sha, 3, *bell_keys(partition), PARTITION_BELL_TTL)


def ring_and_wait_commands(partition: int, done_key: str, timeout: float, signal_ttl: int) -> list[tuple[Any, ...]]:
    """Ring the partition and block on `done_key` (a caller's completion list) for up to `timeout` seconds: the
    second reply is BLPOP's, RING_MARK when the caller must publish the drain (`is_ring_mark`)."""
    bell = ("EVALSHA", ring_script().sha, 4, *bell_keys(partition), done_key, PARTITION_BELL_TTL, RING_MARK, signal_ttl)
    return [bell, ("BLPOP", done_key, timeout)]


def is_ring_mark(signal: Any) -> bool:
    """Whether a BLPOP reply on a completion list is RING_MARK (publish the drain), not an outcome."""
    return signal is not None and signal[1] in (RING_MARK, RING_MARK.encode())


def _partition_bell_count(partition: int) -> bool:
    """Count a ring of the partition (one round trip); True when it is the first since its last drain
    finished, so it must publish."""
    try:
        try:
            (count,) = notify.pipelined([ring_command(partition)])
        except redis.exceptions.NoScriptError:  # Redis restarted: the script object loads it again
            count = ring_script()(keys=bell_keys(partition), args=[PARTITION_BELL_TTL])
    except Exception:  # noqa: BLE001 - Redis down: ring anyway (a duplicate drain is harmless)
        return True
    return int(count) == 1


def hint_published(partition: int) -> None:
    """Tell a drain lingering in the worker that consumes `partition` that a message waits in its queue."""
    key = partition_published_key(partition)
    try:
        with notify.client().pipeline(transaction=False) as pipe:
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
    try:
        return notify.pipelined(ring_and_wait_commands(partition, done_key, timeout, signal_ttl))[1]
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
        send_task(DRAIN_PARTITION_TASK, [partition], queue=queue_name(partition))
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
        send_task(DRAIN_TASK, [type_name, key, busy], queue=queue_name(partition), countdown=countdown)
    except Exception as exc:  # noqa: BLE001 - the invocation is committed; a lost doorbell is swept later
        log.warning("doorbell for %s/%s not delivered (%s); the sweeper will re-dispatch it", type_name, key, exc)
        return False
    hint_published(partition)
    return True


def send_task(name: str, args: list[Any], *, queue: str, countdown: float | None = None) -> None:
    """Publish a message of the app's task `name` to `queue` (raises when the broker refuses it)."""
    current_app.send_task(name, args=args, queue=queue, countdown=countdown, retry=False)


def wait_done(invocation: Invocation, timeout: float, ring: bool = False) -> Invocation:
    """Block until `invocation` is finished and return it fresh from the database. With `ring`, the
    invocation's doorbell has not rung yet: it rings in the same round trip as the first wait
    (`ring_and_wait`)."""
    deadline = time.monotonic() + timeout
    key = done_key(invocation.public_id)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if ring:  # never waited: ring before giving up, the invocation goes on
                ring_partition(invocation.partition)
            raise call_timeout(invocation.public_id, timeout)
        try:
            if ring:
                ring = False
                signal = ring_and_wait(invocation.partition, key, min(remaining, 1.0), SIGNAL_TTL)
            else:
                signal = notify.client().blpop([key], timeout=min(remaining, 1.0))
        except redis.RedisError:
            signal = None
            time.sleep(min(remaining, 0.25))
        if is_ring_mark(signal):
            publish_drain(invocation.partition)  # the ring found no drain of the partition: start one
            continue
        if signal is not None and apply_outcome(invocation, signal[1]):
            return invocation
        try:
            fresh = fresh_invocation(invocation.pk)
        except (OperationalError, InterfaceError) as exc:
            # The database is restarting or unreachable: the invocation is committed and goes on, so keep
            # waiting (on a new connection) until the deadline, then CallTimeout carries its id.
            log.warning("waiting for %s: database unavailable, retrying: %s", invocation.public_id, exc)
            connection.close_if_unusable_or_obsolete()
            time.sleep(min(max(deadline - time.monotonic(), 0), 0.5))
            continue
        if fresh is None or fresh.status in DONE_STATUSES:
            return fresh or invocation
