"""`make run` (scripts/run.py) from the outside: it brings the whole system up on its zero-setup default (SQLite,
a Redis it starts itself, the worker, the sweeper, the web server), and when `make` is killed outright (SIGKILL:
it cannot pass anything on), every process it started stops.

Runs on a SQLite file and ports of its own, so it touches neither the test database nor the session's Redis.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from stack import free_port

ROOT = Path(__file__).resolve().parents[2]


def answers(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def started_by(redis_port: int) -> list[int]:
    """The processes `make run` started in this test: their environment holds its REDIS_PORT (theirs alone), or,
    for Redis, which rewrites its environment's memory with its process title, the title names the port."""
    marker, title = f"REDIS_PORT={redis_port}".encode(), f"127.0.0.1:{redis_port}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in environ or (title in command and b"server" in command):
            found.append(int(entry.name))
    return found


@pytest.fixture
def make_run(tmp_path):
    port, redis_port = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE", "MAKEFLAGS")
    }
    env.update(PORT=str(port), REDIS_PORT=str(redis_port), DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    log = open(tmp_path / "make-run.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    yield proc, port, redis_port, tmp_path / "make-run.log"
    if proc.poll() is None:
        proc.kill()
    for pid in started_by(redis_port):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    log.close()


def test_make_run_serves_the_system_and_stops_everything_when_make_is_killed(make_run):
    proc, port, redis_port, log = make_run
    deadline = time.monotonic() + 180
    health = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                health = json.loads(response.read())
                if response.status == 200:
                    break
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    assert health is not None and health.get("status") == "ok", (health, log.read_text()[-3000:])
    assert answers(redis_port), "make run did not start its own Redis"
    running = started_by(redis_port)
    assert len(running) >= 5, running  # make, run.py, Redis, the worker, the sweeper, the web server

    os.kill(proc.pid, signal.SIGKILL)  # make alone, and it cannot pass anything on to its recipe
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and started_by(redis_port):
        time.sleep(0.5)
    assert not answers(port), "the web server still answers after make was killed"
    assert not answers(redis_port), "make run's Redis still answers after make was killed"
    left = started_by(redis_port)
    assert not left, f"processes make run started are still running: {left}"
    assert "stopping" in log.read_text()
