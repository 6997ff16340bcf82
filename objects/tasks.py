"""The app's Celery tasks, thin entry points over objects/worker/drain.py and objects/worker/sweeper.py: the
doorbells (`objects.drain_partition` for a partition, `objects.drain` for one key) and the sweeper
(`objects.sweep`).
objects/signals/doorbell.py publishes them by name; objects/celery.py routes them to their queues.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from .routing import DRAIN_PARTITION_TASK, DRAIN_TASK, SWEEP_TASK
from .worker import heartbeat, sweeper
from .worker.drain import key_drain, partition_drain, worker_started

__all__ = ["drain", "drain_partition", "heartbeat", "sweep"]  # heartbeat: its import registers the worker's beat


@shared_task(name=DRAIN_TASK, ignore_result=True, acks_late=True)
def drain(type_name: str, key: str, busy: int = 0) -> int:
    """Per-key doorbell: run one key's inbox now (`objects/worker/drain.py`)."""
    return key_drain(type_name, key, busy)


@shared_task(name=DRAIN_PARTITION_TASK, ignore_result=True, acks_late=True)
def drain_partition(partition: int) -> int:
    """Doorbell of a partition: drain the partitions this worker consumes (`objects/worker/drain.py`)."""
    return partition_drain(partition)


@shared_task(name=SWEEP_TASK, ignore_result=True)
def sweep() -> dict[str, int]:
    return sweeper.sweep()


@worker_ready.connect
def _worker_ready(sender: Any = None, **kwargs: Any) -> None:
    worker_started(sender)
