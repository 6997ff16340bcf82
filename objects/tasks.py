"""Celery tasks: the per-key doorbell (`objects.drain`) and the periodic sweeper (`objects.sweep`)."""

from __future__ import annotations

import logging

from celery import shared_task

from .routing import partition_of, queue_name

log = logging.getLogger("objects.tasks")
SWEEP_QUEUE = "objects.sweeper"


BELL_PREFIX = "objects:bell:"
BELL_TTL = 30  # seconds; a crashed drain's flag expires, and the sweeper rings with force=True anyway


def bell_key(type_name: str, key: str) -> str:
    return f"{BELL_PREFIX}{type_name}\x00{key}"


@shared_task(name="objects.drain", ignore_result=True, acks_late=True)
def drain(type_name: str, key: str, busy: int = 0) -> int:
    """Doorbell: run the key's inbox. Carries no invocation, so duplicates and losses are harmless.

    While a drain is pending or running, a per-key flag in Redis stops further doorbells for that key
    (one Celery message per burst, not per call). At the end the flag is dropped and the inbox checked once
    more, so an invocation accepted while the flag was up is never left behind. When another transaction
    holds the key's row, the drain comes back shortly with growing pauses instead of dropping the work.
    """
    from .inbox import DrainResult, drain_key, has_runnable
    from .notify import client

    total = 0
    while True:
        ran, result = drain_key(type_name, key)
        total += ran
        if result == DrainResult.BUSY:
            ring(type_name, key, countdown=min(0.02 * 2**busy, 1.0), force=True, busy=busy + 1)
            return total
        try:
            client().delete(bell_key(type_name, key))
        except Exception:  # noqa: BLE001 - without Redis every ring publishes; nothing depends on the flag
            pass
        if result == DrainResult.BLOCKED or not has_runnable(type_name, key) or not _take_bell(type_name, key):
            return total


@shared_task(name="objects.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    from .sweeper import sweep as run_sweep

    return run_sweep()


def _take_bell(type_name: str, key: str) -> bool:
    from .notify import client

    try:
        return bool(client().set(bell_key(type_name, key), 1, nx=True, ex=BELL_TTL))
    except Exception:  # noqa: BLE001 - Redis down: ring anyway (a duplicate drain is harmless)
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
    """Publish the doorbell for a key to its partition's queue. Never raises: the sweeper covers losses.

    Unless `force` or timed (`countdown`), a doorbell is published only when no drain of the key is
    already pending or running (the per-key flag).
    """
    if not force and countdown is None and not _take_bell(type_name, key):
        return True
    partition = partition_of(type_name, key) if partition is None else partition
    try:
        drain.apply_async(args=[type_name, key, busy], queue=queue_name(partition), countdown=countdown, retry=False)
    except Exception as exc:  # noqa: BLE001 - the invocation is committed; a lost doorbell is swept later
        log.warning("doorbell for %s/%s not delivered (%s); the sweeper will re-dispatch it", type_name, key, exc)
        return False
    return True


from . import heartbeat  # noqa: E402,F401  - registers the worker heartbeat signals
