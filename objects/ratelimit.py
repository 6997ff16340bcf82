"""Rate limits every web process shares: fixed-window counters in Redis, one per (limit, who, window).

The ingress counts each request per client address and per user (OBJECTS_RATE_LIMIT_ADDRESS, _USER); the
sign-in forms count failed sign-ins per address and per username (OBJECTS_RATE_LIMIT_LOGIN). On the threads a
request's count is one Redis round trip; on the event loop it costs the request no round trip (LoopCounts).
While Redis is unreachable nothing is limited.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from . import conf
from .api.responses import error_response
from .conf import Rate
from .signals.keys import RATE_PREFIX
from .signals.notify import pipelined

log = logging.getLogger("objects.ratelimit")

PREFIX = RATE_PREFIX
COUNTED = "objects.rate_counted"  # set in the ASGI scope of a request the event loop counted already
Counter = tuple[str, Rate, str]  # (counter name without its window, its limit, whom it counts: for the message)


@dataclass(frozen=True)
class Over:
    """A request over a limit: which, and how many seconds until its window ends."""

    rate: Rate
    retry_after: int
    subject: str
    what: str = "requests"

    @property
    def message(self) -> str:
        return f"Too many {self.what} {self.subject} (the limit is {self.rate}); retry in {self.retry_after} s."


def client_address(address: str | None) -> str:
    """The address a limit counts: the client's IPv4 address, or its IPv6 /64 (a host usually has a whole one)."""
    if not address:
        return "unknown"
    if ":" not in address:
        return address
    try:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address) + "/64"
    except ValueError:
        return address


def ingress_rates() -> tuple[Rate | None, Rate | None]:
    """The ingress's limits: (per client address, per user); None for a limit that is off."""
    return conf.get("OBJECTS_RATE_LIMIT_ADDRESS"), conf.get("OBJECTS_RATE_LIMIT_USER")


def ingress_counters(rates: tuple[Rate | None, Rate | None], address: str, user: Any) -> list[Counter]:
    """The counters one ingress request adds to: its client address, and its user when signed in."""
    per_address, per_user = rates
    counters: list[Counter] = []
    if per_address is not None:
        counters.append((f"{PREFIX}:address:{per_address.seconds}:{address}", per_address, f"from address {address}"))
    if per_user is not None and user is not None and user.is_authenticated:
        counters.append((f"{PREFIX}:user:{per_user.seconds}:{user.pk}", per_user, f"for user {user.get_username()}"))
    return counters


def window_key(name: str, rate: Rate, now: float) -> tuple[str, int]:
    """The counter's Redis key in the window of `now`, and when it may go (a second after the window ends)."""
    window = int(now // rate.seconds)
    return f"{name}:{window}", (window + 1) * rate.seconds + 1


def _over(rate: Rate, subject: str, now: float, what: str = "requests") -> Over:
    retry = max(1, math.ceil((int(now // rate.seconds) + 1) * rate.seconds - now))
    return Over(rate, retry, subject, what)


_warned = 0.0


def _unreachable(exc: Exception) -> None:
    global _warned
    if time.monotonic() - _warned > 60:
        _warned = time.monotonic()
        log.warning("rate limits: Redis unreachable, nothing is limited meanwhile: %s", exc)


def count(counters: list[Counter], *, what: str = "requests") -> Over | None:
    """Add one to each counter in one round trip (INCR and EXPIREAT of the window's key); the first counter
    over its limit, or None. Redis unreachable: None (nothing is limited)."""
    if not counters:
        return None
    now = time.time()
    commands: list[tuple[Any, ...]] = []
    for name, rate, _ in counters:
        key, expiry = window_key(name, rate, now)
        commands += [("INCR", key), ("EXPIREAT", key, expiry)]
    try:
        replies = pipelined(commands)
    except Exception as exc:  # noqa: BLE001 - a limit must not take the site down with Redis
        _unreachable(exc)
        return None
    for index, (_, rate, subject) in enumerate(counters):
        if int(replies[2 * index]) > rate.count:
            return _over(rate, subject, now, what)
    return None


def uncount(counters: list[Counter], counted_at: float) -> None:
    """Take back what `count` added at `counted_at` (a sign-in that succeeded). EXPIREAT again, so a key whose
    window is gone meanwhile is not left behind at -1."""
    commands: list[tuple[Any, ...]] = []
    for name, rate, _ in counters:
        key, expiry = window_key(name, rate, counted_at)
        commands += [("DECR", key), ("EXPIREAT", key, expiry)]
    try:
        pipelined(commands)
    except Exception as exc:  # noqa: BLE001
        _unreachable(exc)


class LoopCounts:
    """The event loop's counting: a request is judged by what this process knows at once (the counts Redis last
    answered plus the requests it counted since), and its increment is sent to Redis afterwards, by a task of
    its own that sends everything counted meanwhile in one round trip (INCRBY and EXPIREAT per counter) at most
    every INTERVAL seconds. So a request waits for no Redis round trip of its own, and under load one round
    trip carries the counts of many requests. The price: other processes' requests are seen one round trip
    late, so a burst spread over several processes may pass a limit by what they admit in that time."""

    INTERVAL = 0.05

    def __init__(self, round_trip: Callable[[list[tuple[Any, ...]]], Awaitable[list[Any]]]) -> None:
        self.round_trip = round_trip
        self.known: dict[str, tuple[int, int]] = {}  # key -> (count Redis answered, when the key goes)
        self.pending: dict[str, int] = {}  # key -> increments not sent yet
        self.sent: dict[str, int] = {}  # key -> increments sent, not answered yet
        self.expiry: dict[str, int] = {}  # key -> its EXPIREAT, for the keys pending
        self.task: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.rates: tuple[Rate | None, Rate | None] | None = None
        self.purged = 0.0

    def admit(self, scope: dict[str, Any], user: Any) -> Over | None:
        """Count an ingress request (its client address from the scope, its user); the first limit it is over,
        or None. The scope is marked, so the threads do not count the request again if it goes there."""
        if self.rates is None:
            self.rates = ingress_rates()
        if self.rates == (None, None):
            return None
        client = scope.get("client")
        scope[COUNTED] = True
        return self.add(ingress_counters(self.rates, client_address(client[0] if client else None), user))

    def add(self, counters: list[Counter]) -> Over | None:
        now = time.time()
        over = None
        for name, rate, subject in counters:
            key, expiry = window_key(name, rate, now)
            pending = self.pending.get(key, 0) + 1
            known = self.known.get(key)
            total = (known[0] if known else 0) + self.sent.get(key, 0) + pending
            self.pending[key], self.expiry[key] = pending, expiry
            if total > rate.count and over is None:
                over = _over(rate, subject, now)
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # another loop's task is not this one's
            self.task, self.loop = None, loop
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._send())
        return over

    async def _send(self) -> None:
        while self.pending:
            batch, self.pending = self.pending, {}
            expiry = {key: self.expiry.pop(key) for key in batch}
            commands: list[tuple[Any, ...]] = []
            for key, n in batch.items():
                self.sent[key] = self.sent.get(key, 0) + n
                commands += [("INCRBY", key, n), ("EXPIREAT", key, expiry[key])]
            try:
                replies: list[Any] | None = await self.round_trip(commands)
            except Exception as exc:  # noqa: BLE001 - nothing is limited while Redis is unreachable
                _unreachable(exc)
                replies = None
            for index, (key, n) in enumerate(batch.items()):
                left = self.sent.pop(key) - n
                if left:
                    self.sent[key] = left
                if replies is not None:
                    self.known[key] = (int(replies[2 * index]), expiry[key])
            self._purge()
            await asyncio.sleep(self.INTERVAL)

    async def close(self) -> None:
        """Stop sending (the loop is closing): what is not sent yet is not counted."""
        task, self.task = self.task, None
        if task is not None and not task.done():
            task.cancel()
            if task.get_loop() is asyncio.get_running_loop():
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _purge(self) -> None:
        now = time.time()
        if now - self.purged >= 1:
            self.purged = now
            self.known = {key: entry for key, entry in self.known.items() if entry[1] > now}


def login_limited(view: Callable[..., Any]) -> Callable[..., Any]:
    """A sign-in view under OBJECTS_RATE_LIMIT_LOGIN: each POST counts as a failed sign-in of its client address
    and of the username it names before the view runs (429 over either limit, and the password is not
    checked), and is taken back when the view signs the user in (it answers with a redirect)."""

    @functools.wraps(view)
    def limited(request: Any, *args: Any, **kwargs: Any) -> Any:
        rate = conf.get("OBJECTS_RATE_LIMIT_LOGIN")
        if rate is None or request.method != "POST":
            return view(request, *args, **kwargs)
        address = client_address(request.META.get("REMOTE_ADDR"))
        username = hashlib.blake2b(request.POST.get("username", "").encode(), digest_size=16).hexdigest()
        counters: list[Counter] = [
            (f"{PREFIX}:login-address:{rate.seconds}:{address}", rate, f"from address {address}"),
            (f"{PREFIX}:login-username:{rate.seconds}:{username}", rate, "for this username"),
        ]
        counted_at = time.time()
        over = count(counters, what="failed sign-ins")
        if over is not None:
            response = error_response(429, over.message, source="server")
            response["Retry-After"] = str(over.retry_after)
            return response
        response = view(request, *args, **kwargs)
        if 300 <= response.status_code < 400:  # signed in
            uncount(counters, counted_at)
        return response

    return limited
