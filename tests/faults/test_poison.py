"""A poison invocation, whose handler kills the worker process running it every time, is failed after
OBJECTS_CRASH_LIMIT (3) crashes instead of being re-run forever; the key's later invocations then run."""

from __future__ import annotations

import time

import pytest

import objects
from objects.models import Status
from objects.services import invocation_get
from tests.faults.model import Sweeper

pytestmark = pytest.mark.workers


def test_a_handler_that_kills_its_worker_is_failed_after_the_crash_limit(live, fast_redispatch, redis_client):
    redis_client.delete("crashes:poison-1")
    poison = objects.send("Recorder", "poison-1", "crash_always", {"confirm": "kill my worker"})
    after = objects.send("Recorder", "poison-1", "append", {"value": "after"})
    restarts = 0
    with Sweeper(interval=0.5):
        deadline = time.monotonic() + 150
        while invocation_get(after).status not in (Status.SUCCEEDED, Status.FAILED):
            assert time.monotonic() < deadline, f"not settled; worker restarts so far: {restarts}"
            for index, proc in enumerate(live.procs):
                if proc.poll() is not None:  # the poison killed it: a supervisor would start it again
                    live.restart(index)
                    restarts += 1
            time.sleep(0.2)
    failed = invocation_get(poison)
    assert failed.status == Status.FAILED
    assert "ended its worker process 3 times" in failed.error_message
    assert int(redis_client.get("crashes:poison-1")) == 3  # it ran exactly the crash limit, not once more
    assert invocation_get(after).status == Status.SUCCEEDED
    assert objects.call("Recorder", "poison-1", "items") == ["after"]
    assert restarts >= 2
