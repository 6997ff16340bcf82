"""The periodic sweeper: re-dispatches lost doorbells, due sends and suspended invocations due to wake, expires
idempotency keys, idle state, old history and old finished invocations, and deletes key rows left with nothing in
them. Idempotent and safe to run on any number of hosts at once."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from prometheus_client import Counter

from .. import conf
from ..models import DONE_STATUSES, Instance, Invocation, StateChange, StateEntry, Status
from ..registry import all_objects
from ..runtime.state import StateCache
from ..signals import notify, tally
from ..signals.doorbell import ring
from ..signals.keys import SWEEPER_KEY

log = logging.getLogger("objects.sweeper")
# Not in the default registry: the exposed value is the cross-process one kept in Redis.
SWEEPER_ACTIONS = Counter("objects_sweeper_actions", "Actions taken by the sweeper.", ["action"], registry=None)


def record_sweep(counts: dict[str, int]) -> None:
    """Count a sweep's actions here and in Redis (so that the web process's /metrics sees every worker's), with
    the invocation metrics this process has counted and not sent yet."""
    for action, count in counts.items():
        if count:
            SWEEPER_ACTIONS.labels(action=action).inc(count)
    commands = [("HINCRBY", SWEEPER_KEY, action, count) for action, count in counts.items() if count]
    commands += tally.commands()
    if not commands:
        return
    try:
        notify.pipelined(commands)
    except Exception as exc:  # noqa: BLE001 - metrics never break the sweeper
        log.warning("sweeper metrics not recorded in Redis: %s", exc)


def sweep(limit: int = 1000) -> dict[str, int]:
    now = timezone.now()
    counts = {
        "redispatched": redispatch(now, limit),
        "idempotency_expired": Invocation.objects.filter(
            idempotency_key__isnull=False, idempotency_expires_at__lt=now
        ).update(idempotency_key=None),
        "state_expired": expire_state(now, limit),
        "history_deleted": StateChange.objects.filter(at__lt=now - conf.get("OBJECTS_HISTORY_RETENTION")).delete()[0],
        "invocations_deleted": delete_finished(now, limit),
        "instances_deleted": delete_idle_instances(now, limit),
    }
    if any(counts.values()):
        log.info("sweep: %s", counts)
    record_sweep(counts)
    return counts


def delete_finished(now: object, limit: int) -> int:
    """Delete up to `limit` invocations finished longer than OBJECTS_INVOCATION_RETENTION ago, oldest first,
    except those whose idempotency key is still remembered (a repeat must find them until it expires). Their
    journal goes with them; history rows and callees keep their own rows, without the link. Without it the
    invocation table, and the queue's indexes over it, grow with every invocation ever run."""
    cutoff = now - conf.get("OBJECTS_INVOCATION_RETENTION")  # type: ignore[operator]
    old = (
        Invocation.objects.filter(
            status__in=DONE_STATUSES, created_at__lt=cutoff, finished_at__lt=cutoff, idempotency_key__isnull=True
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    ids = list(old)
    if not ids:
        return 0
    deleted = Invocation.objects.filter(pk__in=ids).delete()[1]
    return deleted.get(Invocation._meta.label, 0)


IDLE_INSTANCE_AGE = timedelta(hours=1)


def delete_idle_instances(now: object, limit: int) -> int:
    """Delete up to `limit` key rows with nothing worth keeping, oldest first: no state entry, no invocation of
    any status (finished ones go after OBJECTS_INVOCATION_RETENTION, later while their idempotency key is
    remembered), no state history (kept for OBJECTS_HISTORY_RETENTION), not paused (an operator's decision),
    and neither made nor changed in the last IDLE_INSTANCE_AGE (a new key's row is made just before its
    first invocation). Such a row is what a key called once, long ago, leaves behind (a send to a random
    key, a cart emptied and expired): without this the key table grows with every key ever named. The rows are
    locked (SKIP LOCKED: a key being run is left for a later sweep) and checked again under the lock; an
    invocation inserted for such a key meanwhile waits for the lock and then fails (nothing accepted is lost:
    its request gets an error and a retry makes the row again)."""
    cutoff = now - IDLE_INSTANCE_AGE  # type: ignore[operator]
    idle = (
        Instance.objects.filter(paused=False, created_at__lt=cutoff)
        .filter(Q(changed_at__isnull=True) | Q(changed_at__lt=cutoff))
        .exclude(Exists(StateEntry.objects.filter(instance=OuterRef("pk"))))
        .exclude(Exists(Invocation.objects.filter(instance=OuterRef("pk"))))
        .exclude(Exists(StateChange.objects.filter(instance=OuterRef("pk"))))
    )
    with transaction.atomic():
        ids = list(
            idle.order_by("created_at", "pk").select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit]
        )
        if not ids:
            return 0
        deleted = idle.filter(pk__in=ids).delete()[1]
    return deleted.get(Instance._meta.label, 0)


def redispatch(now: object, limit: int) -> int:
    """Ring the doorbell of every unpaused key whose runnable head has waited longer than it should."""
    stale = now - timedelta(seconds=conf.get("OBJECTS_REDISPATCH_AFTER"))  # type: ignore[operator]
    due = (
        Q(status=Status.PENDING, not_before__isnull=True, created_at__lt=stale)
        | Q(status=Status.PENDING, not_before__lte=now)
        | Q(status=Status.BACKING_OFF, not_before__lte=now)
        | Q(status=Status.SUSPENDED, not_before__lte=now)  # a sleep that is over, an awakeable completed
    )
    keys = (
        Invocation.objects.filter(due, instance__paused=False)
        .values_list("type_name", "key", "partition")
        .distinct()[:limit]
    )
    count = 0
    for type_name, key, partition in keys:
        count += ring(type_name, key, partition=partition, force=True)
    return count


def expire_state(now: object, limit: int) -> int:
    """Clear the state of instances idle longer than their type's state_ttl, under the key's lock."""
    cleared = 0
    for obj in all_objects():
        if obj.state_ttl is None:
            continue
        idle = (
            Instance.objects.filter(
                type_name=obj.name,
                changed_at__lt=now - obj.state_ttl,  # type: ignore[operator]
                entries__isnull=False,
            )
            .values_list("pk", flat=True)
            .distinct()[:limit]
        )
        for pk in idle:
            with transaction.atomic():
                instance = Instance.objects.select_for_update(skip_locked=True, no_key=True).filter(pk=pk).first()
                if instance is None or instance.changed_at is None or instance.changed_at >= now - obj.state_ttl:  # type: ignore[operator]
                    continue
                state = StateCache.for_instance(instance.pk, type_name=obj.name)
                state.clear_all()
                version = state.flush()
                if version is not None:  # live watchers see the expiry too (objects/watch.py)
                    notify.state_changed(obj.name, instance.key, version)
                    transaction.on_commit(notify.publish_changes)
                cleared += 1
    return cleared
