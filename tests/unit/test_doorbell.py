"""The partition doorbell counter (objects/tasks.py): one Celery message per burst of calls to a partition, and
a drain that finishes while rings arrived goes round again instead of leaving an accepted invocation behind.
Celery's publish is replaced by a recorder; the counter is the real one in Redis."""

from __future__ import annotations

import pytest

from objects import tasks

PARTITION = 3


@pytest.fixture
def published(monkeypatch, redis_client):
    sent: list[tuple] = []
    monkeypatch.setattr(tasks.drain_partition, "apply_async", lambda args, **options: sent.append(("p", *args)))
    monkeypatch.setattr(tasks.drain, "apply_async", lambda args, **options: sent.append(("k", *args)))
    redis_client.delete(tasks.partition_bell_key(PARTITION))
    yield sent
    redis_client.delete(tasks.partition_bell_key(PARTITION))


def test_a_burst_of_rings_to_a_partition_publishes_once(published):
    for key in ("a", "b", "c", "d", "e"):
        assert tasks.ring("T", key, partition=PARTITION)
    assert published == [("p", PARTITION)]


def test_forced_and_timed_rings_publish_a_per_key_drain_every_time(published):
    tasks.ring("T", "k", partition=PARTITION)
    tasks.ring("T", "k", partition=PARTITION, force=True)
    tasks.ring("T", "k", partition=PARTITION, countdown=0.5)
    tasks.ring("T", "k", partition=PARTITION, force=True)
    assert published == [("p", PARTITION), ("k", "T", "k", 0), ("k", "T", "k", 0), ("k", "T", "k", 0)]


def test_release_after_a_quiet_drain_lets_the_next_ring_publish(published):
    tasks.ring("T", "k", partition=PARTITION)
    bell = tasks.partition_bell_key(PARTITION)
    seen = tasks._bell_read(bell)
    assert tasks._bell_release(bell, seen) is None
    tasks.ring("T", "k", partition=PARTITION)
    assert len(published) == 2


def test_a_ring_during_the_drain_makes_it_go_round_again(published):
    tasks.ring("T", "k", partition=PARTITION)
    bell = tasks.partition_bell_key(PARTITION)
    seen = tasks._bell_read(bell, ttl=tasks.PARTITION_BELL_TTL)
    tasks.ring("T", "other", partition=PARTITION)  # accepted while the drain ran: counted, not published
    assert len(published) == 1
    again = tasks._bell_release(bell, seen)
    assert again is not None and again != seen  # the counter stays: rings are still suppressed
    tasks.ring("T", "k", partition=PARTITION)
    assert len(published) == 1
    assert tasks._bell_release(bell, tasks._bell_read(bell)) is None


def test_a_counter_lost_with_redis_does_not_stop_the_drain_early(published, redis_client):
    tasks.ring("T", "k", partition=PARTITION)
    bell = tasks.partition_bell_key(PARTITION)
    seen = tasks._bell_read(bell)
    redis_client.delete(bell)  # FLUSHALL or a restart during the drain
    assert tasks._bell_release(bell, seen) == ""  # changed: one more pass, then done
    assert tasks._bell_release(bell, "") is None


def test_a_counter_left_by_a_dead_drain_runs_out_however_many_rings_follow(published, redis_client):
    bell = tasks.partition_bell_key(PARTITION)
    tasks.ring("T", "k", partition=PARTITION)
    redis_client.expire(bell, 2)  # as if the first ring had been 8 s ago
    for _ in range(20):
        tasks.ring("T", "k", partition=PARTITION)
    assert 0 < redis_client.ttl(bell) <= 2  # later rings do not renew it; only a live drain does
    assert tasks._bell_read(bell, ttl=tasks.PARTITION_BELL_TTL) == "21"
    assert redis_client.ttl(bell) > 2


def test_a_starting_worker_resets_and_rings_the_partitions_it_consumes(published, redis_client):
    from types import SimpleNamespace

    tasks.ring("T", "k", partition=PARTITION)  # a drain that died and left its counter behind
    published.clear()
    queues = {name: SimpleNamespace(name=name) for name in (f"objects.p{PARTITION}", "objects.sweeper")}
    consumer = SimpleNamespace(app=SimpleNamespace(amqp=SimpleNamespace(queues=SimpleNamespace(consume_from=queues))))
    tasks._reset_partition_bells(consumer)
    assert published == [("p", PARTITION)]
    assert redis_client.get(tasks.partition_bell_key(PARTITION)) is None
