"""Fault-suite fixtures: a mixed call/send load over many keys with a model of what was accepted, a
background sweeper, and restart helpers for Redis and PostgreSQL (restarted services are stopped at exit)."""

from __future__ import annotations

import atexit
import dataclasses
import os
import random
import shlex
import signal
import socket
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import pytest
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


class Sweeper:
    """Runs objects.sweeper.sweep() every `interval` seconds in a thread (the beat's job in production)."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.runs = 0
        self.errors = 0
        self.redispatched = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sweeper", daemon=True)

    def _loop(self) -> None:
        from objects.sweeper import sweep

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
    from objects.sweeper import sweep

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
    raise AssertionError(f"invocations still open {timeout:.0f}s after the load stopped: {left}")


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


@pytest.fixture
def fast_redispatch(settings):
    """Lost doorbells are re-rung after 2 s instead of 5 s, so the suite stays short."""
    settings.OBJECTS_REDISPATCH_AFTER = 2.0
    return settings


# -- Redis ---------------------------------------------------------------------------------------------
_restarted: list[subprocess.Popen[bytes]] = []


def _stop_restarted() -> None:
    for proc in _restarted:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


atexit.register(_stop_restarted)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """The test Redis: killed with SIGKILL and started again with the same command line (empty, no save)."""

    def __init__(self, redis_client) -> None:
        self.client = redis_client
        self.port = urlparse(os.environ["REDIS_URL"]).port

    def kill(self) -> list[str]:
        """SIGKILL the server; returns the command line that starts it again (the flags scripts/stack.py uses)."""
        pid = int(self.client.info()["process_id"])
        binary = os.readlink(f"/proc/{pid}/exe")  # the process rewrites its title, so not /proc/<pid>/cmdline
        data = os.path.join(os.environ.get("DVO_TEST_TMP", "/tmp"), "redis")
        os.makedirs(data, exist_ok=True)
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", data, "--loglevel", "warning"]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.02)
        return argv

    def start(self, argv: list[str]) -> None:
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd="/"
        )
        _restarted.append(proc)
        deadline = time.monotonic() + 20
        while not _port_open(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis did not come back on port {self.port}: {shlex.join(argv)}")
            time.sleep(0.02)


@pytest.fixture
def redis_server(redis_client) -> RedisServer:
    return RedisServer(redis_client)


# -- PostgreSQL ----------------------------------------------------------------------------------------
class PostgresServer:
    """The test PostgreSQL, stopped and started with pg_ctl (the restarted server is stopped at exit)."""

    def __init__(self) -> None:
        self.run_as = shlex.split(os.environ.get("DVO_PG_AS", ""))
        self.pg_ctl = os.path.join(os.environ["DVO_PG_BINDIR"], "pg_ctl")
        self.data = os.environ["DVO_PG_DATA"]
        self.log = os.path.join(os.environ.get("DVO_TEST_TMP", "/tmp"), "postgres-restarted.log")

    def _ctl(self, *args: str) -> None:
        subprocess.run([*self.run_as, self.pg_ctl, "-D", self.data, *args], check=True, capture_output=True)

    def stop(self) -> None:
        self._ctl("stop", "-m", "fast", "-w")

    def start(self) -> None:
        self._ctl("start", "-w", "-l", self.log)
        atexit.register(self._stop_at_exit)

    def _stop_at_exit(self) -> None:
        try:
            self._ctl("stop", "-m", "fast", "-w")
        except Exception:
            pass


@pytest.fixture
def postgres_server() -> PostgresServer:
    if not os.environ.get("DVO_PG_DATA"):
        pytest.fail("The PostgreSQL fault test needs scripts/test.py (DVO_PG_DATA is not set).")
    return PostgresServer()


def quiesce(redis_client, timeout: float = 20.0) -> None:
    """Wait until no doorbell is queued and no other session is inside a transaction for a whole second, so
    the test database can be flushed without a deadlock against a worker still draining stray doorbells."""
    from django.db import connection

    from objects.routing import all_queues

    queues = all_queues()
    quiet_since = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            queued = sum(redis_client.llen(name) for name in queues)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
                )
                busy = cursor.fetchone()[0]
        except Exception:
            connections.close_all()
            queued, busy = 1, 1
        if queued or busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= 1.0:
            return
        time.sleep(0.1)


@pytest.fixture
def load_factory(live, redis_client) -> Iterator[Callable[..., Load]]:
    """Makes Load objects; afterwards stops them and lets the workers go quiet before the database is flushed."""
    made: list[Load] = []

    def make(**kwargs: Any) -> Load:
        load = Load(**kwargs)
        made.append(load)
        return load

    yield make
    for load in made:
        if not load._stop.is_set():
            load.stop()
    quiesce(redis_client)
