"""A call rings its partition's doorbell in the same Redis round trip as its first wait (doorbell.ring_and_wait).

The ring script also pushes RING_MARK in front of the caller's completion list when the ring must publish a
drain (no drain holds the partition): the caller, blocked on that list, publishes and waits again. These
tests run real workers; they check the round trip, both ways a ring can go, and a failed round trip.
"""

from __future__ import annotations

from unittest import mock

import pytest
import redis
from django.db import connections

import objects
from objects.routing import partition_of
from objects.signals.doorbell import RING_MARK, partition_bell_key
from objects.signals.notify import done_key
from tests.support import threaded_call as _call
from tests.support import wait_for

pytestmark = pytest.mark.workers


class Sent:
    """Every packed command written on a Redis connection of this process, in order."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.real = redis.connection.AbstractConnection.send_packed_command

    def __enter__(self) -> Sent:
        recorder = self

        def send(conn, command, check_health=True):
            parts = command if isinstance(command, list) else [command]
            recorder.payloads.append(b"".join(bytes(p) for p in parts))
            return recorder.real(conn, command, check_health)

        self.patch = mock.patch.object(redis.connection.AbstractConnection, "send_packed_command", send)
        self.patch.start()
        return self

    def __exit__(self, *exc) -> None:
        self.patch.stop()


def test_a_call_rings_and_waits_in_one_round_trip(live):
    assert _call("Recorder", "rw1", "append", {"value": 1}) == 1  # the key has its row, a drain may linger
    with Sent() as sent:
        assert _call("Recorder", "rw1", "append", {"value": 2}) == 2
    first = sent.payloads[0]
    assert b"EVALSHA" in first and b"BLPOP" in first, first
    assert done_key("").encode() in first
    assert not any(b"EVALSHA" in payload for payload in sent.payloads[1:])  # rung once


def test_a_call_that_finds_no_drain_publishes_one_and_leaves_no_mark(live, redis_client):
    """The partition's counter gone (no drain holds it): the ring counts 1, marks the caller's list, the
    caller publishes the drain and gets its result."""
    key = "rw2"
    redis_client.delete(partition_bell_key(partition_of("Recorder", key)))
    assert _call("Recorder", key, "append", {"value": 7}) == 1
    assert _call("Recorder", key, "items") == [7]
    for name in redis_client.scan_iter(done_key("*")):
        assert RING_MARK.encode() not in redis_client.lrange(name, 0, -1), name


def test_a_failed_round_trip_still_rings_and_the_call_completes(live):
    """The combined round trip fails (Redis drops the connection): the ring is sent alone and the wait goes
    on (polling the database, then waiting on the list again), so the call still gets its result."""
    from objects.signals import notify

    real = notify.pipelined
    failures = []

    def flaky(commands):
        if any(command[0] == "BLPOP" for command in commands) and not failures:
            failures.append(1)
            raise redis.ConnectionError("dropped for the test")
        return real(commands)

    with mock.patch.object(notify, "pipelined", flaky):
        assert _call("Recorder", "rw3", "append", {"value": 3}, timeout=20) == 1
    assert failures == [1]


def test_a_send_still_rings_at_once(live):
    """Sends do not wait, so they ring on commit as before; the worker runs them without a caller waiting."""
    objects.send("Recorder", "rw4", "append", {"value": 4})
    connections.close_all()
    wait_for(lambda: _call("Recorder", "rw4", "items") == [4], timeout=10)


def test_calls_and_sends_ring_after_redis_forgot_the_script(live, redis_client):
    """A Redis restart forgets the ring script: the combined round trip's EVALSHA answers NOSCRIPT, the ring
    is sent again through the script object (which loads it), and the call completes; a send's ring too."""
    redis_client.script_flush()
    assert _call("Recorder", "rw5", "append", {"value": 5}, timeout=20) == 1
    redis_client.script_flush()
    objects.send("Recorder", "rw5", "append", {"value": 6})
    connections.close_all()
    wait_for(lambda: _call("Recorder", "rw5", "items") == [5, 6], timeout=10)
