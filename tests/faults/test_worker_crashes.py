"""Invariant 1 under load: SIGKILLed workers lose no accepted invocation and apply none twice."""

from __future__ import annotations

import os
import random
import time

import pytest
from django.db import connection

from tests.faults.model import Sweeper, check_invariants, settle

pytestmark = pytest.mark.workers


def _local_ports(pid: int) -> list[int]:
    """TCP ports of the sockets process `pid` holds (from /proc: no extra dependency)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _worker_transactions(pid: int) -> int:
    """How many of the worker's database sessions are inside a transaction (a key's inbox mid-run)."""
    ports = _local_ports(pid)
    if not ports:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY(%s) AND xact_start IS NOT NULL", [ports]
        )
        return cursor.fetchone()[0]


def _wait_ready(live, index: int, timeout: float = 60.0) -> None:
    """Until worker `index` sends heartbeats (it consumes its queues)."""
    from objects.worker.heartbeat import live_workers

    deadline = time.monotonic() + timeout
    while live.names[index] not in live_workers():
        assert time.monotonic() < deadline, f"worker {index} did not start within {timeout}s"
        time.sleep(0.1)


def test_ten_sigkills_under_load_lose_nothing_and_apply_nothing_twice(live, load_factory, fast_redispatch):
    rng = random.Random(10)
    load = load_factory(prefix="crash", keys=50, threads=10, call_share=0.3, seed=10)
    kills = []
    with Sweeper(interval=1.0) as sweeper:
        load.start()
        for n in range(10):
            index = n % 2  # the other worker keeps serving while this one restarts
            _wait_ready(live, index)
            time.sleep(rng.uniform(0.2, 1.5))  # a random moment of its work
            in_tx = _worker_transactions(live.procs[index].pid)
            live.kill(index)
            live.start_one(index)
            kills.append((index, in_tx))
        deadline = time.monotonic() + 20
        while sum(a.accepted for a in load.attempts) < 300 and time.monotonic() < deadline:
            time.sleep(0.2)
        load.stop()
        settle_seconds = settle("crash")
    figures = check_invariants(load)
    live.wait_ready()
    print(
        f"\nworker crashes: {len(kills)} SIGKILLs (worker, its open transactions at the kill): {kills}; "
        f"load {load.stopped - load.started:.1f}s at {load.rate():.0f} accepted/s; {figures}; "
        f"settled in {settle_seconds:.1f}s; sweeper runs {sweeper.runs}, doorbells re-rung {sweeper.redispatched}"
    )
    assert figures["accepted"] >= 100, "the load was too small to say anything"
    assert sum(in_tx for _, in_tx in kills) > 0, "no kill hit a worker in the middle of a transaction"
