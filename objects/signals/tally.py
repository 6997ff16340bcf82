"""Cumulative invocation metrics in Redis: each finish (and each retried attempt) is counted once its
transaction commits, and sent with the done signal's round trip; /metrics reads them (objects/metrics.py),
so every process sees every worker's counts and deleting old rows never lowers them."""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction

from .keys import DURATION_KEY, INVOCATIONS_KEY, LATENCY_KEY, RETRIES_KEY

# histogram -> its hash: "type|handler|<bucket>" -> invocations in that bucket alone (not cumulative; "inf" past
# the last bound), "type|handler|sum" -> microseconds
HISTOGRAM_KEYS = {
    "objects_handler_duration_seconds": DURATION_KEY,
    "objects_end_to_end_latency_seconds": LATENCY_KEY,
}
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RAN = ("succeeded", "failed")  # the outcomes of a handler that ran: those with a duration

_lock = threading.Lock()
_committed: Counter[tuple[str, str]] = Counter()  # (hash, field) -> increment: committed, not sent yet


def finished(invocation: Any) -> None:
    """Count a finished invocation (its status, timestamps set) when the current transaction commits (at once
    outside one; never when it, or the savepoint around this call, rolls back)."""
    labels = f"{invocation.type_name}|{invocation.handler}"
    status = str(invocation.status)
    counts: Counter[tuple[str, str]] = Counter({(INVOCATIONS_KEY, f"{labels}|{status}"): 1})
    if status in RAN and invocation.finished_at is not None:
        starts = (invocation.started_at or invocation.finished_at, invocation.created_at or invocation.finished_at)
        for key, start in zip(HISTOGRAM_KEYS.values(), starts, strict=True):
            seconds = _seconds(invocation.finished_at, start)
            index = bisect.bisect_left(BUCKETS, seconds)
            counts[(key, f"{labels}|{index if index < len(BUCKETS) else 'inf'}")] += 1
            counts[(key, f"{labels}|sum")] += round(seconds * 1_000_000)
    transaction.on_commit(partial(_commit, counts))


def retried(invocation: Any) -> None:
    """Count a failed attempt that will be retried, when the current transaction commits."""
    transaction.on_commit(partial(_commit, Counter({(RETRIES_KEY, f"{invocation.type_name}|{invocation.handler}"): 1})))


def _seconds(end: datetime, start: datetime) -> float:
    return max((end - start).total_seconds(), 0.0)  # another host's clock may run ahead


def _commit(counts: Counter[tuple[str, str]]) -> None:
    with _lock:
        _committed.update(counts)


def commands() -> list[tuple[Any, ...]]:
    """The committed counts not sent yet, as Redis commands, taken: the caller sends them (`notify_done` with its
    signals). Counts whose round trip fails are lost, as a signal is: the metrics are not the source of truth."""
    global _committed
    with _lock:
        taken, _committed = _committed, Counter()
    return [("HINCRBY", key, field, count) for (key, field), count in taken.items()]


def labels_of(field: str) -> list[str]:
    return field.split("|")
