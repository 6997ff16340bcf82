"""The drain of partitions: the inboxes of many keys in one transaction (group commit).

The ingress rings a partition, not a key (objects/signals/doorbell.py): one Celery message per burst of calls to the
partition, whose drain covers every partition its worker consumes. One pass here runs every runnable key it
finds in those partitions, up to OBJECTS_GROUP_KEYS keys, each key's
next OBJECTS_BATCH_SIZE invocations, under one BEGIN/COMMIT. The per-key guarantees are those of
objects/worker/inbox.py, unchanged: each key runs under its row lock, from its head, each invocation in its own
savepoint. What the group adds, and how it keeps the keys independent:
- a key whose row another transaction holds (a per-key drain, a ctx.call callee lock, an edit) is handed to
  a per-key drain (objects.drain) that comes back until the row is free: the group never waits for a lock;
- a key whose head is backing off is not picked until its retry is due (its timed per-key doorbell runs it);
- a pass stops taking keys (and a key stops taking invocations) once it has run for
  OBJECTS_GROUP_BUDGET_MS, and commits; a key with a handler that ran longer than that is run by per-key
  drains for a minute, so a slow handler delays at most the keys of its pass, once, not every later call
  to the partition (a key that is merely busy stays in the group: its next invocations go in the next pass);
- a database error loses the whole pass (nothing of it committed) and hands every key to a per-key drain;
- the finishing statement of a handler that ran no SQL of its own is sent without waiting, so PostgreSQL applies
  it while the next handler runs (objects/store/deferred.py); one that finished nothing (an operator killed or
  cancelled its invocation meanwhile) loses the pass as a database error does.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from .. import conf
from ..models import Instance, Invocation
from ..runtime.state import entries_from_pass, written
from ..signals import notify
from ..signals.crashes import StartCounts
from ..signals.doorbell import ring
from ..store.batch import run_opening
from ..store.db import db, fetchall
from ..store.deferred import Deferred
from ..store.locks import set_lock_timeout
from ..store.passes import PASS_HEADS_SQL, RUNNABLE_KEYS_SQL, claim_text, claimed_heads_sql, keys_lock_sql, pass_sql
from ..store.rows import invocations_from_rows
from . import slowkeys
from .inbox import KeyRunner

log = logging.getLogger("objects.partition")

HAND_OFF_EVERY = 0.5  # seconds between two hand-offs of the same slow key by one process

_handed: dict[tuple[str, str], float] = {}  # (type, key) -> when this process last handed it off


@dataclass(frozen=True)
class Candidate:
    instance_id: int
    type_name: str
    key: str
    partition: int
    head: int = 0  # the id of the key's first invocation to run now; none of its older ones is runnable


@dataclass
class PassResult:
    ran: int = 0
    more: bool = False  # work is left that this pass did not take: the drain goes round again


def drain_pass(partitions: int | list[int]) -> PassResult:
    """One group pass over the runnable keys of one or more partitions (a worker's drain covers all those
    its worker consumes). Safe to run concurrently with anything."""
    if isinstance(partitions, int):
        partitions = [partitions]
    now = timezone.now()
    limit = conf.get("OBJECTS_GROUP_KEYS")
    budget = conf.get("OBJECTS_GROUP_BUDGET_MS") / 1000
    batch = conf.get("OBJECTS_BATCH_SIZE")
    result = PassResult()
    runners: list[KeyRunner] = []
    group: list[Candidate] = []
    busy: list[Candidate] = []
    slow: list[Candidate] = []
    set_lock_timeout()
    try:
        with transaction.atomic():
            candidates, locked, claimed = _claim_keys(partitions, now, limit, batch)
            result.more = len(candidates) == limit
            slow = [c for c in candidates if slowkeys.is_slow(c.type_name, c.key)]
            group = [c for c in candidates if c not in slow]
            busy = [c for c in group if c.instance_id not in locked]
            taken = [c for c in group if c.instance_id in locked]
            texts: dict[int, str | None] | None = None  # each key's state, read with its inbox (PostgreSQL)
            if claimed is None:
                floor = min((c.head for c in taken), default=0)
                heads = _inbox_heads(sorted(c.instance_id for c in taken), now, batch, floor=floor)
            else:
                heads, texts = _heads_from_rows(claimed, {c.instance_id for c in taken})
            starts = StartCounts([i.public_id for mine in heads.values() for i in mine])  # asks Redis, reads later
            states = None if texts is None else {key: entries_from_pass(text) for key, text in texts.items()}
            started = time.monotonic()
            touched: set[int] = set()  # keys whose state a ctx.call writes before their turn
            changed = written.set(touched)
            # one invocation has no next handler to overlap its finishing statement with: it is waited for as before
            deferred = Deferred(db()) if sum(len(mine) for mine in heads.values()) > 1 else None
            try:
                for candidate in group:
                    if candidate.instance_id not in locked:
                        continue
                    if runners and time.monotonic() - started > budget:
                        result.more = True  # the rest of the group is unlocked at commit and taken next pass
                        break
                    mine = heads.get(candidate.instance_id, [])
                    if not slowkeys.handlers_quick(candidate.type_name, [i.handler for i in mine]):
                        slow.append(candidate)  # a handler not seen quick yet: a per-key drain runs it first
                        continue
                    read = None if states is None or candidate.instance_id in touched else states
                    runner = KeyRunner(
                        Instance.built(
                            None, {"id": candidate.instance_id, "type_name": candidate.type_name, "key": candidate.key}
                        ),
                        lazy_savepoint=True,
                        entries=None if read is None else read.get(candidate.instance_id),
                        starts=starts,
                        deferred=deferred,
                    )
                    runners.append(runner)
                    key_started = time.monotonic()
                    complete = runner.run_inbox(mine, now, deadline=key_started + budget)
                    runner.store_state()  # before the next key: its handlers may ctx.call this one
                    if runner.longest > budget:  # one handler outran the budget: per-key drains run it a while
                        slowkeys.mark(candidate.type_name, candidate.key)
                    if not complete or (len(mine) == batch and runner.retry_at is None):
                        result.more = True  # a busy key's next invocations go in the next pass
                if deferred is not None:
                    deferred.check()  # every finishing statement applied, or the pass is lost
            except BaseException:
                if deferred is not None:
                    deferred.settle()
                for runner in runners:
                    runner.clear_start()
                raise
            finally:
                written.reset(changed)
                starts.close()  # before the commit, whose done signals delete the last counts
            finished = [i for runner in runners for i in runner.finished]
            ids = [i.public_id for i in finished]
            outcomes = {i.public_id: text for i in finished if (text := notify.outcome_text(i)) is not None}
            counted = [c for runner in runners if (c := runner.take_counted())]
            transaction.on_commit(lambda: notify.notify_done(ids, outcomes, forget=counted))
    except DatabaseError as exc:
        # A deadlock victim, a lock timeout, a dropped connection: nothing of the pass committed. Its keys go
        # to per-key drains, which retry with growing pauses.
        log.warning("group drain of partitions %s rolled back, handing its keys to per-key drains: %s", partitions, exc)
        connection.close_if_unusable_or_obsolete()
        _ring_keys(group, countdown=0.2)
        return PassResult()
    _hand_off_slow(slow)  # after the commit, which let go of their rows
    for runner in runners:
        if runner.retry_at is not None:  # its head is backing off: a timed doorbell runs it when due
            ring(runner.instance.type_name, runner.instance.key, countdown=runner.retry_at)
    _ring_keys(busy, countdown=0.02)
    result.ran = sum(len(runner.finished) for runner in runners)
    plan_grown(result.ran)
    return result


def _hand_off_slow(candidates: list[Candidate]) -> None:
    """Give slow keys to per-key drains, at most one every HAND_OFF_EVERY seconds per key and process.

    `_handed` holds when the key's last hand-off runs. One still to come covers this pass (it reads the inbox
    after this pass saw it); after one in the past, the next is immediate or timed, never skipped."""
    now = time.monotonic()
    for candidate in candidates:
        address = (candidate.type_name, candidate.key)
        last = _handed.get(address)
        if last is not None and last >= now:
            continue
        due = now if last is None else max(now, last + HAND_OFF_EVERY)
        _handed[address] = due
        _ring_keys([candidate], countdown=(due - now) or None)
    if len(_handed) > 10_000:
        _handed.clear()


def _ring_keys(candidates: list[Candidate], countdown: float | None) -> None:
    for candidate in candidates:
        ring(candidate.type_name, candidate.key, countdown=countdown, partition=candidate.partition, force=True)


_INSTANCE_INDEX = [field.attname for field in Invocation._meta.concrete_fields].index("instance_id")


class _ClaimPlan:
    """When the claim is planned again: after the work this process's passes ran doubles (from FIRST
    invocations on), and at least every EVERY seconds.

    psycopg prepares the claim on its fifth run and PostgreSQL keeps one plan for it until its tables are
    analyzed again; a plan made while they were nearly empty (a worker's first passes on a fresh database)
    scanned every key for each pending invocation once they had grown. A new generation changes the claim's
    text, so it is prepared and planned afresh for the tables as they are; that happens a few times while the
    tables grow, and seldom after."""

    FIRST = 64
    EVERY = 600.0

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.generation, self.ran, self.next, self.at = 0, 0, self.FIRST, time.monotonic()

    def grown(self, ran: int) -> None:
        self.ran += ran
        if self.ran >= self.next or time.monotonic() - self.at > self.EVERY:
            self.generation += 1
            self.next, self.at = max(self.FIRST, 2 * self.ran), time.monotonic()


_claim_plan = _ClaimPlan()
plan_grown = _claim_plan.grown
plan_reset = _claim_plan.reset


def claim_sql(vendor: str, marks: int) -> str:
    """The claim's text for `marks` partitions, in the current plan generation (`_ClaimPlan`)."""
    return claim_text(vendor, marks, _claim_plan.generation)


def _claim_keys(
    partitions: list[int], now: Any, limit: int, batch: int = 1
) -> tuple[list[Candidate], set[int], list[tuple] | None]:
    """The runnable keys (`_runnable_keys`), the ids of those whose rows this transaction now holds (the
    others are held elsewhere, or were paused meanwhile), and on PostgreSQL the rows of the locked keys'
    inboxes and state entries (`_heads_from_rows`; None elsewhere: `_inbox_heads` reads them next). On
    PostgreSQL the transaction's BEGIN, the claim and the inbox read go in one round trip (`CLAIM_SQL`)."""
    connection = db()
    if not connection.features.has_select_for_update_skip_locked:
        candidates = _runnable_keys(partitions, now, limit)
        return candidates, _lock_keys([c.instance_id for c in candidates]) if candidates else set(), None
    when = connection.ops.adapt_datetimefield_value(now)
    rows, claimed = run_opening(
        connection,
        [
            (
                f"claim_{len(partitions)}",
                claim_sql(connection.vendor, len(partitions)),
                [*partitions, when, False, when, limit, False],
            ),
            ("heads", claimed_heads_sql(), [when, batch]),
        ],
    )
    candidates = [Candidate(int(r[0]), r[1], r[2], int(r[3]), int(r[5])) for r in rows]
    return candidates, {int(r[0]) for r in rows if r[4]}, claimed


def _runnable_keys(partitions: list[int], now: Any, limit: int) -> list[Candidate]:
    """Keys of the partitions, oldest head first, that have an invocation to run now: not paused, and not held
    back by a backing-off head that is not due yet."""
    connection = db()
    when = connection.ops.adapt_datetimefield_value(now)
    sql = pass_sql(RUNNABLE_KEYS_SQL, len(partitions))
    with connection.cursor() as cursor:
        cursor.execute(sql, [*partitions, when, False, when, limit])
        rows = cursor.fetchall()
    return [Candidate(int(row[0]), row[1], row[2], int(row[3]), int(row[4])) for row in rows]


def _lock_keys(instance_ids: list[int]) -> set[int]:
    """Lock the keys' rows without waiting; the ids of those locked (held elsewhere or paused: left out)."""
    connection = db()
    sql = keys_lock_sql(connection, len(instance_ids))
    with connection.cursor() as cursor:
        cursor.execute(sql, [*instance_ids, False])
        return {int(row[0]) for row in cursor.fetchall()}


def _inbox_heads(instance_ids: list[int], now: Any, batch: int, *, floor: int = 0) -> dict[int, list[Invocation]]:
    """Where the database has no row locks (the claim's read covers PostgreSQL): the next `batch` invocations of
    each key, in acceptance order, from one statement.

    `floor`: the smallest of the keys' heads (`Candidate.head`). Nothing below it is runnable for these keys
    (finished, or a delayed send not due yet), so the read starts there: the inbox index keeps the entries of
    a key's finished invocations until the table's next vacuum, and reading them on every pass made a key's
    inbox read dearer with each invocation it had run (docs/dev/benchmark-history.md, session 8)."""
    connection = db()
    if not instance_ids:
        return {}
    sql = pass_sql(PASS_HEADS_SQL, len(instance_ids))
    rows = fetchall(connection, sql, [*instance_ids, floor, connection.ops.adapt_datetimefield_value(now), batch])
    return _by_key(rows)


def _heads_from_rows(rows: list[tuple], keys: set[int]) -> tuple[dict[int, list[Invocation]], dict[int, str | None]]:
    """The invocations of the claim's inbox read, by key, of `keys` only (the read also covers the locked keys
    that the pass leaves to per-key drains), and each key's state text, which rides on its first row."""
    texts: dict[int, str | None] = {}
    kept = []
    for row in rows:
        instance_id = int(row[_INSTANCE_INDEX])
        if instance_id in keys:
            texts.setdefault(instance_id, row[-1])
            kept.append(row[:-1])
    return _by_key(kept), texts


def _by_key(rows: list[tuple]) -> dict[int, list[Invocation]]:
    heads: dict[int, list[Invocation]] = {}
    for invocation in invocations_from_rows(rows):
        heads.setdefault(invocation.instance_id, []).append(invocation)
    return heads
