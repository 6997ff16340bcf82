"""The Celery queue list for a worker that serves every partition: objects.p0..p<N-1> and the sweeper queue."""

from __future__ import annotations

import os


def queues(env: dict[str, str] | None = None) -> str:
    count = int((env or os.environ).get("OBJECTS_PARTITIONS", "8"))
    return ",".join([*(f"objects.p{n}" for n in range(count)), "objects.sweeper"])
