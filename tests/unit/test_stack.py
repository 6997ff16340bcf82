"""scripts/stack.py stops the processes that use the servers before the servers (make run, make test, make
bench): a worker's warm shutdown still reaches Redis and PostgreSQL to acknowledge and close."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from stack import Stack  # noqa: E402

from tests.support import wait_for  # noqa: E402

# A client that, when told to stop, takes a moment (as a worker finishing its task does) and then needs Redis
CLIENT = """
import signal, sys, time
import redis

def stop(signum, frame):
    time.sleep(0.5)
    try:
        redis.Redis.from_url(sys.argv[1], socket_timeout=2).set("objects:test:stopped", "cleanly")
        open(sys.argv[2], "w").write("reached redis")
    except Exception as exc:
        open(sys.argv[2], "w").write(f"{type(exc).__name__}: {exc}")
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
open(sys.argv[2] + ".ready", "w").write("")
while True:
    time.sleep(0.05)
"""


def test_the_servers_outlive_the_processes_that_use_them(tmp_path):
    stack = Stack()
    outcome = tmp_path / "outcome"
    try:
        url = stack.start_redis()
        stack.spawn("worker", [sys.executable, "-c", CLIENT, url, str(outcome)])
        wait_for(Path(str(outcome) + ".ready").exists)
    finally:
        stack.stop()
    assert outcome.read_text() == "reached redis"
    assert not stack.procs


def test_a_process_that_ignores_its_stop_signal_is_killed_and_the_servers_still_stop(tmp_path):
    stack = Stack()
    ready = tmp_path / "ready"
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"open({str(ready)!r}, 'w'); time.sleep(600)"
    )
    try:
        stack.start_redis()
        stubborn = stack.spawn("worker", [sys.executable, "-c", script])
        wait_for(ready.exists)
        redis = next(proc for name, proc in stack.procs if name == "redis")
    finally:
        stack.stop()
    assert stubborn.poll() is not None and redis.poll() is not None
