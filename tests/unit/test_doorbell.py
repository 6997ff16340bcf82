"""The partition doorbell counter (objects/signals/doorbell.py, objects/worker/drain.py): one Celery message per burst
of calls to a partition, and a drain that finishes while rings arrived goes round again instead of leaving an accepted
invocation behind. Celery's publish is replaced by a recorder; the counter is the real one in Redis."""

from __future__ import annotations

import pytest

from objects.routing import DRAIN_PARTITION_TASK, DRAIN_TASK
from objects.signals import doorbell
from objects.worker import drain

PARTITION = 3


@pytest.fixture
def published(monkeypatch, redis_client):
    sent: list[tuple] = []
    kinds = {DRAIN_PARTITION_TASK: "p", DRAIN_TASK: "k"}
    monkeypatch.setattr(doorbell, "send_task", lambda name, args, **options: sent.append((kinds[name], *args)))
    redis_client.delete(doorbell.partition_bell_key(PARTITION))
    yield sent
    redis_client.delete(doorbell.partition_bell_key(PARTITION))


def test_a_burst_of_rings_to_a_partition_publishes_once(published):
    for key in ("a", "b", "c", "d", "e"):
        assert doorbell.ring("T", key, partition=PARTITION)
    assert published == [("p", PARTITION)]


def test_forced_and_timed_rings_publish_a_per_key_drain_every_time(published):
    doorbell.ring("T", "k", partition=PARTITION)
    doorbell.ring("T", "k", partition=PARTITION, force=True)
    doorbell.ring("T", "k", partition=PARTITION, countdown=0.5)
    doorbell.ring("T", "k", partition=PARTITION, force=True)
    assert published == [("p", PARTITION), ("k", "T", "k", 0), ("k", "T", "k", 0), ("k", "T", "k", 0)]


def test_release_after_a_quiet_drain_lets_the_next_ring_publish(published):
    doorbell.ring("T", "k", partition=PARTITION)
    seen = doorbell.bells_hold([PARTITION])
    assert doorbell.bells_release([PARTITION], seen) is None
    doorbell.ring("T", "k", partition=PARTITION)
    assert len(published) == 2


def test_a_ring_during_the_drain_makes_it_go_round_again(published):
    doorbell.ring("T", "k", partition=PARTITION)
    seen = doorbell.bells_hold([PARTITION])
    doorbell.ring("T", "other", partition=PARTITION)  # accepted while the drain ran: counted, not published
    assert len(published) == 1
    again = doorbell.bells_release([PARTITION], seen)
    assert again is not None and again != seen  # the counter stays: rings are still suppressed
    doorbell.ring("T", "k", partition=PARTITION)
    assert len(published) == 1
    assert doorbell.bells_release([PARTITION], doorbell.bells_hold([PARTITION])) is None


def test_a_counter_lost_with_redis_does_not_stop_the_drain_early(published, redis_client):
    doorbell.ring("T", "k", partition=PARTITION)
    seen = doorbell.bells_hold([PARTITION])
    redis_client.delete(doorbell.partition_bell_key(PARTITION))  # FLUSHALL or a restart during the drain
    assert doorbell.bells_release([PARTITION], seen) == [""]  # changed: one more pass, then done
    assert doorbell.bells_release([PARTITION], [""]) is None


def test_a_counter_left_by_a_dead_drain_runs_out_however_many_rings_follow(published, redis_client):
    bell = doorbell.partition_bell_key(PARTITION)
    doorbell.ring("T", "k", partition=PARTITION)
    redis_client.expire(bell, 2)  # as if the first ring had been 8 s ago
    for _ in range(20):
        doorbell.ring("T", "k", partition=PARTITION)
    assert 0 < redis_client.ttl(bell) <= 2  # later rings do not renew it; only a live drain does
    assert doorbell.bells_hold([PARTITION]) == ["22"]  # the drain counts itself as one more ring
    assert redis_client.ttl(bell) > 2


def test_a_drain_holds_every_partition_of_its_worker_and_lets_go_of_them_together(published, redis_client):
    other = PARTITION + 1
    redis_client.delete(doorbell.partition_bell_key(other))
    doorbell.ring("T", "k", partition=PARTITION)
    assert published == [("p", PARTITION)]
    seen = doorbell.bells_hold([PARTITION, other])  # the drain of PARTITION also holds the idle one
    assert seen == ["2", "1"]
    doorbell.ring("T", "k2", partition=other)  # counted and woken, not published: the drain runs it
    assert published == [("p", PARTITION)]
    assert redis_client.lpop(doorbell.partition_wake_key(other)) == b"1"
    again = doorbell.bells_release([PARTITION, other], seen)
    assert again == ["2", "2"]  # one counter changed: neither is dropped, the drain goes round
    assert redis_client.get(doorbell.partition_bell_key(PARTITION)) == b"2"
    assert doorbell.bells_release([PARTITION, other], again) is None  # a quiet pass: both dropped
    assert redis_client.get(doorbell.partition_bell_key(PARTITION)) is None
    assert redis_client.get(doorbell.partition_bell_key(other)) is None
    doorbell.ring("T", "k2", partition=other)
    assert published == [("p", PARTITION), ("p", other)]


def test_a_per_key_ring_tells_a_lingering_drain_of_its_worker_to_make_way(published, redis_client):
    other = PARTITION + 1
    redis_client.delete(
        *[key(p) for p in (PARTITION, other) for key in (doorbell.partition_published_key, doorbell.partition_wake_key)]
    )
    redis_client.delete(doorbell.partition_bell_key(other))
    doorbell.ring("T", "k", partition=PARTITION, countdown=0.02, force=True)
    assert published == [("k", "T", "k", 0)]
    assert drain._linger([other, PARTITION], 1.0) == "other"
    doorbell.ring("T", "k", partition=other)
    assert drain._linger([other, PARTITION], 1.0) == "other"  # a drain's message: its counter went to 1
    doorbell.ring("T", "k", partition=other)
    assert drain._linger([other, PARTITION], 1.0) == "mine"  # a call to a held partition: run it
    redis_client.delete(doorbell.partition_bell_key(other))


def test_a_starting_worker_resets_and_rings_the_partitions_it_consumes(published, redis_client, monkeypatch):
    from types import SimpleNamespace

    doorbell.ring("T", "k", partition=PARTITION)  # a drain that died and left its counter behind
    published.clear()
    queues = {name: SimpleNamespace(name=name) for name in (f"objects.p{PARTITION}", "objects.sweeper")}
    consumer = SimpleNamespace(app=SimpleNamespace(amqp=SimpleNamespace(queues=SimpleNamespace(consume_from=queues))))
    monkeypatch.setattr(drain, "_consumed", [])
    monkeypatch.setattr(drain, "_one_loop", False)
    monkeypatch.setattr(drain, "_spare", False)
    drain.worker_started(consumer)
    assert published == [("p", PARTITION)]
    assert redis_client.get(doorbell.partition_bell_key(PARTITION)) is None
    assert drain._consumed == [PARTITION]  # its drains hold and pass every partition it consumes
    assert drain._one_loop  # one drain loop covers them all, whatever the pool
    consumer.controller = SimpleNamespace(pool=SimpleNamespace(limit=1))  # a solo pool, or one thread
    drain.worker_started(consumer)
    assert drain._one_loop and not drain._spare  # a message for the worker must end the drain's linger
    consumer.controller = SimpleNamespace(pool=SimpleNamespace(limit=8))  # a thread pool
    drain.worker_started(consumer)
    assert drain._one_loop and drain._spare  # other threads take the worker's other messages
