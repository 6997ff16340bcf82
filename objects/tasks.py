"""The app's Celery tasks, thin entry points over objects/worker.py and objects/sweeper.py: the doorbells
(`objects.drain_partition` for a partition, `objects.drain` for one key) and the sweeper (`objects.sweep`).
objects/signals/doorbell.py publishes them by name; objects/celery.py routes them to their queues.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import worker_ready

from . import heartbeat, sweeper, worker
from .routing import DRAIN_PARTITION_TASK, DRAIN_TASK, SWEEP_TASK

__all__ = ["drain", "drain_partition", "heartbeat", "sweep"]  # heartbeat: its import registers the worker's beat


@shared_task(name=DRAIN_TASK, ignore_result=True, acks_late=True)
def drain(type_name: str, key: str, busy: int = 0) -> int:
    """Per-key doorbell: run one key's inbox now (`worker.key_drain`)."""
    return worker.key_drain(type_name, key, busy)


@shared_task(name=DRAIN_PARTITION_TASK, ignore_result=True, acks_late=True)
def drain_partition(partition: int) -> int:
    """Doorbell of a partition: drain the partitions this worker consumes (`worker.partition_drain`)."""
    return worker.partition_drain(partition)


@shared_task(name=SWEEP_TASK, ignore_result=True)
def sweep() -> dict[str, int]:
    return sweeper.sweep()


@worker_ready.connect
def _worker_ready(sender: Any = None, **kwargs: Any) -> None:
    worker.worker_started(sender)
