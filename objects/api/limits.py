"""Bounds on the ingress's long waits: how many attaches may wait at once in a web process's threads and on
its event loop; beyond them an attach is answered 503 with `Retry-After` instead of taking a thread (or a
Redis connection) for up to OBJECTS_CALL_TIMEOUT."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from rest_framework import exceptions

from .. import conf

LOOP_WAITS = 100  # attaches waiting on one process's event loop (each holds a Redis connection meanwhile)


class WaitsBusy(exceptions.APIException):
    """Too many attaches are waiting already; `wait` is the Retry-After in seconds."""

    status_code = 503

    def __init__(self) -> None:
        super().__init__("Too many attaches are waiting in this web process; retry shortly.")
        self.wait = 1


_lock = threading.Lock()
_thread_waits: threading.BoundedSemaphore | None = None


def thread_waits_limit() -> int:
    """Attaches that may wait at once in a process's threads: a quarter of OBJECTS_WEB_THREADS (at least one),
    so that waiting clients never take the threads the shop, the admin and /healthz are answered on."""
    return max(1, conf.get("OBJECTS_WEB_THREADS") // 4)


@contextlib.contextmanager
def thread_wait() -> Iterator[None]:
    """Hold one of the threads' attach places while the block waits; WaitsBusy (503) when none is free."""
    global _thread_waits
    if _thread_waits is None:
        with _lock:
            if _thread_waits is None:
                _thread_waits = threading.BoundedSemaphore(thread_waits_limit())
    if not _thread_waits.acquire(blocking=False):
        raise WaitsBusy
    try:
        yield
    finally:
        _thread_waits.release()


class LoopWaits:
    """The event loop's count of waiting attaches (the loop is one thread: no lock)."""

    def __init__(self, limit: int = LOOP_WAITS) -> None:
        self.limit = limit
        self.waiting = 0

    @contextlib.contextmanager
    def place(self) -> Iterator[None]:
        if self.waiting >= self.limit:
            raise WaitsBusy
        self.waiting += 1
        try:
            yield
        finally:
            self.waiting -= 1
