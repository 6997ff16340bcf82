"""The partition's drain (objects/worker/partition.py): many keys per transaction, and the keys stay independent.

Each test accepts invocations on real PostgreSQL, then runs one pass in this process (Celery's publish is
replaced by a recorder, so no worker takes the work first) and reads the rows back."""

from __future__ import annotations

from datetime import timedelta
from unittest.mock import patch

import pytest
from django.db import connection, transaction
from django.db.models import JSONField, Value
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import objects
from objects import tasks
from objects.models import Instance, Invocation, StateEntry, Status
from objects.routing import DRAIN_PARTITION_TASK, partition_of
from objects.signals import doorbell
from objects.worker import drain as drains
from objects.worker import slowkeys
from objects.worker.partition import drain_pass
from objects.worker.slowkeys import clear as slow_clear
from tests.support import key_row_held

pytestmark = pytest.mark.django_db(transaction=True)
PARTITION = 5


def keys_in(partition: int, count: int, prefix: str) -> list[str]:
    found, n = [], 0
    while len(found) < count:
        key = f"{prefix}-{n}"
        if partition_of("Recorder", key) == partition:
            found.append(key)
        n += 1
    return found


@pytest.fixture
def published(monkeypatch, redis_client):
    from tests.support import settle

    settle(redis_client)  # no worker's drain left from an earlier test may take these tests' invocations
    sent: list[tuple] = []

    def send_task(name: str, args: list, **options: object) -> None:
        if name == DRAIN_PARTITION_TASK:
            sent.append(("p", *args))
        else:
            sent.append(("k", *args[:2], options.get("countdown")))

    monkeypatch.setattr(doorbell, "send_task", send_task)
    bells = [key(p) for p in range(8) for key in (doorbell.partition_bell_key, doorbell.partition_wake_key)]
    bells += [doorbell.partition_published_key(p) for p in range(8)]
    redis_client.delete(*bells)
    slow_clear()
    all_quick()  # as in a worker that has run each handler once: the group runs them
    yield sent
    redis_client.delete(*bells)
    slow_clear()


def all_quick() -> None:
    from objects.registry import all_objects

    for obj in all_objects():
        slowkeys.note_quick(obj.name, list(obj.handlers))


def statuses(key: str) -> list[str]:
    rows = Invocation.objects.filter(type_name="Recorder", key=key).order_by("id")
    return list(rows.values_list("status", flat=True))


def test_one_pass_runs_every_runnable_key_of_its_partition_in_one_transaction(published):
    keys = keys_in(PARTITION, 4, "group")
    other = keys_in(PARTITION + 1, 1, "elsewhere")[0]
    for n, key in enumerate([*keys, other]):
        objects.send("Recorder", key, "append", {"value": n})
    assert published == [("p", PARTITION), ("p", PARTITION + 1)]  # one message per partition, not per call

    commits = []
    with (
        CaptureQueriesContext(connection) as queries,
        patch.object(connection, "commit", side_effect=lambda real=connection.commit: commits.append(1) or real()),
    ):
        result = drain_pass(PARTITION)

    assert (result.ran, result.more) == (4, False)
    assert [statuses(key) for key in keys] == [[Status.SUCCEEDED]] * 4
    assert statuses(other) == [Status.PENDING]  # another partition's key is not touched
    statements = [q["sql"] for q in queries.captured_queries]
    assert sum("FOR NO KEY UPDATE SKIP LOCKED" in sql for sql in statements) == 1  # one statement locks all four keys
    assert "MIN(i.id) AS head" in next(sql for sql in statements if "FOR NO KEY UPDATE" in sql)  # as it finds them
    assert sum("ROW_NUMBER()" in sql for sql in statements) == 1  # one statement reads all four inboxes
    assert len(commits) == 1  # and one commit writes all four outcomes
    assert drain_pass(PARTITION).ran == 0


def test_a_key_whose_row_is_held_elsewhere_goes_to_a_per_key_drain_and_the_rest_run(published):
    held, free = keys_in(PARTITION, 2, "busy")
    objects.send("Recorder", held, "append", {"value": 1})
    objects.send("Recorder", free, "append", {"value": 2})
    published.clear()
    with key_row_held(Instance.objects.get(type_name="Recorder", key=held).pk):
        result = drain_pass(PARTITION)
    assert result.ran == 1
    assert statuses(free) == [Status.SUCCEEDED]
    assert statuses(held) == [Status.PENDING]
    assert published == [("k", "Recorder", held, 0.02)]  # it comes back until the row is free


def test_paused_keys_and_keys_behind_a_backing_off_head_are_not_picked(published):
    paused, backing_off, ready = keys_in(PARTITION, 3, "skip")
    for key in (paused, backing_off, ready):
        objects.send("Recorder", key, "append", {"value": key})
    Instance.objects.filter(type_name="Recorder", key=paused).update(paused=True)
    head = Invocation.objects.get(type_name="Recorder", key=backing_off)
    Invocation.objects.filter(pk=head.pk).update(
        status=Status.BACKING_OFF, not_before=timezone.now() + timedelta(minutes=5), attempts=1
    )
    objects.send("Recorder", backing_off, "append", {"value": "later"})  # must wait behind its head
    published.clear()

    assert drain_pass(PARTITION).ran == 1
    assert statuses(ready) == [Status.SUCCEEDED]
    assert statuses(paused) == [Status.PENDING]
    assert statuses(backing_off) == [Status.BACKING_OFF, Status.PENDING]
    assert published == []  # no doorbell for them on every pass: the resume and the timed retry ring


def test_a_full_key_makes_the_drain_go_round_again(published, settings):
    settings.OBJECTS_BATCH_SIZE = 2
    (key,) = keys_in(PARTITION, 1, "full")
    for n in range(3):
        objects.send("Recorder", key, "append", {"value": n})
    first = drain_pass(PARTITION)
    assert (first.ran, first.more) == (2, True)
    second = drain_pass(PARTITION)
    assert (second.ran, second.more) == (1, False)
    assert objects.call("Recorder", key, "items") == [0, 1, 2]


def test_a_slow_key_is_left_to_per_key_drains_and_does_not_hold_back_its_partition(published, settings):
    settings.OBJECTS_GROUP_BUDGET_MS = 50
    slow, quick = keys_in(PARTITION, 2, "slow")
    for _ in range(3):
        objects.send("Recorder", slow, "hold", {"sleep": 0.1})
    objects.send("Recorder", quick, "append", {"value": 1})
    published.clear()

    first = drain_pass(PARTITION)  # the slow key's first handler outruns the budget: the pass stops there
    assert (first.ran, first.more) == (1, True)
    assert statuses(slow) == [Status.SUCCEEDED, Status.PENDING, Status.PENDING]
    assert statuses(quick) == [Status.PENDING]

    second = drain_pass(PARTITION)  # now the slow key goes to a per-key drain and the quick one runs
    assert second.ran == 1
    assert statuses(quick) == [Status.SUCCEEDED]
    assert statuses(slow) == [Status.SUCCEEDED, Status.PENDING, Status.PENDING]
    assert published == [("k", "Recorder", slow, None)]

    drain_pass(PARTITION)  # handed off a moment ago: the next hand-off is timed, half a second after it
    drain_pass(PARTITION)  # and that one, still to come, covers later passes: no third message
    assert len(published) == 2
    assert published[1][:3] == ("k", "Recorder", slow) and 0.3 < published[1][3] <= 0.5


def test_a_per_key_drain_keeps_a_still_slow_key_out_of_the_group(published, settings):
    from objects.worker import slowkeys
    from objects.worker.inbox import drain_key

    settings.OBJECTS_GROUP_BUDGET_MS = 50
    slow, quick = keys_in(PARTITION, 2, "still-slow")
    objects.send("Recorder", slow, "hold", {"sleep": 0.1})
    drain_pass(PARTITION)  # marks it slow
    assert slowkeys.is_slow("Recorder", slow)
    slowkeys._slow[("Recorder", slow)] = 0.0  # the mark ran out
    objects.send("Recorder", slow, "hold", {"sleep": 0.1})
    drain_key("Recorder", slow)  # a per-key drain finds it slow again: the mark is renewed
    assert slowkeys.is_slow("Recorder", slow)
    objects.send("Recorder", slow, "hold", {"sleep": 0.1})
    objects.send("Recorder", quick, "append", {"value": 1})
    published.clear()
    assert drain_pass(PARTITION).ran == 1  # the group runs the quick key only and hands the slow one off
    assert statuses(quick) == [Status.SUCCEEDED]
    assert published == [("k", "Recorder", slow, None)]


def test_a_handler_not_yet_seen_quick_runs_in_a_per_key_drain_first_then_in_the_group(published):
    from objects.worker.inbox import drain_key

    slow_clear()  # a fresh worker: no handler seen yet
    first, second = keys_in(PARTITION, 2, "unseen")
    objects.send("Recorder", first, "append", {"value": 1})
    published.clear()
    assert drain_pass(PARTITION).ran == 0  # not run in the group: it could be slow from its first call
    assert published == [("k", "Recorder", first, None)]
    drain_key("Recorder", first)  # that per-key drain: it finishes within the budget
    assert statuses(first) == [Status.SUCCEEDED]
    objects.send("Recorder", second, "append", {"value": 2})
    assert drain_pass(PARTITION).ran == 1  # now known quick: the group runs it
    assert statuses(second) == [Status.SUCCEEDED]


def test_a_busy_key_of_quick_handlers_stays_in_the_group(published, settings):
    settings.OBJECTS_GROUP_BUDGET_MS = 100
    (key,) = keys_in(PARTITION, 1, "busy-quick")
    for _ in range(20):
        objects.send("Recorder", key, "hold", {"sleep": 0.01})  # 20 quick handlers outrun the budget together
    published.clear()
    first = drain_pass(PARTITION)
    assert first.more and 2 <= first.ran < 20  # stopped at the budget, the rest left for the next pass
    while drain_pass(PARTITION).ran:
        pass
    assert statuses(key) == [Status.SUCCEEDED] * 20
    assert published == []  # never handed to a per-key drain: no handler was slow


# The drain's linger (objects/worker/drain.py): calls that follow one another run without a Celery message each.


@pytest.fixture
def drain_in_thread():
    import threading

    from django.db import connections

    threads = []

    def start(partition: int) -> threading.Thread:
        def run() -> None:
            try:
                tasks.drain_partition(partition)
            finally:
                connections.close_all()

        thread = threading.Thread(target=run)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    for thread in threads:
        thread.join(10)


def wait_until(predicate, timeout: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_lingering_drain_runs_the_next_call_without_a_celery_message(
    published, settings, monkeypatch, drain_in_thread, redis_client
):
    settings.OBJECTS_DRAIN_LINGER_MS = 1500
    monkeypatch.setattr(drains, "DRAIN_TASK_LIMIT", 10.0)
    (key,) = keys_in(PARTITION, 1, "linger")
    objects.send("Recorder", key, "append", {"value": 1})
    assert published == [("p", PARTITION)]
    drain = drain_in_thread(PARTITION)  # what the worker does with that message
    assert wait_until(lambda: statuses(key) == [Status.SUCCEEDED])

    objects.send("Recorder", key, "append", {"value": 2})  # the drain still holds the partition: no message
    assert wait_until(lambda: statuses(key) == [Status.SUCCEEDED] * 2, timeout=1.0)
    assert published == [("p", PARTITION)]
    assert drain.is_alive()
    drain.join(5)  # after a quiet linger it lets go, and the next call publishes again
    assert not drain.is_alive()
    assert redis_client.get(doorbell.partition_bell_key(PARTITION)) is None
    objects.send("Recorder", key, "append", {"value": 3})
    assert published == [("p", PARTITION), ("p", PARTITION)]


def test_a_drain_woken_by_rings_runs_them_without_reading_the_counters_again(
    published, settings, monkeypatch, drain_in_thread, redis_client
):
    """One Redis round trip fewer per woken pass: the counters are read when the drain starts and when it lets
    go; a ring that woke it is found then (the counters changed) and the drain goes round once more."""
    settings.OBJECTS_DRAIN_LINGER_MS = 300
    monkeypatch.setattr(drains, "DRAIN_TASK_LIMIT", 10.0)
    holds = []
    hold = doorbell.bells_hold
    monkeypatch.setattr(drains, "bells_hold", lambda *a, **k: holds.append(1) or hold(*a, **k))
    (key,) = keys_in(PARTITION, 1, "woken")
    objects.send("Recorder", key, "append", {"value": 0})
    drain = drain_in_thread(PARTITION)
    for n in range(1, 4):  # each call wakes the lingering drain
        assert wait_until(lambda n=n: len(statuses(key)) == n and set(statuses(key)) == {Status.SUCCEEDED})
        objects.send("Recorder", key, "append", {"value": n})
    assert wait_until(lambda: statuses(key) == [Status.SUCCEEDED] * 4)
    drain.join(5)
    assert not drain.is_alive() and holds == [1]  # read once, at the start
    assert redis_client.get(doorbell.partition_bell_key(PARTITION)) is None  # let go, and nothing left behind
    assert published == [("p", PARTITION)]
    assert objects.call("Recorder", key, "items") == [0, 1, 2, 3]


def lingering_drain_of_a_two_partition_worker(settings, monkeypatch, drain_in_thread, *, one_loop: bool):
    """A worker consuming PARTITION and the next one; a call to a key of PARTITION has run and its drain
    lingers. Returns (other partition, a key of PARTITION, a key of the other, the drain's thread)."""
    settings.OBJECTS_DRAIN_LINGER_MS = 1500
    monkeypatch.setattr(drains, "DRAIN_TASK_LIMIT", 10.0)
    other = PARTITION + 1
    monkeypatch.setattr(drains, "_consumed", [other, PARTITION])
    monkeypatch.setattr(drains, "_one_loop", one_loop)
    prefix = f"worker-{one_loop}"
    (mine,), (theirs,) = keys_in(PARTITION, 1, prefix), keys_in(other, 1, prefix)
    objects.send("Recorder", mine, "append", {"value": 1})
    drain = drain_in_thread(PARTITION)
    assert wait_until(lambda: statuses(mine) == [Status.SUCCEEDED])
    return other, mine, theirs, drain


def test_a_drain_runs_every_partition_its_worker_consumes_without_a_message_each(
    published, settings, monkeypatch, drain_in_thread, redis_client
):
    # a solo worker: one drain at a time covers all its partitions
    other, _, theirs, drain = lingering_drain_of_a_two_partition_worker(
        settings, monkeypatch, drain_in_thread, one_loop=True
    )
    objects.send("Recorder", theirs, "append", {"value": 2})  # the worker's other partition: held too
    assert wait_until(lambda: statuses(theirs) == [Status.SUCCEEDED], timeout=1.0)
    assert published == [("p", PARTITION)]  # one Celery message for both partitions
    drain.join(5)
    assert not drain.is_alive()
    assert redis_client.get(doorbell.partition_bell_key(PARTITION)) is None  # both let go together
    assert redis_client.get(doorbell.partition_bell_key(other)) is None


def test_a_drain_that_does_not_know_its_worker_s_partitions_covers_only_its_own(
    published, settings, monkeypatch, drain_in_thread, redis_client
):
    # a prefork child: its worker's partitions are known to the parent only; each partition its own drain
    other, _, theirs, drain = lingering_drain_of_a_two_partition_worker(
        settings, monkeypatch, drain_in_thread, one_loop=False
    )
    objects.send("Recorder", theirs, "append", {"value": 2})  # not held by the lingering drain: a message
    assert published[-1] == ("p", other)
    assert statuses(theirs) == [Status.PENDING]
    drain.join(5)
    assert redis_client.get(doorbell.partition_bell_key(other)) is not None  # counted for its own drain


def test_a_message_for_the_worker_ends_the_linger(published, settings, monkeypatch, drain_in_thread):
    import time

    settings.OBJECTS_DRAIN_LINGER_MS = 3000
    other = PARTITION + 1
    monkeypatch.setattr(drains, "_consumed", [PARTITION, other])
    doorbell.ring_partition(PARTITION)
    drain = drain_in_thread(PARTITION)
    time.sleep(0.3)
    assert drain.is_alive()  # lingering
    doorbell.ring("Recorder", keys_in(other, 1, "other")[0], force=True)  # a per-key drain for its worker
    drain.join(1.0)  # well before its 3 s linger: the worker can take that message now
    assert not drain.is_alive()
    assert published == [("p", PARTITION), ("k", "Recorder", keys_in(other, 1, "other")[0], None)]


def test_with_spare_threads_a_message_for_the_worker_does_not_end_the_linger(
    published, settings, monkeypatch, drain_in_thread
):
    import time

    settings.OBJECTS_DRAIN_LINGER_MS = 1000
    other = PARTITION + 1
    monkeypatch.setattr(drains, "_consumed", [PARTITION, other])
    monkeypatch.setattr(drains, "_spare", True)  # a thread pool: another thread takes that message
    doorbell.ring_partition(PARTITION)
    drain = drain_in_thread(PARTITION)
    time.sleep(0.3)
    doorbell.ring("Recorder", keys_in(other, 1, "spare")[0], force=True)
    time.sleep(0.3)
    assert drain.is_alive()  # still lingering: a call to its partitions runs without a Celery message
    drain.join(5)
    assert not drain.is_alive()


def test_a_drain_rung_past_its_time_limit_queues_its_partition_again(
    published, monkeypatch, drain_in_thread, redis_client
):
    monkeypatch.setattr(drains, "DRAIN_TASK_LIMIT", 0.0)
    (key,) = keys_in(PARTITION, 1, "overdue")
    objects.send("Recorder", key, "hold", {"sleep": 0.5})
    drain = drain_in_thread(PARTITION)
    assert redis_client.blpop([f"entered:{key}"], timeout=5)  # the pass is running the handler
    objects.send("Recorder", key, "append", {"value": 2})  # rung meanwhile: counted, not published
    drain.join(5)
    assert not drain.is_alive()
    assert published == [("p", PARTITION), ("p", PARTITION)]  # the drain queued the partition again
    assert redis_client.get(doorbell.partition_bell_key(PARTITION)) is not None  # and kept its counter
    assert statuses(key) == [Status.SUCCEEDED, Status.PENDING]


def test_a_drain_with_a_backlog_queues_its_partition_again_after_its_time_limit(
    published, settings, monkeypatch, drain_in_thread, redis_client
):
    settings.OBJECTS_BATCH_SIZE = 1
    monkeypatch.setattr(drains, "DRAIN_TASK_LIMIT", 0.0)
    (key,) = keys_in(PARTITION, 1, "backlog")
    for n in range(3):
        objects.send("Recorder", key, "append", {"value": n})
    drain_in_thread(PARTITION).join(5)
    assert statuses(key) == [Status.SUCCEEDED, Status.PENDING, Status.PENDING]  # one pass, then it made way
    assert published == [("p", PARTITION), ("p", PARTITION)]
    assert redis_client.get(doorbell.partition_bell_key(PARTITION)) is not None


# How a pass writes (objects/worker/inbox.py LazySavepoint, objects/runtime/run.py finish_succeeded): on PostgreSQL each
# invocation's state and outcome are one statement, and a savepoint is made only for a handler that runs SQL.


def chain_keys_in(partition: int, count: int, prefix: str) -> list[str]:
    found, n = [], 0
    while len(found) < count:
        if partition_of("Chain", f"{prefix}-{n}") == partition:
            found.append(f"{prefix}-{n}")
        n += 1
    return found


def test_each_invocation_is_one_statement_without_a_savepoint_and_a_key_s_entries_one_more(published):
    from objects.models import StateChange

    keys = keys_in(PARTITION, 3, "one-statement")
    for n, key in enumerate(keys):
        objects.send("Recorder", key, "append", {"value": n})
        objects.send("Recorder", key, "append", {"value": n + 10})
    with CaptureQueriesContext(connection) as queries:
        assert drain_pass(PARTITION).ran == 6
    statements = [q["sql"] for q in queries.captured_queries]
    assert not [sql for sql in statements if "SAVEPOINT" in sql]
    finishing = [sql for sql in statements if sql.startswith("WITH f AS (UPDATE")]
    assert len(finishing) == 6  # outcome, version and history of each invocation
    # each key's entry row is written once, by the finishing statement of its last invocation; nothing else
    assert sum("objects_stateentry" in sql for sql in finishing) == 3
    assert sum(sql.startswith(("INSERT", "UPDATE", "DELETE")) for sql in statements) == 0
    for n, key in enumerate(keys):
        assert objects.call("Recorder", key, "items") == [n, n + 10]
        instance = Instance.objects.get(type_name="Recorder", key=key)
        assert instance.version == 2
        history = StateChange.objects.filter(instance=instance).order_by("version")
        assert [(c.version, c.new_value, c.old_value) for c in history] == [(1, [n], None), (2, [n, n + 10], None)]
        assert [i.output for i in Invocation.objects.filter(instance=instance).order_by("id")] == [1, 2]


def test_the_finishing_statements_run_on_the_kept_cursor_after_the_handler(published):
    """Once the handler returned, its lazy savepoint stops watching the connection, so the runner's own
    statements take the connection's kept cursor (objects.store.db), not a Django cursor."""
    from unittest import mock

    from django.db.backends.utils import CursorWrapper

    keys = keys_in(PARTITION, 2, "kept-cursor")
    for n, key in enumerate(keys):
        objects.send("Recorder", key, "append", {"value": n})
    real = CursorWrapper.execute
    with mock.patch.object(CursorWrapper, "execute", autospec=True, side_effect=real) as django_cursor:
        assert drain_pass(PARTITION).ran == 2
    through_django = [call.args[1] for call in django_cursor.call_args_list]
    assert not [sql for sql in through_django if sql.startswith(("WITH f AS (UPDATE", "WITH cand AS"))]
    assert connection.execute_wrappers == []
    for key in keys:
        assert statuses(key) == [Status.SUCCEEDED]


def test_an_invocation_killed_before_its_finish_writes_no_state(published):
    from objects.models import StateChange

    (key,) = keys_in(PARTITION, 1, "killed")
    objects.send("Recorder", key, "append", {"value": 1})
    Invocation.objects.filter(type_name="Recorder", key=key).update(kill_requested=True)  # as a kill would
    drain_pass(PARTITION)
    instance = Instance.objects.get(type_name="Recorder", key=key)
    assert statuses(key) == [Status.KILLED]
    assert (instance.version, objects.call("Recorder", key, "items")) == (0, [])
    assert not StateChange.objects.filter(instance=instance).exists()


def test_a_handler_that_runs_sql_gets_a_savepoint_and_its_failure_undoes_its_writes(published):
    from objects.models import StateEntry

    (key,) = chain_keys_in(PARTITION, 1, "sends")
    ok, failing = keys_in(PARTITION + 1, 2, "sent-to")
    objects.send("Chain", key, "send_then", {"target": ok, "value": 1})
    objects.send("Chain", key, "send_then", {"target": failing, "value": 2, "then_fail": True})
    with CaptureQueriesContext(connection) as queries:
        assert drain_pass(PARTITION).ran == 2
    statements = [q["sql"] for q in queries.captured_queries]
    assert sum(sql.startswith("SAVEPOINT") for sql in statements) == 2  # made before each handler's send
    assert sum(sql.startswith("ROLLBACK TO SAVEPOINT") for sql in statements) == 1
    assert statuses(ok) == [Status.PENDING]  # the first send was kept
    assert not Invocation.objects.filter(type_name="Recorder", key=failing).exists()  # the second undone
    chain_rows = Invocation.objects.filter(type_name="Chain", key=key).order_by("id")
    assert [i.status for i in chain_rows] == [Status.SUCCEEDED, Status.FAILED]
    assert not StateEntry.objects.filter(instance__type_name="Chain", instance__key=key).exists()


def test_the_hot_statements_are_prepared_on_postgresql(published):
    (key,) = keys_in(PARTITION, 1, "prepared")
    for n in range(7):
        objects.send("Recorder", key, "append", {"value": n})
        drain_pass(PARTITION)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("MIN(i.id) AS head" in sql for sql in prepared)  # PostgreSQL no longer plans it each pass
    assert any(sql.startswith("WITH f AS (UPDATE") for sql in prepared)


def test_a_call_accepted_while_a_drain_runs_its_key_does_not_wait_for_the_drain(
    published, drain_in_thread, redis_client
):
    import threading

    from django.db import connections

    (key,) = keys_in(PARTITION, 1, "not-held-up")
    objects.send("Recorder", key, "hold", {"release": "not-held-up"})
    drain = drain_in_thread(PARTITION)
    assert redis_client.blpop([f"entered:{key}"], timeout=10)  # the drain holds the key and runs its handler
    accepted = []

    def accept() -> None:
        try:
            accepted.append(objects.send("Recorder", key, "append", {"value": 1}))
        finally:
            connections.close_all()

    sender = threading.Thread(target=accept)
    sender.start()
    sender.join(10)  # the key's row is locked FOR NO KEY UPDATE: the insert's foreign-key check does not wait
    held_up = sender.is_alive()
    redis_client.rpush("release:not-held-up", 1)
    sender.join(10)
    drain.join(10)
    assert not held_up and accepted
    assert wait_until(lambda: statuses(key) == [Status.SUCCEEDED, Status.SUCCEEDED])


def test_a_call_into_a_key_that_ran_earlier_in_the_pass_sees_and_keeps_its_state(published):
    first, caller = chain_keys_in(PARTITION, 2, "stored-before-next")
    objects.send("Chain", first, "bump")  # runs first in the pass (oldest head): its entry is written after it
    objects.send("Chain", caller, "bump_other_then", {"other": first})  # then calls into `first`
    assert drain_pass(PARTITION).ran == 2
    assert objects.call("Chain", first, "peek") == 2  # neither bump lost: 1 by its own invocation, 1 by the call


def test_a_call_into_a_key_that_runs_later_in_the_pass_is_not_lost_to_the_state_read_ahead(published):
    """The pass reads every key's entries with the inboxes; a key a ctx.call writes before its turn reads again."""
    caller, later = chain_keys_in(PARTITION, 2, "read-ahead")
    objects.send("Chain", later, "bump")  # the key's row exists, with state, before the pass
    assert drain_pass(PARTITION).ran == 1
    objects.send("Chain", caller, "bump_other_then", {"other": later})  # oldest head: runs first, bumps `later`
    objects.send("Chain", later, "bump")  # then `later` runs its own bump in the same pass
    assert drain_pass(PARTITION).ran == 2
    assert objects.call("Chain", later, "peek") == 3  # 1 before, 1 by the call, 1 by its own invocation


def test_a_pass_reads_the_state_of_its_keys_with_their_inboxes(published):
    """One statement per pass for the inboxes and the state of every key (not one state read per key)."""
    keys = keys_in(PARTITION, 3, "one-read")
    for key in keys:
        objects.send("Recorder", key, "append", {"value": 1})
    assert drain_pass(PARTITION).ran == 3
    for key in keys:
        objects.send("Recorder", key, "append", {"value": 2})
    with CaptureQueriesContext(connection) as queries:
        assert drain_pass(PARTITION).ran == 3
    assert not [q for q in queries.captured_queries if "FROM objects_stateentry WHERE instance_id" in q["sql"]]
    for key in keys:
        assert objects.call("Recorder", key, "items") == [1, 2]


def test_a_pass_counts_its_starts_without_a_round_trip_each_and_still_fails_a_crasher(
    published, redis_client, monkeypatch, settings, redis_writes
):
    """The crash limit's counts are read once per pass and written without waiting (crashes.StartCounts)."""
    from objects.signals import notify
    from objects.signals.crashes import start_key

    settings.OBJECTS_CRASH_LIMIT = 3
    keys = keys_in(PARTITION, 2, "starts")
    crasher = objects.send("Recorder", keys[0], "append", {"value": "crashed thrice"})
    redis_client.set(start_key(crasher), 3)  # its worker died in it three times already
    for n in range(3):
        objects.send("Recorder", keys[1], "append", {"value": n})
    round_trips = []
    real = notify.pipelined
    monkeypatch.setattr(notify, "pipelined", lambda commands: round_trips.append(commands) or real(commands))
    writes = redis_writes
    writes.clear()  # from the pass only, not the sends' rings
    assert drain_pass(PARTITION).ran == 4
    # the counts asked for once, on the connection that counts the starts; one round trip: the done signals
    assert sum(b"\r\nMGET\r\n" in w for w in writes) == 1
    assert writes.index(next(w for w in writes if b"MGET" in w)) < writes.index(next(w for w in writes if b"INCR" in w))
    assert len(round_trips) == 1
    assert not [c for commands in round_trips for c in commands if c[0] in ("INCR", "MGET")]
    assert statuses(keys[0]) == [Status.FAILED]
    assert "ended its worker process 3 times" in Invocation.objects.get(type_name="Recorder", key=keys[0]).error_message
    assert objects.call("Recorder", keys[1], "items") == [0, 1, 2]
    counts = [start_key(i.public_id) for i in Invocation.objects.filter(type_name="Recorder", key=keys[1])]
    assert redis_client.exists(*counts) == 0  # each cleared once its handler returned


@pytest.fixture
def redis_writes(monkeypatch):
    """Every packet written to a Redis connection of this process, as bytes, in order."""
    from redis.connection import Connection

    writes: list[bytes] = []
    real = Connection.send_packed_command

    def spy(self, command, check_health=True):
        writes.append(b"".join(command) if isinstance(command, list) else command)
        return real(self, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", spy)
    return writes


def test_each_start_is_counted_in_one_write(published, redis_writes):
    """A start's INCR and EXPIRE (and the previous start's DEL) leave in one packet, one system call."""
    keys = keys_in(PARTITION, 2, "one-write")
    for n in range(3):
        objects.send("Recorder", keys[n % 2], "append", {"value": n})
    writes = redis_writes
    writes.clear()  # from the pass only, not the sends' rings
    assert drain_pass(PARTITION).ran == 3
    starts = [w for w in writes if b"\r\nINCR\r\n" in w]  # not the done signal's metrics (HINCRBY)
    assert len(starts) == 3
    assert all(b"EXPIRE" in w for w in starts)
    assert sum(b"DEL" in w for w in starts) == 1  # the second start of a key forgets the first's count


def test_entries_changed_by_earlier_invocations_of_a_pass_are_written_with_the_last(published, redis_client):
    from objects.models import StateEntry

    (key,) = keys_in(PARTITION, 1, "deferred-entries")
    objects.send("Recorder", key, "append", {"value": 1})  # changes `items`
    objects.send("Recorder", key, "hold", {})  # the key's last invocation in the pass changes `held` only
    assert drain_pass(PARTITION).ran == 2
    rows = StateEntry.objects.filter(instance__type_name="Recorder", instance__key=key)
    assert {row.name: row.value for row in rows} == {"items": [1], "held": True}
    redis_client.delete(f"entered:{key}")


def test_entries_of_a_key_that_stops_early_in_a_pass_are_written(published, settings):
    from objects.models import StateEntry

    settings.OBJECTS_GROUP_BUDGET_MS = 1
    (key,) = keys_in(PARTITION, 1, "stopped-early")
    objects.send("Recorder", key, "hold", {"sleep": 0.01})  # changes `held`, then the key's budget is spent
    objects.send("Recorder", key, "append", {"value": 2})
    first = drain_pass(PARTITION)
    assert (first.ran, first.more) == (1, True)
    rows = StateEntry.objects.filter(instance__type_name="Recorder", instance__key=key)
    assert {row.name for row in rows} == {"held"}
    slow_clear()  # its handler outran the tiny budget; let the group run the rest
    all_quick()
    settings.OBJECTS_GROUP_BUDGET_MS = 200
    while drain_pass(PARTITION).ran:
        pass
    assert objects.call("Recorder", key, "items") == [2]


def test_a_pass_reads_its_keys_inboxes_from_their_heads_not_their_history(published, before_handler):
    """The inbox read starts at the oldest head of the pass's keys: the inbox index keeps the entries of a key's
    finished invocations until the next vacuum, and reading them on every pass made each pass of a busy key
    dearer with every invocation it had run (docs/dev/benchmark-history.md, session 8). The claim leaves that
    head in a setting of the transaction, which the inbox read, sent with it, reads."""
    (key,) = keys_in(PARTITION, 1, "from-head")
    for value in range(5):
        objects.send("Recorder", key, "append", {"value": value})
        assert drain_pass(PARTITION).ran == 1
    objects.send("Recorder", key, "append", {"value": 5}, delay=timedelta(hours=1))  # not due: passed over
    head = objects.send("Recorder", key, "append", {"value": 6})
    head_id = Invocation.objects.get(uid=head.removeprefix("inv_")).pk
    floors = []

    def floor(invocation) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('objects.claimed_floor')")
            floors.append(cursor.fetchone()[0])

    before_handler(floor)
    with CaptureQueriesContext(connection) as queries:
        assert drain_pass(PARTITION).ran == 1
    (inbox,) = [q["sql"] for q in queries.captured_queries if "ROW_NUMBER() OVER" in q["sql"]]
    assert "id >= coalesce(nullif(current_setting('objects.claimed_floor', true)" in inbox
    assert floors == [str(head_id)]
    assert statuses(key) == ["succeeded"] * 5 + ["pending", "succeeded"]
    assert objects.call("Recorder", key, "items") == [0, 1, 2, 3, 4, 6]


@pytest.fixture
def before_handler(monkeypatch):
    """`hook(invocation)` runs just before each handler of a pass runs."""
    from objects.runtime.run import InvocationRun

    hooks: list = []
    real = InvocationRun.execute

    def execute(run):
        for hook in hooks:
            hook(run.invocation)
        return real(run)

    monkeypatch.setattr(InvocationRun, "execute", execute)
    return hooks.append


def test_a_handler_runs_while_the_last_invocation_s_finishing_statement_is_with_postgresql(
    published, before_handler, redis_client
):
    """The finishing statements of handlers that run no SQL of their own are sent without waiting (pipeline mode),
    so PostgreSQL applies one while the worker runs the next handler; the commit reads every result first, and
    each success is counted in the metrics once it commits."""
    from psycopg import pq

    from objects.signals.keys import INVOCATIONS_KEY

    def succeeded() -> int:
        return int(redis_client.hget(INVOCATIONS_KEY, "Recorder|append|succeeded") or 0)

    keys = keys_in(PARTITION, 3, "deferred")
    for n, key in enumerate(keys):
        objects.send("Recorder", key, "append", {"value": n})
    counted = succeeded()
    modes = []
    before_handler(lambda invocation: modes.append(connection.connection.pgconn.pipeline_status))
    assert drain_pass(PARTITION).ran == 3
    assert modes == [pq.PipelineStatus.OFF, pq.PipelineStatus.ON, pq.PipelineStatus.ON]
    assert connection.connection.pgconn.pipeline_status == pq.PipelineStatus.OFF
    assert succeeded() - counted == 3
    assert connection.execute_wrappers == []
    for n, key in enumerate(keys):
        assert statuses(key) == [Status.SUCCEEDED]
        assert objects.call("Recorder", key, "items") == [n]


def test_a_handler_s_own_sql_sees_the_finishing_statements_sent_before_it(published):
    """A statement of the handler's own first settles the pass's unread finishing statements: its ORM update counts
    the rows an earlier invocation of the pass finished."""
    first, noting = keys_in(PARTITION, 2, "settled")
    objects.send("Recorder", first, "append", {"value": 1})
    objects.send("Recorder", first, "append", {"value": 2})
    noted = objects.send("Recorder", noting, "note_succeeded", {"key": first})
    assert drain_pass(PARTITION).ran == 3
    assert Invocation.objects.get(uid=noted.removeprefix("inv_")).output == 2
    assert list(Invocation.objects.filter(type_name="Recorder", key=first).values_list("error_code", flat=True)) == [
        299,
        299,
    ]
    assert objects.call("Recorder", first, "items") == [1, 2]


def test_an_invocation_killed_while_its_pass_runs_loses_the_pass_and_the_next_run_kills_it(
    published, before_handler, caplog
):
    """A kill that lands after the pass read its keys' inboxes: the invocation's deferred finishing statement finishes
    nothing, so the whole pass rolls back and its keys go to per-key drains; the next run finds the kill before the
    handler, and every other invocation is applied once."""
    import threading

    from django.db import connections

    from objects import services
    from objects.models import StateChange

    first, victim_key = keys_in(PARTITION, 2, "killed-mid-pass")
    objects.send("Recorder", first, "append", {"value": "first"})
    objects.send("Recorder", victim_key, "append", {"value": "kept"})
    victim = Invocation.objects.get(uid=objects.send("Recorder", victim_key, "append", {"value": "killed"})[4:])

    killed: list[bool] = []

    def kill_victim(invocation: Invocation) -> None:
        if invocation.key != first or killed:
            return
        killed.append(True)

        def operator() -> None:  # an operator's kill, on a connection of its own, while the pass holds the key
            try:
                services.invocation_kill(invocation=Invocation.objects.get(pk=victim.pk))
            finally:
                connections.close_all()

        thread = threading.Thread(target=operator)
        thread.start()
        thread.join()

    before_handler(kill_victim)
    assert drain_pass(PARTITION).ran == 0  # lost whole
    assert "rolled back" in caplog.text
    assert statuses(first) == [Status.PENDING]
    assert statuses(victim_key) == [Status.PENDING, Status.PENDING]
    handed = {entry[2] for entry in published if entry[0] == "k"}
    assert {first, victim_key} <= handed
    assert drain_pass(PARTITION).ran == 3
    assert statuses(first) == [Status.SUCCEEDED]
    assert statuses(victim_key) == [Status.SUCCEEDED, Status.KILLED]
    assert objects.call("Recorder", first, "items") == ["first"]
    assert objects.call("Recorder", victim_key, "items") == ["kept"]
    instance = Instance.objects.get(type_name="Recorder", key=victim_key)
    assert (instance.version, StateChange.objects.filter(instance=instance).count()) == (1, 1)


def test_a_pass_reads_each_stored_text_whole(published):
    """A pass reads a key's entries as a header of lengths and the texts one after another: names and values
    with newlines, quotes and characters of several bytes, JSON null (stored as SQL NULL or as null), and a
    text stored by hand with spaces all come back as they were."""
    instance = Instance.objects.create(type_name="Ephemeral", key="odd")
    odd = {"s": 'é\n"😀\\ ,', "nested": {"k": [1, 2.5, None, "\u2028"]}}
    StateEntry.objects.create(instance=instance, name='v\n"😀', value=odd)
    StateEntry.objects.create(instance=instance, name="sql null", value=None)
    StateEntry.objects.create(instance=instance, name="json null", value=Value(None, JSONField()))
    hand = StateEntry.objects.create(instance=instance, name="by hand", value=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE objects_stateentry SET value = %s::json WHERE id = %s", ['{ "a" :  [ 1 , "😀" ] }', hand.pk]
        )
    objects.send("Ephemeral", "odd", "entries")
    with CaptureQueriesContext(connection) as queries:
        assert drain_pass(partition_of("Ephemeral", "odd")).ran == 1
    assert not any("FROM objects_stateentry WHERE" in q["sql"] for q in queries.captured_queries)  # read ahead
    assert Invocation.objects.get(type_name="Ephemeral", key="odd").output == {
        'v\n"😀': odd,
        "sql null": None,
        "json null": None,
        "by hand": {"a": [1, "😀"]},
    }


def test_a_pass_opens_with_one_round_trip_for_begin_the_claim_and_the_inbox_read(published, tmp_path):
    """libpq's trace of a pass's connection: BEGIN, the claim and the inbox read leave in one message and come back
    before anything else is sent; then the finishing statement and the COMMIT, a round trip each. Four in all,
    where psycopg's own BEGIN and a statement per round trip made six."""
    from psycopg import pq

    (key,) = keys_in(PARTITION, 1, "round-trips")
    for value in range(6):  # the session's lock timeout set, the statements prepared (as psycopg would: sixth run)
        objects.send("Recorder", key, "append", {"value": value})
        assert drain_pass(PARTITION).ran == 1
    objects.send("Recorder", key, "append", {"value": 6})
    pgconn = connection.connection.pgconn
    path = tmp_path / "trace"
    with open(path, "w") as out:
        pgconn.trace(out.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            assert drain_pass(PARTITION).ran == 1
        finally:
            pgconn.untrace()
    sent = []  # what the client sent before each wait for the server
    for line in path.read_text().splitlines():
        direction, _length, message = line.split("\t")[:3]
        if direction == "F" and (not sent or sent[-1][1]):
            sent.append([[], False])
        if direction == "F":
            sent[-1][0].append(line)
        else:
            sent[-1][1] = True
    opening = "\n".join(sent[0][0])
    assert opening.count("Query") == 1 and "BEGIN; EXECUTE objects_claim_" in opening
    assert "; EXECUTE objects_heads_" in opening
    assert len(sent) == 3  # the opening, the finishing statement, the COMMIT
    assert statuses(key) == [Status.SUCCEEDED] * 7
    assert objects.call("Recorder", key, "items") == list(range(7))


def test_a_pass_after_a_rollback_prepares_its_statements_again_without_losing_the_pass(published, caplog):
    """psycopg deallocates every prepared statement of a session when a transaction on it rolls back, the pass's
    own included: the next pass finds its EXECUTE refused, rolls back, prepares again and runs, in one pass."""
    (key,) = keys_in(PARTITION, 1, "prepared-again")
    for value in range(7):
        objects.send("Recorder", key, "append", {"value": value})
        assert drain_pass(PARTITION).ran == 1

    def prepared() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'objects_%%' ORDER BY name")
            return [row[0] for row in cursor.fetchall()]

    assert len(prepared()) == 2  # the claim and the inbox read
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        Instance.objects.filter(type_name="Recorder", key=key).update(paused_reason="")
        raise ZeroDivisionError
    assert prepared() == []
    objects.send("Recorder", key, "append", {"value": 7})
    assert drain_pass(PARTITION).ran == 1
    assert "rolled back" not in caplog.text
    assert objects.call("Recorder", key, "items") == list(range(8))


def test_without_prepared_statements_a_pass_sends_its_opening_statements_one_by_one(published, monkeypatch):
    """With client-side binding (DATABASE_PREPARE_THRESHOLD empty, for poolers that cannot keep prepared
    statements) nothing is prepared on the session: psycopg's BEGIN, then the claim and the inbox read."""
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "server_side_binding", False)
    keys = keys_in(PARTITION, 2, "one-by-one")
    for key in keys:
        for value in range(7):
            objects.send("Recorder", key, "append", {"value": value})
    for _ in range(7):
        drain_pass(PARTITION)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'objects_%%'")
        assert cursor.fetchone()[0] == 0
    for key in keys:
        assert objects.call("Recorder", key, "items") == list(range(7))
