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
    seen = tasks._bells_hold([PARTITION])
    assert tasks._bells_release([PARTITION], seen) is None
    tasks.ring("T", "k", partition=PARTITION)
    assert len(published) == 2


def test_a_ring_during_the_drain_makes_it_go_round_again(published):
    tasks.ring("T", "k", partition=PARTITION)
    seen = tasks._bells_hold([PARTITION])
    tasks.ring("T", "other", partition=PARTITION)  # accepted while the drain ran: counted, not published
    assert len(published) == 1
    again = tasks._bells_release([PARTITION], seen)
    assert again is not None and again != seen  # the counter stays: rings are still suppressed
    tasks.ring("T", "k", partition=PARTITION)
    assert len(published) == 1
    assert tasks._bells_release([PARTITION], tasks._bells_hold([PARTITION])) is None


def test_a_counter_lost_with_redis_does_not_stop_the_drain_early(published, redis_client):
    tasks.ring("T", "k", partition=PARTITION)
    seen = tasks._bells_hold([PARTITION])
    redis_client.delete(tasks.partition_bell_key(PARTITION))  # FLUSHALL or a restart during the drain
    assert tasks._bells_release([PARTITION], seen) == [""]  # changed: one more pass, then done
    assert tasks._bells_release([PARTITION], [""]) is None


def test_a_counter_left_by_a_dead_drain_runs_out_however_many_rings_follow(published, redis_client):
    bell = tasks.partition_bell_key(PARTITION)
    tasks.ring("T", "k", partition=PARTITION)
    redis_client.expire(bell, 2)  # as if the first ring had been 8 s ago
    for _ in range(20):
        tasks.ring("T", "k", partition=PARTITION)
    assert 0 < redis_client.ttl(bell) <= 2  # later rings do not renew it; only a live drain does
    assert tasks._bells_hold([PARTITION]) == ["22"]  # the drain counts itself as one more ring
    assert redis_client.ttl(bell) > 2


def test_a_drain_holds_every_partition_of_its_worker_and_lets_go_of_them_together(published, redis_client):
    other = PARTITION + 1
    redis_client.delete(tasks.partition_bell_key(other))
    tasks.ring("T", "k", partition=PARTITION)
    assert published == [("p", PARTITION)]
    seen = tasks._bells_hold([PARTITION, other])  # the drain of PARTITION also holds the idle one
    assert seen == ["2", "1"]
    tasks.ring("T", "k2", partition=other)  # counted and woken, not published: the drain runs it
    assert published == [("p", PARTITION)]
    assert redis_client.lpop(tasks.partition_wake_key(other)) == b"1"
    again = tasks._bells_release([PARTITION, other], seen)
    assert again == ["2", "2"]  # one counter changed: neither is dropped, the drain goes round
    assert redis_client.get(tasks.partition_bell_key(PARTITION)) == b"2"
    assert tasks._bells_release([PARTITION, other], again) is None  # a quiet pass: both dropped
    assert redis_client.get(tasks.partition_bell_key(PARTITION)) is None
    assert redis_client.get(tasks.partition_bell_key(other)) is None
    tasks.ring("T", "k2", partition=other)
    assert published == [("p", PARTITION), ("p", other)]


def test_a_per_key_ring_tells_a_lingering_drain_of_its_worker_to_make_way(published, redis_client):
    other = PARTITION + 1
    redis_client.delete(
        *[key(p) for p in (PARTITION, other) for key in (tasks.partition_published_key, tasks.partition_wake_key)]
    )
    redis_client.delete(tasks.partition_bell_key(other))
    tasks.ring("T", "k", partition=PARTITION, countdown=0.02, force=True)
    assert published == [("k", "T", "k", 0)]
    assert tasks._linger([other, PARTITION], 1.0) == "other"
    tasks.ring("T", "k", partition=other)
    assert tasks._linger([other, PARTITION], 1.0) == "other"  # a drain's message: its counter went to 1
    tasks.ring("T", "k", partition=other)
    assert tasks._linger([other, PARTITION], 1.0) == "mine"  # a call to a held partition: run it
    redis_client.delete(tasks.partition_bell_key(other))


def test_a_starting_worker_resets_and_rings_the_partitions_it_consumes(published, redis_client, monkeypatch):
    from types import SimpleNamespace

    tasks.ring("T", "k", partition=PARTITION)  # a drain that died and left its counter behind
    published.clear()
    queues = {name: SimpleNamespace(name=name) for name in (f"objects.p{PARTITION}", "objects.sweeper")}
    consumer = SimpleNamespace(app=SimpleNamespace(amqp=SimpleNamespace(queues=SimpleNamespace(consume_from=queues))))
    monkeypatch.setattr(tasks, "_consumed", [])
    monkeypatch.setattr(tasks, "_one_loop", False)
    monkeypatch.setattr(tasks, "_spare", False)
    tasks._reset_partition_bells(consumer)
    assert published == [("p", PARTITION)]
    assert redis_client.get(tasks.partition_bell_key(PARTITION)) is None
    assert tasks._consumed == [PARTITION]  # its drains hold and pass every partition it consumes
    assert tasks._one_loop  # one drain loop covers them all, whatever the pool
    consumer.controller = SimpleNamespace(pool=SimpleNamespace(limit=1))  # a solo pool, or one thread
    tasks._reset_partition_bells(consumer)
    assert tasks._one_loop and not tasks._spare  # a message for the worker must end the drain's linger
    consumer.controller = SimpleNamespace(pool=SimpleNamespace(limit=8))  # a thread pool
    tasks._reset_partition_bells(consumer)
    assert tasks._one_loop and tasks._spare  # other threads take the worker's other messages
