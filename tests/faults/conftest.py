"""Fault-suite fixtures: the load factory (tests/faults/model.py), quiet workers before the flush, and restart
helpers for Redis and PostgreSQL (a restarted service is stopped at exit)."""

from __future__ import annotations

import atexit
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.faults.model import Load
from tests.support import settle


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
    settle(redis_client, timeout=20.0, quiet=1.0)
