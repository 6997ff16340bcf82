"""Invariant 9, waiting holds no worker: ctx.sleep and awakeables suspend the invocation, which keeps its key,
replays its journal when it resumes, and commits its state once (real workers, PostgreSQL and SQLite)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import objects
from objects.models import JournalEntry, Status
from objects.services import invocation_cancel, invocation_get, invocation_kill
from tests.faults.model import Sweeper
from tests.support import Workers, wait_for
from tests.support import threaded_call as _call

pytestmark = pytest.mark.workers
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fast_redispatch(settings):
    """The sweeper re-rings a lost doorbell after 1 s instead of 5 s."""
    settings.OBJECTS_REDISPATCH_AFTER = 1.0
    return settings


def _status(invocation_id: str) -> str:
    return invocation_get(invocation_id).status


def _published_id(redis_client, key: str, timeout: float = 30.0) -> str:
    got = redis_client.blpop([f"waiter:ids:{key}"], timeout=timeout)
    assert got is not None, "the handler did not publish its awakeable id"
    return got[1].decode()


def test_a_sleep_suspends_then_resumes_with_its_steps_state_and_sends_applied_once(live, redis_client):
    started = time.monotonic()
    invocation_id = objects.send("Waiter", "nap1", "nap", {"seconds": 2})
    wait_for(lambda: _status(invocation_id) == Status.SUSPENDED)
    invocation = invocation_get(invocation_id)
    assert invocation.not_before is not None
    assert objects.call("Waiter", "nap1", "peek") == {}  # the write before the sleep is not committed
    wait_for(lambda: _status(invocation_id) == Status.SUCCEEDED, timeout=20)
    assert time.monotonic() - started >= 2.0
    invocation = invocation_get(invocation_id)
    assert invocation.output == {"before": 1, "after": 1, "naps": 1}
    assert int(redis_client.get("waiter:before:nap1")) == 1  # the step before the sleep ran once
    assert objects.call("Waiter", "nap1", "peek") == {"naps": 1}  # the state write applied once
    wait_for(lambda: objects.call("Recorder", "nap-nap1", "items") == [1])  # the send made once
    kinds = list(JournalEntry.objects.filter(invocation=invocation).order_by("index").values_list("kind", "name"))
    assert kinds == [("run", "before"), ("sleep", "sleep"), ("run", "after")]


def test_a_waiting_invocation_frees_its_worker_fifty_sleeps_take_about_one_sleep(live):
    """Two workers of 4 threads: 50 sleeps of 2 s on 50 keys would take 25 s if each held a thread."""
    started = time.monotonic()
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda i: _call("BenchAwait", f"s{i}", "sleep", {"ms": 2000}, timeout=60), range(50)))
    elapsed = time.monotonic() - started
    assert results == [{"slept_ms": 2000}] * 50
    assert 2.0 <= elapsed < 10, f"50 sleeps of 2 s took {elapsed:.1f}s"


def test_a_sleep_outlives_sigkill_of_both_workers(live, fast_redispatch):
    started = time.monotonic()
    invocation_id = objects.send("Waiter", "nap-kill", "nap", {"seconds": 2})
    wait_for(lambda: _status(invocation_id) == Status.SUSPENDED)
    for index in range(len(live.procs)):
        live.kill(index)
    for index in range(len(live.procs)):
        live.start_one(index)
    live.wait_ready()
    with Sweeper(interval=0.5):  # the beat's job: a timed doorbell held by a killed worker is lost
        wait_for(lambda: _status(invocation_id) == Status.SUCCEEDED, timeout=30)
    assert time.monotonic() - started >= 2.0
    assert invocation_get(invocation_id).output == {"before": 1, "after": 1, "naps": 1}


def test_the_key_stays_held_later_invocations_wait_while_shared_reads_answer(live, redis_client):
    waiting = objects.send("Waiter", "held", "approve")
    awakeable_id = _published_id(redis_client, "held")
    wait_for(lambda: _status(waiting) == Status.SUSPENDED)
    later = objects.send("Waiter", "held", "bump")
    time.sleep(1.0)
    assert _status(later) == Status.PENDING  # behind the suspended head
    assert objects.call("Waiter", "held", "peek") == {}  # a shared handler answers meanwhile
    objects.resolve_awakeable(awakeable_id, {"ok": True})
    wait_for(lambda: _status(later) == Status.SUCCEEDED)
    first, second = invocation_get(waiting), invocation_get(later)
    assert first.status == Status.SUCCEEDED and first.finished_at <= second.finished_at
    assert first.output == {"value": {"ok": True}, "runs": 1}
    assert objects.call("Waiter", "held", "peek") == {"approved": {"ok": True}, "n": 1}


def test_a_reject_raises_terminal_error_in_the_waiting_handler(live, redis_client):
    waiting = objects.send("Waiter", "rej", "approve")
    awakeable_id = _published_id(redis_client, "rej")
    wait_for(lambda: _status(waiting) == Status.SUSPENDED)
    objects.reject_awakeable(awakeable_id, "not this time")
    wait_for(lambda: _status(waiting) == Status.SUCCEEDED)
    assert invocation_get(waiting).output == {"rejected": "not this time", "runs": 1}
    with pytest.raises(objects.Conflict, match="already rejected"):
        objects.resolve_awakeable(awakeable_id, 1)


def test_a_handler_resolves_an_awakeable_when_it_commits(live, redis_client):
    waiting = objects.send("Waiter", "by-handler", "approve")
    awakeable_id = _published_id(redis_client, "by-handler")
    wait_for(lambda: _status(waiting) == Status.SUSPENDED)
    with pytest.raises(objects.TerminalError, match="failing after the resolve"):
        objects.call("Waiter", "other", "resolve_for", {"id": awakeable_id, "value": 1, "then_fail": True})
    time.sleep(0.5)
    assert _status(waiting) == Status.SUSPENDED  # the failed handler's resolve was rolled back with it
    objects.call("Waiter", "other", "resolve_for", {"id": awakeable_id, "value": 2})
    wait_for(lambda: _status(waiting) == Status.SUCCEEDED)
    assert invocation_get(waiting).output == {"value": 2, "runs": 1}


def test_a_step_before_an_awakeable_runs_once_across_a_worker_kill(live, redis_client, fast_redispatch):
    waiting = objects.send("Waiter", "kill-aw", "approve")
    awakeable_id = _published_id(redis_client, "kill-aw")
    wait_for(lambda: _status(waiting) == Status.SUSPENDED)
    for index in range(len(live.procs)):
        live.kill(index)
    objects.resolve_awakeable(awakeable_id, "late")  # rings while no worker runs: the sweeper rings again
    for index in range(len(live.procs)):
        live.start_one(index)
    live.wait_ready()
    with Sweeper(interval=0.5):
        wait_for(lambda: _status(waiting) == Status.SUCCEEDED, timeout=30)
    assert invocation_get(waiting).output == {"value": "late", "runs": 1}
    assert int(redis_client.get("waiter:runs:kill-aw")) == 1
    assert redis_client.llen("waiter:ids:kill-aw") == 0  # published once (taken by the test)


def test_except_exception_in_a_handler_does_not_swallow_the_suspension(live):
    assert _call("Waiter", "sw", "swallow", {"seconds": 1}) == "slept"


def test_a_handler_called_by_ctx_call_cannot_wait(live):
    with pytest.raises(objects.TerminalError, match="cannot wait"):
        objects.call("Waiter", "caller", "call_sleeper", {"key": "callee"})


@pytest.mark.parametrize("operation", [invocation_cancel, invocation_kill], ids=["cancel", "kill"])
def test_cancelling_or_killing_a_suspended_invocation_fails_it_and_releases_the_key(live, redis_client, operation):
    key = f"op-{operation.__name__}"
    waiting = objects.send("Waiter", key, "approve")
    _published_id(redis_client, key)
    wait_for(lambda: _status(waiting) == Status.SUSPENDED)
    later = objects.send("Waiter", key, "bump")
    time.sleep(0.5)
    assert _status(later) == Status.PENDING
    done = operation(invocation=invocation_get(waiting))
    assert done.status in (Status.CANCELLED, Status.KILLED)
    assert done.error_message and done.error_code == 409
    wait_for(lambda: _status(later) == Status.SUCCEEDED)
    assert objects.call("Waiter", key, "peek") == {"n": 1}
    with pytest.raises(objects.Conflict):
        invocation_cancel(invocation=invocation_get(waiting))


SQLITE_CLIENT = textwrap.dedent("""
    import os, time, django
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    django.setup()
    import objects
    from objects.models import Status
    from objects.signals.notify import client
    from objects.services import invocation_get

    started = time.monotonic()
    out = objects.call("Waiter", "sq", "nap", {"seconds": 2}, timeout=60)
    print("NAP", out, time.monotonic() - started >= 2)
    waiting = objects.send("Waiter", "sq-aw", "approve")
    got = client().blpop(["waiter:ids:sq-aw"], timeout=30)
    deadline = time.monotonic() + 30
    while invocation_get(waiting).status != Status.SUSPENDED and time.monotonic() < deadline:
        time.sleep(0.05)
    objects.resolve_awakeable(got[1].decode(), "yes")
    while invocation_get(waiting).status != Status.SUCCEEDED and time.monotonic() < deadline:
        time.sleep(0.05)
    print("AWAKE", invocation_get(waiting).output, client().get("waiter:runs:sq-aw"))
""")


def test_sleeps_and_awakeables_on_sqlite(tmp_path):
    redis_base = os.environ["REDIS_URL"].rsplit("/", 1)[0]
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": f"{redis_base}/5",
        "OBJECTS_TEST_OBJECTS": "1",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    worker = Workers(env["DATABASE_URL"], count=1, env=env).start_one(0)
    try:
        out = subprocess.run(
            [sys.executable, "-c", SQLITE_CLIENT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=200
        )
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert out.returncode == 0, out.stderr[-3000:]
    assert "NAP {'before': 1, 'after': 1, 'naps': 1} True" in out.stdout, out.stdout
    assert "AWAKE {'value': 'yes', 'runs': 1} b'1'" in out.stdout, out.stdout
