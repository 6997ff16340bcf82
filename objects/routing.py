"""Routing: which partition (and so which Celery queue) owns a (type, key); the queues' and tasks' names."""

from __future__ import annotations

import zlib

from . import conf


def partition_of(type_name: str, key: str, partitions: int | None = None) -> int:
    """A stable hash of (type, key) modulo the partition count (not Python's randomized hash)."""
    count = partitions or conf.get("OBJECTS_PARTITIONS")
    return zlib.crc32(f"{type_name}\x00{key}".encode()) % count


def queue_name(partition: int) -> str:
    return f"objects.p{partition}"


def all_queues() -> list[str]:
    return [queue_name(p) for p in range(conf.get("OBJECTS_PARTITIONS"))]


# The Celery queues and task names of the app: objects/celery.py routes them, objects/tasks.py defines the
# tasks, objects/signals/doorbell.py publishes them by name.
SWEEP_QUEUE = "objects.sweeper"
DRAIN_TASK = "objects.drain"
DRAIN_PARTITION_TASK = "objects.drain_partition"
SWEEP_TASK = "objects.sweep"
