"""Celery tasks: the per-key doorbell (`objects.drain`) and the periodic sweeper (`objects.sweep`)."""

from __future__ import annotations

import logging

from celery import shared_task

from .routing import partition_of, queue_name

log = logging.getLogger("objects.tasks")
SWEEP_QUEUE = "objects.sweeper"


BELL_PREFIX = "objects:bell:"
BELL_TTL = 30  # seconds; a crashed drain's counter expires, and the sweeper rings with force=True anyway

# Drop the key's doorbell counter only if no ring counted since the drain read it; otherwise return the new
# count, and the drain goes round again (an invocation accepted during the drain is never left behind).
_RELEASE = """
local now = redis.call('GET', KEYS[1])
if now == ARGV[1] or (not now and ARGV[1] == '') then
    redis.call('DEL', KEYS[1])
    return false
end
return now or ''
"""


_release_script = None


def bell_key(type_name: str, key: str) -> str:
    return f"{BELL_PREFIX}{type_name}\x00{key}"


@shared_task(name="objects.drain", ignore_result=True, acks_late=True)
def drain(type_name: str, key: str, busy: int = 0) -> int:
    """Doorbell: run the key's inbox. Carries no invocation, so duplicates and losses are harmless.

    Every ring counts on a per-key counter in Redis; only the ring that takes it from 0 to 1 publishes a
    Celery message (one message per burst, not per call). The drain reads the counter before it runs the
    inbox and, when the inbox is done, deletes it only if no ring counted meanwhile; otherwise it runs the
    inbox again. A ring is counted after its invocation committed, so an unchanged counter proves the
    drain's last inbox read saw every invocation rung for. When another transaction holds the key's row,
    the drain comes back shortly with growing pauses instead of dropping the work.
    """
    from .inbox import DrainResult, drain_key, has_runnable

    bell = bell_key(type_name, key)
    seen = _bell_read(bell)
    total = 0
    while True:
        ran, result = drain_key(type_name, key)
        total += ran
        if result == DrainResult.BUSY:
            ring(type_name, key, countdown=min(0.02 * 2**busy, 1.0), force=True, busy=busy + 1)
            return total
        if result == DrainResult.BLOCKED:  # a timed doorbell is set for the head's retry
            _bell_drop(bell)
            return total
        if seen is None:  # Redis was unreachable when this pass began: the inbox itself says whether to go on
            _bell_drop(bell)
            if not has_runnable(type_name, key):
                return total
            seen = _bell_read(bell)
            continue
        seen = _bell_release(bell, seen)
        if seen is None:
            return total


@shared_task(name="objects.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    from .sweeper import sweep as run_sweep

    return run_sweep()


def _bell_read(bell: str) -> str | None:
    """The counter's value as text ('' when absent), or None when Redis is unreachable."""
    from .notify import client

    try:
        value = client().get(bell)
    except Exception:  # noqa: BLE001 - Redis down: every ring publishes; one pass, then stop
        return None
    return "" if value is None else value.decode() if isinstance(value, bytes) else str(value)


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


def _bell_drop(bell: str) -> None:
    from .notify import client

    try:
        client().delete(bell)
    except Exception:  # noqa: BLE001 - without Redis every ring publishes; nothing depends on the counter
        pass


def _bell_count(type_name: str, key: str) -> bool:
    """Count a ring; True when it is the first since the last drain finished (so it must publish)."""
    from .notify import client

    bell = bell_key(type_name, key)
    try:
        with client().pipeline(transaction=True) as pipe:
            pipe.incr(bell)
            pipe.expire(bell, BELL_TTL)
            count, _ = pipe.execute()
    except Exception:  # noqa: BLE001 - Redis down: ring anyway (a duplicate drain is harmless)
        return True
    return int(count) == 1


def ring(
    type_name: str,
    key: str,
    *,
    countdown: float | None = None,
    partition: int | None = None,
    force: bool = False,
    busy: int = 0,
) -> bool:
    """Publish the doorbell for a key to its partition's queue. Never raises: the sweeper covers losses.

    Unless `force` or timed (`countdown`), a doorbell is published only when no drain of the key is
    already pending or running (the per-key counter; see `drain`).
    """
    if not force and countdown is None and not _bell_count(type_name, key):
        return True
    partition = partition_of(type_name, key) if partition is None else partition
    try:
        drain.apply_async(args=[type_name, key, busy], queue=queue_name(partition), countdown=countdown, retry=False)
    except Exception as exc:  # noqa: BLE001 - the invocation is committed; a lost doorbell is swept later
        log.warning("doorbell for %s/%s not delivered (%s); the sweeper will re-dispatch it", type_name, key, exc)
        return False
    return True


from . import heartbeat  # noqa: E402,F401  - registers the worker heartbeat signals
