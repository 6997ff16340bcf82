"""`manage.py objects_worker` runs exclusive handlers from the queues it was given, and `manage.py objects_beat`
sends the sweeper's task. Both run on the test database and a Redis database of their own, so the session's
workers (if another test started them) never see these doorbells."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from objects.routing import partition_of
from tests.support import ROOT, _test_database_url, reap

REDIS_DB = 11


@pytest.fixture
def env(transactional_db) -> Iterator[dict[str, str]]:
    url = os.environ["REDIS_URL"].rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    yield {**os.environ, "DATABASE_URL": _test_database_url(), "REDIS_URL": url, "PYTHONUNBUFFERED": "1"}
    redis.Redis.from_url(url).flushdb()


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    reap(proc, timeout=10)


def test_objects_worker_runs_the_handlers_of_the_partitions_it_was_given(env, tmp_path):
    from tests.testobjects.models import Event

    key = "worker-command"
    partition = partition_of("Recorder", key)
    log = tmp_path / "worker.log"
    worker = spawn(["objects_worker", "--partitions", str(partition), "--no-sweeper", "-c", "2"], env, log)
    try:
        # the doorbell waits in Redis until the worker is up; the call waits up to 30 s for its output
        call = f"import objects; print(objects.call('Recorder', {key!r}, 'hold', {{}}, timeout=30))"
        out = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", call],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.stdout.strip().splitlines()[-1:] == ["done"], out.stdout + out.stderr + log.read_text()
        assert Event.objects.filter(key=key, kind="enter").values_list("worker", flat=True).get() == str(worker.pid)
    finally:
        stop(worker)
    banner = log.read_text()
    assert set(re.findall(r"\bobjects\.(?:p\d+|sweeper)\b", banner)) == {f"objects.p{partition}"}, banner
    assert "concurrency: 2 (thread)" in banner, banner


def test_objects_worker_refuses_a_partition_out_of_range(env):
    out = subprocess.run(
        [sys.executable, "manage.py", "objects_worker", "--partitions", "0-8"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "No partition 8: OBJECTS_PARTITIONS is 8" in out.stderr


def test_objects_beat_sends_the_sweepers_task_to_its_queue(env, tmp_path):
    client = redis.Redis.from_url(env["REDIS_URL"])
    beat = spawn(
        ["objects_beat", "--schedule", str(tmp_path / "schedule")],
        {**env, "OBJECTS_SWEEP_INTERVAL": "0.5"},
        tmp_path / "beat.log",
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and client.llen("objects.sweeper") < 2:
            time.sleep(0.1)
    finally:
        stop(beat)
    messages = [json.loads(m) for m in client.lrange("objects.sweeper", 0, -1)]
    assert len(messages) >= 2, (tmp_path / "beat.log").read_text()
    assert {m["headers"]["task"] for m in messages} == {"objects.sweep"}
