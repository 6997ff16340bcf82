"""The ingress's bounds: how many attaches may wait at once in a web process's threads and on its event loop
(beyond them 503 with `Retry-After`, instead of a thread or a Redis connection held for up to
OBJECTS_CALL_TIMEOUT), and the rate limits of its requests on the threads (objects/ratelimit.py)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from rest_framework import exceptions

from .. import conf
from ..ratelimit import COUNTED, Over, client_address, count, ingress_counters, ingress_rates

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


class RateLimited(exceptions.APIException):
    """Over a rate limit: 429 with `Retry-After`, source "server" (a limit of the site, not a verdict on the
    request)."""

    status_code = 429
    source = "server"

    def __init__(self, over: Over) -> None:
        super().__init__(over.message)
        self.wait = over.retry_after


def ingress_admit(request: Any) -> None:
    """Count an ingress request per client address and per user (`request.user`, evaluated here); RateLimited
    (429) over a limit. Credentials that fail (401, a session's failed CSRF check) count against the address
    alone."""
    try:
        user = request.user
    except exceptions.APIException:
        ingress_count(request, None)
        raise
    ingress_count(request, user)


def ingress_count(request: Any, user: Any) -> None:
    """Count an ingress request per client address and per `user` (None: the address alone); RateLimited (429)
    over a limit. A request the event loop counted already, and then gave to the threads, is not counted again."""
    rates = ingress_rates()
    if rates == (None, None):
        return
    scope = request.META.get("asgi.scope")
    if isinstance(scope, dict) and scope.get(COUNTED):
        return
    over = count(ingress_counters(rates, client_address(request.META.get("REMOTE_ADDR")), user))
    if over is not None:
        raise RateLimited(over)
