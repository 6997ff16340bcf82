"""Smoke run of the benchmark load generator: each workload, a few calls, end to end over HTTP, counts exact.

The session's workers do not load the bench app, so this test starts its own OBJECTS_BENCH=1 web server and
Celery worker on the test database, with doorbells and completion signals in a Redis database of their own.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings

from bench.loadgen import WORKLOADS, Target, Workload, run_workload

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from stack import web_command  # noqa: E402

SMOKE = {
    "a": Workload("a", "sequential", calls=5, keys=1, concurrency=1),
    "b": Workload("b", "many keys", calls=24, keys=6, concurrency=4),
    "c": Workload("c", "hot key", calls=12, keys=1, concurrency=4),
    "d": Workload("d", "sends", calls=12, keys=3, concurrency=4, send=True),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bench_redis_url() -> str:
    base = settings.REDIS_URL.rsplit("/", 1)[0]
    return f"{base}/13"


@pytest.fixture
def bench_stack(transactional_db) -> Iterator[str]:
    """An OBJECTS_BENCH=1 web server and solo Celery worker on the test database; yields the ingress URL."""
    from django.db import connection

    db = connection.settings_dict
    redis_url = _bench_redis_url()
    redis.Redis.from_url(redis_url).flushdb()
    env = {
        **os.environ,
        "OBJECTS_BENCH": "1",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": redis_url,
    }
    port = _free_port()
    logdir = Path(os.environ.get("DVO_TEST_TMP", "/tmp"))
    log = open(logdir / "bench-smoke.log", "ab")  # noqa: SIM115
    name = f"benchsmoke-{time.time_ns()}@{socket.gethostname()}"
    from objects.routing import all_queues

    commands = [
        web_command("127.0.0.1", port, workers=1),
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", ",".join(all_queues()), "--pool", "solo"]
        + ["-n", name, "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
    ]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for cmd in commands
    ]
    try:
        _wait_ready(port, redis_url, name)
        yield f"http://127.0.0.1:{port}/{settings.OBJECTS_INGRESS_PREFIX.strip('/')}"
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _wait_ready(port: int, redis_url: str, worker: str, timeout: float = 60.0) -> None:
    from objects.worker.heartbeat import PREFIX

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            web_up = s.connect_ex(("127.0.0.1", port)) == 0
        if web_up and client.exists(PREFIX + worker):
            return
        time.sleep(0.1)
    raise RuntimeError("the bench web server or worker did not start; see bench-smoke.log in the test temp folder")


@pytest.fixture
def bench_token(transactional_db) -> str:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_user(username="bench-smoke", password="not-used-0123")
    return Token.objects.create(user=user).key


def test_every_workload_applies_each_item_exactly_once_through_the_ingress(bench_stack, bench_token):
    target = Target("django", bench_stack, {"Authorization": f"Token {bench_token}"})
    assert set(SMOKE) == set(WORKLOADS)
    for workload in SMOKE.values():
        result = asyncio.run(run_workload(target, workload, run_id="smoke", time_limit=60, poll_limit=60))
        assert result.errors == 0, result.error_samples
        assert result.ok == workload.calls
        assert result.correct, result.check


def test_bench_cart_refuses_anonymous_callers(bench_stack):
    response = httpx.post(f"{bench_stack}/BenchCart/anon/add_item", json={"product_id": "p1"}, timeout=30)
    assert response.status_code in (401, 403)
    assert response.json()["source"] == "ingress"


def test_the_in_process_measure_runs_the_send_path_and_reports_cpu_per_request():
    """bench/inprocess.py: its own PostgreSQL and Redis, token sends through the WSGI application (202), then
    group passes that run exactly the invocations sent before each (it exits 1 otherwise)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    done = subprocess.run(
        [sys.executable, "bench/inprocess.py", "--requests", "20", "--passes", "5", "--rounds", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "round 1: CPU us per request: send " in done.stdout
    assert re.search(r"pass \d+ per invocation", done.stdout), done.stdout[-2000:]
