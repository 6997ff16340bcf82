"""The event loop's PostgreSQL connections are a bounded pool (objects/asgi.py, `Postgres`): a burst of
concurrent token calls over real HTTP never opens more than OBJECTS_WEB_DB_POOL_SIZE of them, and a request
that waits longer than OBJECTS_WEB_DB_POOL_TIMEOUT for one gets the ingress's 503 with Retry-After, never a
500."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psycopg
import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from stack import free_port, wait_port, web_command

from tests.support import ROOT, _test_database_url, reap

pytestmark = pytest.mark.workers
WEB_NAME = "objects-test-web"  # the server's other sessions: its threads' Django connections
LOOP_NAME = f"{WEB_NAME}-loop"  # its event loop's (objects.loop.postgres.loop_name): not the session's own web server's


class Server:
    """One uvicorn process (one event loop) serving the project with the given settings."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log = open(Path(os.environ.get("DVO_TEST_TMP", "/tmp")) / "web-loop-pool.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            web_command("127.0.0.1", self.port, workers=1),
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": f"{_test_database_url()}?application_name={WEB_NAME}", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_port(self.port, what="web server")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            reap(self.proc, timeout=5)


@pytest.fixture
def serve(live) -> Iterator:
    servers: list[Server] = []

    def start(**env: str) -> Server:
        servers.append(Server(env))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


class Backends:
    """Samples pg_stat_activity every few milliseconds while a burst runs: the most sessions of the server's event
    loop and of the whole server (by their application_name), seen at once."""

    def __init__(self) -> None:
        self.most_loop = 0
        self.most_web = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def _counts(self, cursor: psycopg.Cursor) -> tuple[int, int]:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE application_name = %s), count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name IN (%s, %s)",
            [LOOP_NAME, LOOP_NAME, WEB_NAME],
        )
        loop, web = cursor.fetchone()
        return loop, web

    def _sample(self) -> None:
        with psycopg.connect(_test_database_url(), autocommit=True) as conn, conn.cursor() as cursor:
            while not self._stop.is_set():
                loop, web = self._counts(cursor)
                self.most_loop, self.most_web = max(self.most_loop, loop), max(self.most_web, web)
                time.sleep(0.002)

    def __enter__(self) -> Backends:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def burst(url: str, token: str, requests: list[tuple[str, dict]]) -> list[tuple[int, dict | None, dict]]:
    """All `requests` (path, body) at once over HTTP; each answer's status, JSON body and headers."""

    async def run() -> list[tuple[int, dict | None, dict]]:
        connector = aiohttp.TCPConnector(limit=0)
        headers = {"Authorization": f"Token {token}"}
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:

            async def one(path: str, body: dict) -> tuple[int, dict | None, dict]:
                async with session.post(f"{url}/ingress/{path}", json=body, headers=headers) as response:
                    text = await response.read()
                    kind = response.headers.get("Content-Type", "")
                    data = await response.json() if "json" in kind and text else None
                    return response.status, data, dict(response.headers)

            return await asyncio.gather(*(one(path, body) for path, body in requests))

    return asyncio.run(run())


def mixed(count: int) -> list[tuple[str, dict]]:
    """Shared calls (each a statement on the loop's connection of its own), exclusive calls and sends."""
    kinds = [
        lambda n: (f"Recorder/pool-{n % 20}/items", {}),
        lambda n: (f"Recorder/pool-{n % 20}/append", {"value": n}),
        lambda n: (f"Recorder/pool-{n % 20}/append/send", {"value": n}),
    ]
    return [kinds[n % 3](n) for n in range(count)]


@pytest.fixture
def token(live) -> str:
    return Token.objects.create(user=User.objects.create_user("pooled")).key


def warm(url: str, token: str) -> None:
    """The token cached by the server (its first call is answered by the threads) and the keys' rows made. A
    tiny pool timeout may refuse a warm-up call on a loaded machine (503, nothing accepted): it is sent again."""
    for n in range(20):
        for _ in range(50):
            status, _, _ = burst(url, token, [(f"Recorder/pool-{n}/append", {"value": -1})])[0]
            if status != 503:
                break
            time.sleep(0.05)
        assert status == 200, status


def test_a_burst_never_opens_more_loop_connections_than_the_pool_holds(serve, token):
    server = serve(OBJECTS_WEB_DB_POOL_SIZE="4", OBJECTS_WEB_THREADS="4")
    warm(server.url, token)
    with Backends() as seen:
        answers = burst(server.url, token, mixed(300))
    statuses = sorted({status for status, _, _ in answers})
    assert set(statuses) <= {200, 202, 503}, statuses
    assert 1 <= seen.most_loop <= 4, seen.most_loop
    # and nothing else in the server opened sessions in their place: the pool, the 4 threads that answer what the
    # loop does not, and asyncio's default threads (a call's wait reads the database there when it must)
    assert seen.most_web <= 4 + 4 + min(32, (os.cpu_count() or 1) + 4), seen.most_web
    for status, body, headers in answers:
        if status == 503:
            assert body is not None and body["source"] == "ingress" and body["code"] == 503
            assert headers.get("Retry-After")
    assert sum(status != 503 for status, _, _ in answers) >= 200  # the pool queued them: most went through


def test_a_request_that_waits_past_the_pool_timeout_gets_503_with_retry_after(serve, token):
    server = serve(OBJECTS_WEB_DB_POOL_SIZE="1", OBJECTS_WEB_DB_POOL_TIMEOUT="0.02", OBJECTS_WEB_THREADS="4")
    warm(server.url, token)
    with Backends() as seen:
        answers = burst(server.url, token, [(f"Recorder/pool-{n % 20}/items", {}) for n in range(300)])
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 503}, sorted(set(statuses))
    assert statuses.count(503) > 0 and statuses.count(200) > 0
    assert seen.most_loop == 1
    refused = [(body, headers) for status, body, headers in answers if status == 503]
    for body, headers in refused:
        assert body == {
            "code": 503,
            "message": "All 1 of this web process's database connections stayed busy for 0.02 s; retry shortly.",
            "source": "ingress",
        }
        assert headers["Retry-After"] == "1"
        assert headers["x-restate-error-source"] == "ingress"


def test_the_loops_redis_connections_are_bounded_and_calls_wait_for_one(serve, token, redis_client):
    """Calls waiting for their outcome each hold a Redis connection while they block on their done signal: beyond
    OBJECTS_WEB_REDIS_POOL_SIZE they wait for one (before, redis-py refused with "Too many connections")."""
    server = serve(OBJECTS_WEB_REDIS_POOL_SIZE="8", OBJECTS_WEB_THREADS="4")
    warm(server.url, token)
    most, done = 0, threading.Event()

    def sample() -> None:
        nonlocal most
        while not done.is_set():
            named = [c for c in redis_client.client_list() if c.get("name") == LOOP_NAME]
            most = max(most, len(named))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        answers = burst(server.url, token, [(f"Recorder/pool-{n % 20}/append", {"value": n}) for n in range(200)])
    finally:
        done.set()
        sampler.join(10)
    assert [status for status, _, _ in answers] == [200] * 200
    assert 1 <= most <= 8, most
