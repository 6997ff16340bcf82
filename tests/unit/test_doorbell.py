"""The per-key doorbell counter (objects/tasks.py): one Celery message per burst of rings, and a drain that
finishes while rings arrived goes round again instead of leaving an accepted invocation behind."""

from __future__ import annotations

import pytest

from objects import tasks


@pytest.fixture
def published(monkeypatch, redis_client):
    sent: list[tuple] = []
    monkeypatch.setattr(tasks.drain, "apply_async", lambda args, **options: sent.append(tuple(args)))
    redis_client.delete(tasks.bell_key("T", "k"))
    yield sent
    redis_client.delete(tasks.bell_key("T", "k"))


def test_a_burst_of_rings_publishes_once(published):
    for _ in range(5):
        assert tasks.ring("T", "k", partition=0)
    assert published == [("T", "k", 0)]


def test_forced_and_timed_rings_always_publish(published):
    tasks.ring("T", "k", partition=0)
    tasks.ring("T", "k", partition=0, force=True)
    tasks.ring("T", "k", partition=0, countdown=0.5)
    assert len(published) == 3


def test_release_after_a_quiet_drain_lets_the_next_ring_publish(published):
    tasks.ring("T", "k", partition=0)
    bell = tasks.bell_key("T", "k")
    seen = tasks._bell_read(bell)
    assert tasks._bell_release(bell, seen) is None
    tasks.ring("T", "k", partition=0)
    assert len(published) == 2


def test_a_ring_during_the_drain_makes_it_go_round_again(published):
    tasks.ring("T", "k", partition=0)
    bell = tasks.bell_key("T", "k")
    seen = tasks._bell_read(bell)
    tasks.ring("T", "k", partition=0)  # accepted while the drain ran: counted, not published
    assert len(published) == 1
    again = tasks._bell_release(bell, seen)
    assert again is not None and again != seen  # the counter stays: rings are still suppressed
    tasks.ring("T", "k", partition=0)
    assert len(published) == 1
    assert tasks._bell_release(bell, tasks._bell_read(bell)) is None


def test_a_counter_lost_with_redis_does_not_stop_the_drain_early(published, redis_client):
    tasks.ring("T", "k", partition=0)
    bell = tasks.bell_key("T", "k")
    seen = tasks._bell_read(bell)
    redis_client.delete(bell)  # FLUSHALL or a restart during the drain
    assert tasks._bell_release(bell, seen) == ""  # changed: one more pass, then done
    assert tasks._bell_release(bell, "") is None
