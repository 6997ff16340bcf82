"""Worker heartbeats in Redis: each worker process rewrites its key every few seconds, so liveness can be
read without Celery's broadcast channel (which a Redis FLUSHALL silently breaks)."""

from __future__ import annotations

import os
import socket
import threading
import time

from celery.signals import worker_ready, worker_shutdown

from .. import timeouts  # noqa: F401 - registers the worker's session timeouts (worker_init)
from ..signals import notify
from ..signals.keys import WORKER_PREFIX

INTERVAL = 2.0
TTL = 6
PREFIX = WORKER_PREFIX
_stop = threading.Event()


def _beat(name: str) -> None:
    while not _stop.is_set():
        try:
            notify.client().set(PREFIX + name, str(time.time()), ex=TTL)
        except Exception:  # noqa: BLE001 - Redis may be down; keep trying
            pass
        _stop.wait(INTERVAL)


@worker_ready.connect
def _start(sender: object = None, **kwargs: object) -> None:
    name = getattr(sender, "hostname", None) or f"{socket.gethostname()}:{os.getpid()}"
    threading.Thread(target=_beat, args=(name,), name="objects-heartbeat", daemon=True).start()


@worker_shutdown.connect
def _shutdown(**kwargs: object) -> None:
    _stop.set()


def live_workers() -> list[str]:
    return sorted(k.decode().removeprefix(PREFIX) for k in notify.client().scan_iter(match=PREFIX + "*", count=1000))
