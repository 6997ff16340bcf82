"""The load model of the fault suite and the soak: client threads that send over many keys, a record of what
each request got (the accepted ones are the model), a background sweeper, and the invariant check."""

from __future__ import annotations

import dataclasses
import json
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
from django.db import connections

import objects
from objects.errors import CallTimeout

TYPE = "Recorder"


@dataclasses.dataclass
class Attempt:
    """One request of the load: what the client saw."""

    key: str
    value: int
    kind: str  # "call" | "send"
    started: float
    ended: float = 0.0
    outcome: str = ""  # "returned" | "sent" | "timeout" | "refused"
    output: Any = None
    invocation_id: str = ""
    error: str = ""

    @property
    def accepted(self) -> bool:
        return self.outcome in ("returned", "sent", "timeout")


class Load:
    """Client threads; each owns a slice of the keys and sends to them one request at a time, so a key's
    values are sent in increasing order and its acceptance order (Invocation.id) must keep that order."""

    def __init__(
        self,
        *,
        prefix: str,
        keys: int = 50,
        threads: int = 10,
        call_share: float = 0.3,
        call_timeout: float = 20.0,
        submit: Callable[[Attempt, float], None] | None = None,
        seed: int = 0,
    ) -> None:
        self.prefix = prefix
        self.keys = [f"{prefix}-{n}" for n in range(keys)]
        self.threads = threads
        self.call_share = call_share
        self.call_timeout = call_timeout
        self.submit = submit or submit_in_process
        self.rng = random.Random(seed)
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool: list[threading.Thread] = []
        self.started = 0.0
        self.stopped = 0.0

    def start(self) -> Load:
        self.started = time.monotonic()
        for index in range(self.threads):
            owned = self.keys[index :: self.threads]
            seed = self.rng.random()
            thread = threading.Thread(target=self._client, args=(owned, seed), name=f"load-{index}", daemon=True)
            thread.start()
            self._pool.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._pool:
            thread.join(timeout=self.call_timeout + 30)
        self.stopped = time.monotonic()

    def _client(self, owned: list[str], seed: float) -> None:
        rng = random.Random(seed)
        counters = dict.fromkeys(owned, 0)
        try:
            while not self._stop.is_set():
                key = rng.choice(owned)
                counters[key] += 1
                kind = "call" if rng.random() < self.call_share else "send"
                attempt = Attempt(key=key, value=counters[key], kind=kind, started=time.monotonic())
                try:
                    self.submit(attempt, self.call_timeout)
                except CallTimeout as exc:
                    attempt.outcome, attempt.invocation_id, attempt.error = "timeout", exc.invocation_id, str(exc)
                except Exception as exc:
                    attempt.outcome, attempt.error = "refused", f"{type(exc).__name__}: {exc}"
                attempt.ended = time.monotonic()
                with self._lock:
                    self.attempts.append(attempt)
                if attempt.outcome == "refused":
                    time.sleep(0.05)  # the service is down: do not spin
        finally:
            connections.close_all()

    # -- figures -------------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for a in self.attempts:
            out[f"{a.kind}_{a.outcome}"] += 1
        out["accepted"] = sum(a.accepted for a in self.attempts)
        return dict(out)

    def in_flight_at(self, moment: float, until: float | None = None) -> list[Attempt]:
        """Calls that were waiting at `moment` (or at any time between `moment` and `until`)."""
        until = moment if until is None else until
        return [a for a in self.attempts if a.kind == "call" and a.started < until and a.ended > moment]

    def rate(self) -> float:
        return sum(a.accepted for a in self.attempts) / max(self.stopped - self.started, 1e-9)


def submit_in_process(attempt: Attempt, timeout: float) -> None:
    """Through objects.call / objects.send, as Django code would."""
    if attempt.kind == "call":
        attempt.output = objects.call(TYPE, attempt.key, "append", {"value": attempt.value}, timeout=timeout)
        attempt.outcome = "returned"
    else:
        attempt.invocation_id = objects.send(TYPE, attempt.key, "append", {"value": attempt.value})
        attempt.outcome = "sent"


class HttpSubmit:
    """The load's requests through the real ingress (the web server), authenticated by a token."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
        self.local = threading.local()
        self.statuses: dict[int, int] = {}
        self.unclear: list[str] = []

    def client(self) -> httpx.Client:
        if not hasattr(self.local, "client"):
            self.local.client = httpx.Client(base_url=self.base_url, headers=self.headers, timeout=90)
        return self.local.client

    def __call__(self, attempt: Attempt, timeout: float) -> None:
        path = f"/ingress/Recorder/{attempt.key}/append" + ("" if attempt.kind == "call" else "/send")
        response = self.client().post(path, content=json.dumps({"value": attempt.value}))
        self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
        body = _json_or_none(response)
        if response.status_code == 200 and attempt.kind == "call":
            attempt.outcome, attempt.output = "returned", body
            attempt.invocation_id = response.headers.get("x-restate-id", "")
        elif response.status_code == 202 and attempt.kind == "send":
            attempt.outcome, attempt.invocation_id = "sent", body["invocationId"]
        elif response.status_code == 504 and body and body.get("invocationId"):
            attempt.outcome, attempt.invocation_id = "timeout", body["invocationId"]
            attempt.error = f"{body['message']} {body['invocationId']}"
        else:
            if response.status_code != 503 or not body or not body.get("message"):
                self.unclear.append(f"{response.status_code} {response.text[:300]}")
            attempt.outcome, attempt.error = "refused", f"{response.status_code} {response.text[:300]}"


def _json_or_none(response: httpx.Response):
    try:
        return response.json()
    except ValueError:
        return None


class Sweeper:
    """Runs objects.worker.sweeper.sweep() every `interval` seconds in a thread (the beat's job in production)."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.runs = 0
        self.errors = 0
        self.redispatched = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sweeper", daemon=True)

    def _loop(self) -> None:
        from objects.worker.sweeper import sweep

        try:
            while not self._stop.wait(self.interval):
                try:
                    self.redispatched += sweep()["redispatched"]
                    self.runs += 1
                except Exception:
                    self.errors += 1
                    connections.close_all()
        finally:
            connections.close_all()

    def __enter__(self) -> Sweeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def settle(prefix: str, timeout: float = 90.0) -> float:
    """Wait until no invocation of the load is open; returns the seconds it took."""
    from objects.models import OPEN_STATUSES, Invocation
    from objects.worker.sweeper import sweep

    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        open_ = Invocation.objects.filter(type_name=TYPE, key__startswith=f"{prefix}-", status__in=OPEN_STATUSES)
        if not open_.exists():
            return time.monotonic() - started
        try:
            sweep()
        except Exception:
            connections.close_all()
        time.sleep(0.5)
    left = list(open_.values_list("key", "status", "attempts", "error_message")[:10])
    raise AssertionError(f"invocations still open {timeout:.0f}s after the load stopped: {left}; {_broker_view()}")


def _broker_view() -> str:
    """What Redis holds for the doorbells: queue lengths, the unacked set, the exchange binding table."""
    try:
        import redis
        from django.conf import settings

        from objects.routing import all_queues

        r = redis.Redis.from_url(settings.REDIS_URL)
        queues = {q: r.llen(q) for q in [*all_queues(), "objects.sweeper", "ae.undeliver"]}
        bindings = {k.decode(): r.scard(k) for k in r.scan_iter("_kombu.binding.*")}
        return f"redis queues {queues}; unacked {r.zcard('unacked_index')}; bindings {bindings}"
    except Exception as exc:  # noqa: BLE001 - diagnostics only
        return f"redis not readable ({exc})"


def check_invariants(load: Load) -> dict[str, int]:
    """Compare the database with the model of accepted requests; returns figures, raises on any violation."""
    from objects.models import Invocation, Status

    rows = list(
        Invocation.objects.filter(type_name=TYPE, key__startswith=f"{load.prefix}-")
        .order_by("id")
        .values("id", "uid", "key", "handler", "input", "status", "output", "attempts", "error_message")
    )
    by_value: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_value[(row["key"], row["input"]["value"])].append(row)
    attempted = {(a.key, a.value): a for a in load.attempts}

    problems: list[str] = []
    for (key, value), found in by_value.items():
        if len(found) > 1:
            problems.append(f"{key}={value}: accepted {len(found)} times")
        if (key, value) not in attempted:
            problems.append(f"{key}={value}: a row nobody sent")
    not_ok = [r for r in rows if r["status"] != Status.SUCCEEDED]
    problems += [f"{r['key']}={r['input']['value']}: {r['status']} ({r['error_message'][:200]})" for r in not_ok[:20]]

    refused_but_present = 0
    for (key, value), attempt in attempted.items():
        found = by_value.get((key, value), [])
        if attempt.accepted and not found:
            problems.append(f"{key}={value}: accepted ({attempt.outcome} {attempt.invocation_id}) but lost")
        if attempt.invocation_id and found and f"inv_{found[0]['uid'].hex}" != attempt.invocation_id:
            problems.append(f"{key}={value}: client got {attempt.invocation_id}, row is inv_{found[0]['uid'].hex}")
        if not attempt.accepted and found:
            refused_but_present += 1

    state = {key: objects.call(TYPE, key, "items") for key in load.keys}
    for key in load.keys:
        expected = [r["input"]["value"] for r in rows if r["key"] == key]
        if state[key] != expected:
            problems.append(f"{key}: state {state[key]} != accepted in order {expected}")
        if expected != sorted(expected):
            problems.append(f"{key}: acceptance order {expected} differs from the client's send order")

    for attempt in load.attempts:
        if attempt.outcome == "returned":
            position = state[attempt.key].index(attempt.value) + 1 if attempt.value in state[attempt.key] else None
            if attempt.output != position:
                problems.append(f"{attempt.key}={attempt.value}: call returned {attempt.output}, expected {position}")
        if attempt.outcome == "timeout" and (
            not attempt.invocation_id.startswith("inv_") or attempt.invocation_id not in attempt.error
        ):
            problems.append(f"{attempt.key}={attempt.value}: timeout without its invocation id: {attempt.error}")

    assert not problems, f"{len(problems)} invariant violations:\n" + "\n".join(problems[:40])
    return {
        "rows": len(rows),
        "retried_rows": sum(1 for r in rows if r["attempts"]),
        "refused_but_present": refused_but_present,
        **load.counts(),
    }
