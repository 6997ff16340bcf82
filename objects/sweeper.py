"""The periodic sweeper: re-dispatches lost doorbells and due sends, expires idempotency keys, idle state
and old history. Idempotent and safe to run on any number of hosts at once."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from . import conf
from .models import Instance, Invocation, StateChange, Status
from .registry import all_objects
from .state import StateCache
from .tasks import ring

log = logging.getLogger("objects.sweeper")


def sweep(limit: int = 1000) -> dict[str, int]:
    now = timezone.now()
    counts = {
        "redispatched": redispatch(now, limit),
        "idempotency_expired": Invocation.objects.filter(
            idempotency_key__isnull=False, idempotency_expires_at__lt=now
        ).update(idempotency_key=None),
        "state_expired": expire_state(now, limit),
        "history_deleted": StateChange.objects.filter(at__lt=now - conf.get("OBJECTS_HISTORY_RETENTION")).delete()[0],
    }
    if any(counts.values()):
        log.info("sweep: %s", counts)
    from .metrics import record_sweep

    record_sweep(counts)
    return counts


def redispatch(now: object, limit: int) -> int:
    """Ring the doorbell of every unpaused key whose runnable head has waited longer than it should."""
    stale = now - timedelta(seconds=conf.get("OBJECTS_REDISPATCH_AFTER"))  # type: ignore[operator]
    due = (
        Q(status=Status.PENDING, not_before__isnull=True, created_at__lt=stale)
        | Q(status=Status.PENDING, not_before__lte=now)
        | Q(status=Status.BACKING_OFF, not_before__lte=now)
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
                state = StateCache.for_instance(instance.pk)
                state.clear_all()
                state.flush()
                cleared += 1
    return cleared
