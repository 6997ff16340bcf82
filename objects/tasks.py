"""Celery tasks: the per-key doorbell (`objects.drain`) and the periodic sweeper (`objects.sweep`)."""

from __future__ import annotations

import logging

from celery import shared_task

from .routing import partition_of, queue_name

log = logging.getLogger("objects.tasks")
SWEEP_QUEUE = "objects.sweeper"


@shared_task(name="objects.drain", ignore_result=True, acks_late=True)
def drain(type_name: str, key: str) -> int:
    """Doorbell: run the key's inbox. Carries no invocation, so duplicates and losses are harmless."""
    from .runtime import drain_key

    return drain_key(type_name, key)


@shared_task(name="objects.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    from .sweeper import sweep as run_sweep

    return run_sweep()


def ring(type_name: str, key: str, *, countdown: float | None = None, partition: int | None = None) -> bool:
    """Publish the doorbell for a key to its partition's queue. Never raises: the sweeper covers losses."""
    partition = partition_of(type_name, key) if partition is None else partition
    try:
        drain.apply_async(args=[type_name, key], queue=queue_name(partition), countdown=countdown, retry=False)
    except Exception as exc:  # noqa: BLE001 - the invocation is committed; a lost doorbell is swept later
        log.warning("doorbell for %s/%s not delivered (%s); the sweeper will re-dispatch it", type_name, key, exc)
        return False
    return True


from . import heartbeat  # noqa: E402,F401  - registers the worker heartbeat signals
