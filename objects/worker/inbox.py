"""The inbox of a key: run its pending invocations in acceptance order under the key's row lock.

Guarantees (docs/architecture.md) and their preconditions:
- Exclusive per key: the worker holds the key's Instance row lock (SELECT ... FOR NO KEY UPDATE SKIP LOCKED) for
  the whole transaction in which it runs the key's inbox, from the head, in acceptance (id) order. (NO KEY: the
  lock excludes every other drain, call and edit of the key, but not the foreign-key checks of invocations
  inserted for it meanwhile, which would otherwise wait for the drain's commit.)
- All or nothing: each invocation runs in its own savepoint; a failure rolls it back and only the failure is
  recorded. A backing-off head holds back the key's later invocations; so does a suspended one (a sleep, an
  awakeable), whose attempt is rolled back and which runs again from the start when it wakes.
- Doorbells carry no invocation: duplicated, reordered or lost ones cannot change order or outcome.
"""

from __future__ import annotations

import logging
import time
import traceback
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from .. import conf
from ..errors import InvocationKilled, NotFound, ObjectsError, Suspended, TerminalError
from ..models import Instance, Invocation, Status
from ..runtime.outcome import finish, finish_succeeded
from ..runtime.run import Frame, InvocationRun
from ..runtime.state import StateCache
from ..runtime.submit import resolve
from ..runtime.timers import timer_rearm
from ..signals import notify, tally
from ..signals.crashes import StartCounts, start_key
from ..signals.doorbell import ring
from ..store.deferred import Deferred
from ..store.locks import set_lock_timeout
from ..store.rows import inbox_heads, key_lock
from ..store.savepoints import LazySavepoint
from . import slowkeys

log = logging.getLogger("objects.inbox")


WAKE_RING_LIMIT = 3600  # seconds: a sleep that ends later is woken by the sweeper (as a delayed send is)


def backoff_delay(attempts: int) -> float:
    delay = conf.get("OBJECTS_RETRY_INITIAL_DELAY") * conf.get("OBJECTS_RETRY_FACTOR") ** max(attempts - 1, 0)
    return float(min(delay, conf.get("OBJECTS_RETRY_MAX_DELAY")))


class KeyRunner:
    """Runs the inbox of one locked key."""

    def __init__(
        self,
        instance: Instance,
        *,
        lazy_savepoint: bool = False,
        entries: dict[str, str] | None = None,
        starts: StartCounts,
        deferred: Deferred | None = None,
    ) -> None:
        self.instance = instance
        # A group pass on PostgreSQL makes a handler's savepoint only when the handler runs SQL of its own (its
        # state writes and its finish are one conditional statement that needs none); a per-key drain always
        # makes one, so it can record the failure of a statement that would lose a whole group pass. A group
        # pass also writes the key's entry rows once, with its last invocation in hand (or `store_state` when the
        # key stopped before it); each invocation still records its version and history row.
        self.lazy_savepoint = lazy_savepoint and connection.vendor == "postgresql"
        # `entries`: read ahead by the pass (else read when needed)
        self.state = StateCache(instance.pk, entries, type_name=instance.type_name)
        self.finished: list[Invocation] = []
        self.retry_at: float | None = None
        self.longest = 0.0  # seconds the slowest handler run here took
        self._counted: str | None = None  # the start counter of the handler run last, not yet cleared
        self.starts = starts  # the drain's start counts (crash limit), one round trip per drain
        self.deferred = deferred  # a group pass's deferred finishing statements (objects/store/deferred.py)

    def count_start(self, invocation: Invocation) -> int:
        """Count a start of `invocation` in Redis and clear the previous handler's count (`StartCounts`).

        A count survives only when the process died while that handler ran (SIGKILL, out of memory, a crash):
        a handler that returns or raises is cleared when the next one starts, or with the done signal after
        the batch commits, or at once when the batch fails.
        Returns the count, 0 when Redis is unreachable (then there is no crash protection for this run).
        """
        count = self.starts.count(invocation.public_id, self._counted)
        self._counted = start_key(invocation.public_id) if count else None
        return count

    def store_state(self) -> None:
        """Write the key's entry rows as its invocations of this pass left them (see `lazy_savepoint`)."""
        self.state.store()

    def take_counted(self) -> str | None:
        """Hand the last handler's start count over to be deleted with the done signal, after commit."""
        counted, self._counted = self._counted, None
        return counted

    def clear_start(self) -> None:
        if self._counted:
            self.starts.forget(self._counted)  # on the connection that counted it, so after the count
            self._counted = None

    def _crashed_too_often(self, invocation: Invocation) -> bool:
        starts = self.count_start(invocation)
        limit = conf.get("OBJECTS_CRASH_LIMIT")
        if starts <= limit:
            return False
        self.clear_start()
        error = TerminalError(
            f"Invocation {invocation.public_id} ended its worker process {starts - 1} times while its handler "
            f"{invocation.type_name}.{invocation.handler} ran (killed, out of memory or crashed), so it was "
            "failed to let the key's later invocations run. Fix the handler, then retry it from the admin.",
            500,
        )
        log.error("%s", error.message)
        if finish(invocation, Status.FAILED, error=error, only_if_open=True):
            self.finished.append(invocation)
        return True

    def run_inbox(self, heads: list[Invocation], now: Any, deadline: float | None = None) -> bool:
        """Run the key's next invocations in order; a delayed send is passed over, a backing-off head stops
        the key (`retry_at` says when it is due), a suspended one runs first when it is due and holds back the
        rest while it is not. With a `deadline` (time.monotonic()), it stops once past it, after at least one
        invocation, and returns False (some of `heads` were left for later)."""
        suspended = Status.SUSPENDED.value
        try:
            for index, invocation in enumerate(heads):
                if invocation.status == suspended:  # it holds the key: it runs first, or nothing does
                    if invocation.kill_requested:  # killed while another transaction held the key
                        self._discard(invocation)
                        self.finished.append(invocation)
                        heads = [i for i in heads if i is not invocation]
                        break
                    if invocation.not_before is None or invocation.not_before > now:
                        return True  # its own timed doorbell, or its awakeable's, wakes it
                    if index:
                        heads = [invocation, *(i for i in heads if i is not invocation)]
                    break
            for index, invocation in enumerate(heads):
                if deadline is not None and index and time.monotonic() > deadline:
                    return False
                if invocation.not_before and invocation.not_before > now:
                    if invocation.status == Status.BACKING_OFF:
                        self.retry_at = (invocation.not_before - now).total_seconds()
                        break
                    continue
                started = time.monotonic()
                go_on = self.run(invocation, last=index == len(heads) - 1)
                self.longest = max(self.longest, time.monotonic() - started)
                if not go_on:
                    break
        except BaseException:
            self.clear_start()  # only a process that dies mid-handler leaves a start counted
            raise
        return True

    def run(self, invocation: Invocation, last: bool = True) -> bool:
        """Run one invocation in a savepoint. Returns False when the key must stop (a retry is due). `last`: the
        key's last invocation in hand, whose finishing statement also writes the entry rows (see `__init__`)."""
        if invocation.kill_requested:  # killed before its turn (read under the key's lock): it does not run
            self._discard(invocation)
            self.finished.append(invocation)
            return True
        try:
            handler = resolve(invocation.type_name, invocation.handler)
        except NotFound as exc:
            finish(
                invocation,
                Status.FAILED,
                error=TerminalError(f"{exc} (it was removed after acceptance)", 404),
                only_if_open=True,
            )
            self.finished.append(invocation)
            return True
        if self._crashed_too_often(invocation):
            return True
        if self.lazy_savepoint:
            self.state.load()  # before the handler: the state read is not the handler's own SQL
        snapshot = self.state.snapshot()
        frame = Frame(invocation.type_name, invocation.key, invocation.handler, handler.kind == "exclusive")
        run = InvocationRun(invocation, handler, self.state, (frame,))
        invocation.started_at = invocation.started_at or timezone.now()
        guard = LazySavepoint() if self.lazy_savepoint else None
        try:
            with guard or transaction.atomic():
                output = run.execute()
                if guard is not None:
                    guard.handler_done()
                entries = last or not self.lazy_savepoint
                deferred = self.deferred if guard is not None and guard.sid is None else None
                if not finish_succeeded(invocation, self.state, output, entries=entries, deferred=deferred):
                    raise InvocationKilled()
        except Suspended as wait:
            self.state.restore(snapshot)
            return self._suspend(invocation, run, wait)
        except InvocationKilled:
            self.state.restore(snapshot)
            self._discard(invocation)
        except ObjectsError as exc:  # TerminalError, or a refused write (oversized entry, bad input): final
            self.state.restore(snapshot)
            if not finish(invocation, Status.FAILED, error=exc, only_if_open=True):
                self._discard(invocation)
            elif invocation.timer_every is not None:
                timer_rearm(invocation, timezone.now())  # a periodic timer outlives one failed run
        except Exception as exc:  # noqa: BLE001 - any other error is retryable by contract
            if isinstance(exc, DatabaseError) and guard is not None and guard.sid is None:
                raise  # our own statement failed with no savepoint to return to: the pass is lost whole
            self.state.restore(snapshot)
            run.journal_rewrite()
            return self._retry_or_fail(invocation, exc)
        if invocation.timer_every is not None and invocation.timer_name not in run.timers_touched:
            timer_rearm(invocation, timezone.now())  # a periodic timer: its next run, with this one
        self.finished.append(invocation)
        return True

    def _suspend(self, invocation: Invocation, run: InvocationRun, wait: Suspended) -> bool:
        """The handler waits: keep its journal, mark it suspended (until a time, or until an awakeable is
        completed), and stop the key (its later invocations wait behind it). A timed doorbell wakes a sleep."""
        run.journal_rewrite()
        now = timezone.now()
        until: Any = wait.until
        suspended = Invocation.objects.filter(
            pk=invocation.pk, status__in=[Status.PENDING, Status.BACKING_OFF, Status.SUSPENDED], kill_requested=False
        ).update(status=Status.SUSPENDED, not_before=until, started_at=invocation.started_at or now)
        if not suspended:  # an operator killed it meanwhile
            self._discard(invocation)
            self.finished.append(invocation)
            return True
        invocation.status, invocation.not_before = Status.SUSPENDED, until
        if until is not None:
            seconds = max((until - now).total_seconds(), 0.0)
            if seconds <= WAKE_RING_LIMIT:  # later ones: the sweeper releases them when due
                self.retry_at = seconds
        return False

    def _discard(self, invocation: Invocation) -> None:
        """The operator cancelled or killed it while it ran: keep the operator's status."""
        now = timezone.now()
        if (
            Invocation.objects.filter(pk=invocation.pk, kill_requested=True)
            .exclude(status__in=[Status.CANCELLED, Status.KILLED])
            .update(status=Status.KILLED, finished_at=now)
        ):
            invocation.status, invocation.finished_at = Status.KILLED, now
            tally.finished(invocation)

    def _retry_or_fail(self, invocation: Invocation, exc: Exception) -> bool:
        attempts = invocation.attempts + 1
        error_fields = {
            "attempts": attempts,
            "error_message": f"{type(exc).__name__}: {exc}",
            "error_code": 500,
            "error_type": type(exc).__name__,
            "error_traceback": "".join(traceback.format_exception(exc)),
        }
        open_rows = Invocation.objects.filter(
            pk=invocation.pk, status__in=[Status.PENDING, Status.BACKING_OFF, Status.SUSPENDED], kill_requested=False
        )
        if attempts >= conf.get("OBJECTS_RETRY_MAX_ATTEMPTS"):
            now = timezone.now()
            if open_rows.update(status=Status.FAILED, finished_at=now, **error_fields):
                for name, value in {"status": Status.FAILED, "finished_at": now, **error_fields}.items():
                    setattr(invocation, name, value)  # as committed: its done signal may carry the outcome
                tally.finished(invocation)
                if invocation.timer_every is not None:
                    timer_rearm(invocation, now)
            self.finished.append(invocation)
            return True
        delay = backoff_delay(attempts)
        if open_rows.update(
            status=Status.BACKING_OFF, not_before=timezone.now() + timedelta(seconds=delay), **error_fields
        ):
            tally.retried(invocation)
        log.info("invocation %s failed (attempt %s), retrying in %.2fs: %s", invocation.public_id, attempts, delay, exc)
        self.retry_at = delay
        return False


class DrainResult:
    DONE = "done"  # the inbox is empty, blocked by a backing-off head, or the key is paused
    BUSY = "busy"  # another transaction holds the key's row (a drain, a ctx.call callee lock, an edit)
    BLOCKED = "blocked"  # the head is backing off; a timed doorbell is scheduled for its retry


def drain_key(type_name: str, key: str) -> tuple[int, str]:
    """Run the inbox of (type, key) until it is empty, blocked or paused. Returns (ran, DONE|BUSY).

    Safe to call any number of times, concurrently, with duplicated or reordered doorbells: whoever holds
    the row lock runs the inbox from its head. BUSY means another transaction held the row: the caller
    must try again shortly (the holder may be a ctx.call or an edit that will not drain the inbox).
    """
    total = 0
    while True:
        ran, full, retry_in, busy = _drain_batch(type_name, key)
        total += ran
        if busy:
            return total, DrainResult.BUSY
        if retry_in is not None:
            ring(type_name, key, countdown=retry_in)
            return total, DrainResult.BLOCKED
        if ran == 0 or not full:
            return total, DrainResult.DONE


def _drain_batch(type_name: str, key: str) -> tuple[int, bool, float | None, bool]:
    batch = conf.get("OBJECTS_BATCH_SIZE")
    set_lock_timeout()
    try:
        with transaction.atomic():
            locked = key_lock(type_name, key)
            if locked is None:
                busy = Instance.objects.filter(type_name=type_name, key=key).exists()
                return 0, False, None, busy
            instance_id, paused = locked
            if paused:
                return 0, False, None, False
            now = timezone.now()
            heads = inbox_heads(instance_id, now, batch)
            starts = StartCounts([i.public_id for i in heads])
            runner = KeyRunner(Instance(pk=instance_id, type_name=type_name, key=key, paused=False), starts=starts)
            try:
                runner.run_inbox(heads, now)
            finally:
                starts.close()  # before the commit, whose done signal deletes the last count
            if runner.longest > conf.get("OBJECTS_GROUP_BUDGET_MS") / 1000:
                slowkeys.mark(type_name, key)  # still slow: keep it out of the group drain
            else:
                slowkeys.note_quick(type_name, [i.handler for i in runner.finished])
            finished = [i.public_id for i in runner.finished]
            outcomes = {i.public_id: text for i in runner.finished if (text := notify.outcome_text(i)) is not None}
            counted = [c] if (c := runner.take_counted()) else None
            transaction.on_commit(lambda: notify.notify_done(finished, outcomes, forget=counted))
    except DatabaseError as exc:
        # The transaction was lost (a deadlock victim, a lock timeout, a dropped connection): nothing of it
        # committed, so running the batch again later is safe.
        log.warning("drain of %s/%s rolled back, retrying: %s", type_name, key, exc)
        connection.close_if_unusable_or_obsolete()
        time.sleep(0.05)
        return 0, False, 0.2, False
    return len(runner.finished), len(heads) == batch, runner.retry_at, False
