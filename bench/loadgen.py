"""Load generator: the four benchmark workloads over HTTP (asyncio + aiohttp), loopback only, bounded in count and time.

The same code drives this project's ingress and a Restate server's ingress: both take
`POST {base}/BenchCart/{key}/add_item[/send]` with a JSON body and `POST {base}/BenchCart/{key}/get_items`.
Every workload checks its outcome exactly by reading every key back through the shared `get_items`:
each item sent is present once, and (for calls) at the position the call's returned length names.

aiohttp, not httpx: with 32 connections open, httpx's connection pool spent ~6 ms of CPU per call (it
scans every connection on each request and asks anyio for each socket's attributes), about as much as the
system under test; the two systems measured now share the machine with a much lighter client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
REQUEST_TIMEOUT = 60.0
POLL_INTERVAL = 0.05
PROBE_KEYS = 8  # keys read per round while one-way sends are being applied


@dataclasses.dataclass(frozen=True)
class Target:
    """One system under test: its ingress base URL and the headers each request carries."""

    name: str
    base_url: str
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        host = urlsplit(self.base_url).hostname
        if host not in LOOPBACK:
            raise ValueError(f"The load generator only targets loopback addresses, not {host!r}.")

    def url(self, key: str, handler: str, *, send: bool = False) -> str:
        suffix = "/send" if send else ""
        return f"{self.base_url.rstrip('/')}/BenchCart/{quote(key, safe='')}/{handler}{suffix}"


@dataclasses.dataclass(frozen=True)
class Workload:
    """What to run: `calls` requests over `keys` keys, `concurrency` in flight, calls or one-way sends."""

    name: str
    title: str
    calls: int
    keys: int
    concurrency: int
    send: bool = False

    def scaled(self, factor: float) -> Workload:
        calls = max(self.keys, math.ceil(self.calls * factor))
        return dataclasses.replace(self, calls=calls)


WORKLOADS = {
    "a": Workload("a", "sequential, one key", calls=500, keys=1, concurrency=1),
    "b": Workload("b", "many keys (200), concurrency 32", calls=4000, keys=200, concurrency=32),
    "c": Workload("c", "hot key, concurrency 32", calls=1000, keys=1, concurrency=32),
    "d": Workload("d", "one-way sends, 200 keys, concurrency 32", calls=2000, keys=200, concurrency=32, send=True),
}


@dataclasses.dataclass
class Result:
    """The figures of one workload on one system; latencies in milliseconds."""

    workload: str
    system: str
    calls: int
    ok: int
    errors: int
    seconds: float
    ops: float
    p50: float
    p95: float
    p99: float
    correct: bool
    check: str
    error_samples: list[str] = dataclasses.field(default_factory=list)
    cpu_ms_per_call: dict[str, float] = dataclasses.field(default_factory=dict)
    steal_pct: float | None = None  # share of the machine's CPU time the hypervisor took meanwhile (/proc/stat)

    def row(self) -> str:
        mark = "exact" if self.correct else f"WRONG: {self.check}"
        return (
            f"{self.workload} {self.system:<8} calls={self.calls:5d} errors={self.errors:3d} "
            f"{self.seconds:7.2f}s {self.ops:8.1f} ops/s  p50={self.p50:7.2f} p95={self.p95:7.2f} "
            f"p99={self.p99:7.2f} ms  {mark}"
        )


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def item_body(seq: int) -> dict[str, Any]:
    return {"product_id": f"p{seq % 50}", "quantity": 1, "price_cents": 199, "seq": seq}


class HTTPStatusError(Exception):
    """A response outside 2xx where one was required."""


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


CLIENT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, HTTPStatusError)


class Client:
    """A keep-alive HTTP/1.1 client for one target: at most `concurrency + 8` connections, JSON bodies."""

    def __init__(self, target: Target, concurrency: int) -> None:
        connector = aiohttp.TCPConnector(limit=concurrency + 8, limit_per_host=concurrency + 8)
        self.session = aiohttp.ClientSession(
            headers=target.headers,
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
            trust_env=False,
            skip_auto_headers=("Content-Type",),  # a body-less POST carries none (Restate refuses one)
        )

    async def post(self, url: str, body: Any = None) -> Reply:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else None
        async with self.session.post(url, data=data, headers=headers) as response:
            return Reply(response.status, await response.read())

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()


def client_for(target: Target, concurrency: int) -> Client:
    return Client(target, concurrency)


async def _pool(jobs: int, concurrency: int, deadline: float, job: Callable[[int], Awaitable[None]]) -> None:
    """Run job(0..jobs-1) with at most `concurrency` in flight; stop taking new jobs after `deadline`."""
    counter = iter(range(jobs))

    async def worker() -> None:
        for index in counter:
            if time.monotonic() > deadline:
                return
            await job(index)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, jobs))))


async def read_items(client: Client, target: Target, keys: list[str], concurrency: int = 16) -> dict:
    """The `items` list of every key, through the shared handler."""
    found: dict[str, list] = {}

    async def one(index: int) -> None:
        response = await client.post(target.url(keys[index], "get_items"))
        if not 200 <= response.status < 300:
            raise HTTPStatusError(f"get_items of {keys[index]}: HTTP {response.status}: {response.text[:200]}")
        found[keys[index]] = response.json() or []

    await _pool(len(keys), concurrency, math.inf, one)
    return found


async def run_workload(
    target: Target, workload: Workload, *, run_id: str, time_limit: float = 120.0, poll_limit: float = 120.0
) -> Result:
    """Run one workload against one target and check its outcome exactly."""
    keys = [f"{run_id}-{workload.name}-{i}" for i in range(workload.keys)]
    plan = [(keys[i % len(keys)], i) for i in range(workload.calls)]
    latencies: list[float] = []
    returned: dict[int, Any] = {}
    errors: list[str] = []
    async with client_for(target, workload.concurrency) as client:

        async def one(index: int) -> None:
            key, seq = plan[index]
            start = time.perf_counter()
            try:
                response = await client.post(target.url(key, "add_item", send=workload.send), item_body(seq))
            except CLIENT_ERRORS as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                return
            if response.status >= 300:
                errors.append(f"HTTP {response.status}: {response.text[:200]}")
                return
            latencies.append((time.perf_counter() - start) * 1000)
            returned[seq] = None if workload.send else response.json()

        started = time.perf_counter()
        await _pool(workload.calls, workload.concurrency, time.monotonic() + time_limit, one)
        applied_ok = True
        if workload.send:
            applied_ok = await _wait_applied(client, target, plan, returned, poll_limit)
        seconds = time.perf_counter() - started
        items = await read_items(client, target, keys)
    correct, check = _check(workload, plan, returned, items, errors)
    if not applied_ok:
        correct, check = False, f"not all sends were applied within {poll_limit:.0f}s; {check}"
    latencies.sort()
    done = len(returned)
    return Result(
        workload=workload.name,
        system=target.name,
        calls=workload.calls,
        ok=done,
        errors=workload.calls - done,
        seconds=round(seconds, 3),
        ops=round(done / seconds, 1) if seconds else 0.0,
        p50=round(percentile(latencies, 0.50), 2),
        p95=round(percentile(latencies, 0.95), 2),
        p99=round(percentile(latencies, 0.99), 2),
        correct=correct,
        check=check,
        error_samples=errors[:5],
    )


async def _wait_applied(
    client: Client, target: Target, plan: list[tuple[str, int]], accepted: dict[int, Any], limit: float
) -> bool:
    """Wait until every accepted send is applied (or `limit` passes), reading keys with `get_items`.

    Reading all 200 keys every round would be a load of its own, as large as the sends (and larger for the
    slower system, which is polled for more rounds). So a round reads only the few keys that were sent to
    last, which are normally the last to be applied; once those are complete, every key not yet seen complete
    is read, and the wait ends only when all are.
    """
    expected: dict[str, int] = {}
    for key, seq in plan:
        if seq in accepted:
            expected[key] = expected.get(key, 0) + 1
    latest = list(dict.fromkeys(key for key, seq in reversed(plan) if seq in accepted))
    pending = set(expected)
    deadline = time.monotonic() + limit
    while pending and time.monotonic() < deadline:
        probe = [key for key in latest if key in pending][:PROBE_KEYS]
        try:
            items = await read_items(client, target, probe)
            if all(len(items.get(key, [])) >= expected[key] for key in probe):
                items = await read_items(client, target, sorted(pending))
        except CLIENT_ERRORS:
            items = {}
        pending = {key for key in pending if len(items.get(key, [])) < expected[key]}
        if pending:
            await asyncio.sleep(POLL_INTERVAL)
    return not pending


def _check(
    workload: Workload, plan: list[tuple[str, int]], returned: dict[int, Any], items: dict[str, list], errors: list
) -> tuple[bool, str]:
    """Every accepted item is stored exactly once; a call's returned length is its item's position."""
    problems: list[str] = []
    if errors:
        problems.append(f"{len(errors)} request(s) failed")
    by_key: dict[str, list[int]] = {}
    for key, seq in plan:
        by_key.setdefault(key, []).append(seq)
    for key, seqs in by_key.items():
        stored = [item.get("seq") if isinstance(item, dict) else None for item in items.get(key, [])]
        accepted = [s for s in seqs if s in returned]
        if sorted(s for s in stored if s is not None) != sorted(accepted) or None in stored:
            problems.append(f"{key}: stored {len(stored)} item(s), {len(accepted)} accepted")
            continue
        if workload.concurrency == 1 and stored != accepted:
            problems.append(f"{key}: sequential calls stored out of order")
        if not workload.send:
            for seq in accepted:
                position = returned[seq]
                if not isinstance(position, int) or not 1 <= position <= len(stored) or stored[position - 1] != seq:
                    problems.append(f"{key}: call {seq} returned {position!r}, which is not its item's position")
                    break
        if len(problems) > 5:
            break
    if problems:
        return False, "; ".join(problems[:5])
    return True, f"exact: {len(returned)} item(s) over {len(by_key)} key(s), each once, at its returned position"


async def warm_up(target: Target, *, run_id: str, calls: int = 64, concurrency: int = 8) -> None:
    """A few calls so that connections, imports and caches are ready; its figures are discarded."""
    workload = Workload("warm", "warm-up", calls=calls, keys=8, concurrency=concurrency)
    await run_workload(target, workload, run_id=run_id, time_limit=60.0)
