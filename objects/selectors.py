"""Selectors that read: inbox depth, held keys, per-type overview, history, caller chains (admin, metrics, API),
and the public reads of committed state that domain apps use (exported by the `objects` package)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Exists, IntegerField, Min, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import Instance, Invocation, StateChange, StateEntry, Status

INBOX_STATUSES = (Status.PENDING, Status.BACKING_OFF)
OPEN = (Status.PENDING, Status.RUNNING, Status.BACKING_OFF, Status.SUSPENDED)


def _count_subquery(queryset: QuerySet, column: str = "pk", aggregate=Count) -> Coalesce:
    """A correlated per-instance aggregate: one subquery per row instead of joins that multiply rows."""
    inner = queryset.filter(instance=OuterRef("pk")).order_by().values("instance").annotate(n=aggregate(column))
    return Coalesce(Subquery(inner.values("n"), output_field=IntegerField()), Value(0))


def instance_list_annotated(queryset: QuerySet[Instance] | None = None) -> QuerySet[Instance]:
    """Instances with entry_count, state_size and inbox_depth (pending + backing-off invocations)."""
    queryset = Instance.objects.all() if queryset is None else queryset
    return queryset.annotate(
        entry_count=_count_subquery(StateEntry.objects.all()),
        state_size=_count_subquery(StateEntry.objects.all(), "size", Sum),
        inbox_depth=_count_subquery(Invocation.objects.filter(status__in=INBOX_STATUSES, kind="exclusive")),
    )


def instance_held_ids(*, instance_ids: list[int]) -> set[int]:
    """Which of these keys a worker (or an edit) holds right now.

    Probes with a short SELECT ... FOR NO KEY UPDATE SKIP LOCKED: a row it cannot lock is held. The probe's own
    lock lasts one statement; a doorbell arriving in that instant is skipped and re-dispatched by the sweeper.
    """
    if not instance_ids:
        return set()
    with transaction.atomic():
        free = set(
            Instance.objects.select_for_update(skip_locked=True, no_key=True)
            .filter(pk__in=instance_ids)
            .values_list("pk", flat=True)
        )
    return set(instance_ids) - free


@dataclass(frozen=True)
class InboxRow:
    invocation: Invocation
    running: bool


def instance_inbox(*, instance: Instance, limit: int = 100) -> list[InboxRow]:
    """The key's open exclusive invocations, oldest first; the runnable head is `running` when the key is held."""
    rows = list(Invocation.objects.filter(instance=instance, status__in=OPEN, kind="exclusive").order_by("id")[:limit])
    held = bool(rows) and instance.pk in instance_held_ids(instance_ids=[instance.pk])
    now = timezone.now()
    inbox = []
    head_marked = False
    for row in rows:
        running = row.status == Status.RUNNING
        if held and not head_marked and not running and not (row.not_before and row.not_before > now):
            running = head_marked = True
        inbox.append(InboxRow(row, running))
    return inbox


def instance_recent_invocations(*, instance: Instance, limit: int = 20) -> list[Invocation]:
    return list(Invocation.objects.filter(instance=instance).order_by("-id")[:limit])


def instance_history_versions(*, instance: Instance) -> QuerySet:
    """The versions the key's history records, newest first (a queryset of ints, for paging)."""
    return (
        StateChange.objects.filter(instance=instance).order_by("-version").values_list("version", flat=True).distinct()
    )


def instance_history(*, instance: Instance, limit: int = 50, versions: list[int] | None = None) -> list[StateChange]:
    """Committed changes of the key's state (of `versions` only, when given), newest first, with who made them.

    A handler's change is stored with its new value only; its `old_value` is filled in here from the
    previous change of the same entry (that row's new value, or nothing after a clear)."""
    queryset = StateChange.objects.filter(instance=instance)
    if versions is not None:
        queryset = queryset.filter(version__in=versions)
    changes = list(queryset.select_related("user", "invocation").order_by("-id")[:limit])
    for index, change in enumerate(changes):
        if change.action != StateChange.Action.SET or change.old_value is not None or change.user_id is not None:
            continue
        previous = next((c for c in changes[index + 1 :] if c.name == change.name), None)
        if previous is None:
            previous = StateChange.objects.filter(instance=instance, name=change.name, id__lt=change.id).first()
        if previous is not None and previous.action == StateChange.Action.SET:
            change.old_value = previous.new_value
    return changes


def instance_entries(*, instance: Instance) -> list[StateEntry]:
    return list(StateEntry.objects.filter(instance=instance).order_by("name"))


def invocation_awaiting(*, invocation: Invocation) -> dict[str, Any] | None:
    """What a suspended invocation waits for: its awakeables not completed yet (ids) and when its sleep ends
    (None while it waits for an awakeable only); None when it is not suspended."""
    if invocation.status != Status.SUSPENDED:
        return None
    pending = invocation.awakeables.filter(completed_at__isnull=True).order_by("index")
    return {"awakeables": list(pending.values_list("token", flat=True)), "sleep_until": invocation.not_before}


def instance_timers(*, instance: Instance) -> list[dict[str, Any]]:
    """The key's armed timers (ctx.timer), by name: each one's handler, next run, interval and invocation."""
    rows = Invocation.objects.filter(instance=instance, status=Status.PENDING).exclude(timer_name="")
    return [
        {
            "name": row.timer_name,
            "handler": row.handler,
            "next_at": row.not_before or row.created_at,
            "every_seconds": row.timer_every.total_seconds() if row.timer_every is not None else None,
            "invocation_id": row.public_id,
            "invocation_pk": row.pk,
        }
        for row in rows.order_by("timer_name", "id")
    ]


def invocation_caller_chain(*, invocation: Invocation, limit: int = 50) -> list[Invocation]:
    """The callers of an invocation, nearest first (follows `caller` links; stops at a cycle or `limit`)."""
    chain: list[Invocation] = []
    seen = {invocation.pk}
    current = invocation.caller
    while current is not None and current.pk not in seen and len(chain) < limit:
        chain.append(current)
        seen.add(current.pk)
        current = current.caller
    return chain


def type_overview(*, type_names: list[str] | None = None, probe_held: bool = True) -> list[dict[str, Any]]:
    """Per object type: instances, paused keys, and invocations scheduled (a delayed send or timer not yet
    due), waiting (due, not yet run), running, backing off, suspended and failed; the oldest waiting one's age.

    `running` counts committed running rows plus keys held right now that have work (see instance_held_ids).
    `held_by_pause` counts the pending invocations of paused keys: they are neither waiting nor scheduled.
    """
    now = timezone.now()
    instances: dict[str, dict[str, Any]] = {
        row["type_name"]: dict(row)
        for row in Instance.objects.order_by()
        .values("type_name")
        .annotate(n=Count("pk"), paused=Count("pk", filter=Q(paused=True)))
    }
    pending = Q(status=Status.PENDING, instance__paused=False)
    due = Q(not_before__isnull=True) | Q(not_before__lte=now)
    counts = {
        row["type_name"]: row
        for row in Invocation.objects.order_by()
        .values("type_name")
        .annotate(
            waiting=Count("pk", filter=pending & due),
            scheduled=Count("pk", filter=pending & ~due),
            held_by_pause=Count("pk", filter=Q(status=Status.PENDING, instance__paused=True)),
            running=Count("pk", filter=Q(status=Status.RUNNING)),
            backing_off=Count("pk", filter=Q(status=Status.BACKING_OFF)),
            suspended=Count("pk", filter=Q(status=Status.SUSPENDED)),
            failed=Count("pk", filter=Q(status=Status.FAILED)),
            oldest_waiting=Min("created_at", filter=pending & due),
        )
    }
    names = sorted(set(type_names or []) | set(instances) | set(counts))
    held_by_type: dict[str, int] = {}
    if probe_held:
        busy = dict(
            Instance.objects.filter(invocations__status__in=INBOX_STATUSES, paused=False)
            .order_by()
            .values_list("pk", "type_name")
            .distinct()[:500]
        )
        for pk in instance_held_ids(instance_ids=list(busy)):
            held_by_type[busy[pk]] = held_by_type.get(busy[pk], 0) + 1
    rows = []
    for name in names:
        row: dict[str, Any] = dict(counts.get(name, {}))
        oldest: datetime | None = row.get("oldest_waiting")
        held = held_by_type.get(name, 0)
        rows.append(
            {
                "type_name": name,
                "instances": instances.get(name, {}).get("n", 0),
                "paused": instances.get(name, {}).get("paused", 0),
                "held_by_pause": row.get("held_by_pause", 0),
                "scheduled": row.get("scheduled", 0),
                "waiting": max(0, row.get("waiting", 0) - held),
                "running": row.get("running", 0) + held,
                "backing_off": row.get("backing_off", 0),
                "suspended": row.get("suspended", 0),
                "failed": row.get("failed", 0),
                "oldest_waiting_age": (now - oldest) if oldest else None,
            }
        )
    return rows


def inbox_depth_by_type() -> dict[str, tuple[int, timedelta | None]]:
    """Per type: invocations waiting (pending + backing-off) and the age of the oldest pending one."""
    now = timezone.now()
    rows = (
        Invocation.objects.filter(status__in=INBOX_STATUSES)
        .order_by()
        .values("type_name")
        .annotate(depth=Count("pk"), oldest=Min("created_at", filter=Q(status=Status.PENDING)))
    )
    return {r["type_name"]: (r["depth"], (now - r["oldest"]) if r["oldest"] else None) for r in rows}


# The public reads (exported by objects/__init__.py): what a domain app reads of its objects' committed state
# without the app's models.


def instance_exists(type_name: str, key: str) -> bool:
    """Whether the key has an instance (it was called, or its state set, at least once)."""
    return Instance.objects.filter(type_name=type_name, key=key).exists()


def instance_paused(type_name: str, key: str) -> bool:
    """Whether an operator paused the key: its exclusive invocations wait until it is resumed."""
    return Instance.objects.filter(type_name=type_name, key=key, paused=True).exists()


def instance_keys(
    type_name: str, *, prefix: str = "", where: dict[str, Any] | None = None, newest_first: bool = False
) -> list[str]:
    """The type's keys that start with `prefix` and whose committed state holds each entry of `where` with that
    value; by key, or newest instance first."""
    queryset = Instance.objects.filter(type_name=type_name)
    if prefix:
        queryset = queryset.filter(key__startswith=prefix)
    for name, value in (where or {}).items():
        entry = StateEntry.objects.filter(instance=OuterRef("pk"), name=name, value=value)
        queryset = queryset.filter(Exists(entry))
    order = ("-created_at", "-id") if newest_first else ("key",)
    return list(queryset.order_by(*order).values_list("key", flat=True))


def state_read(type_name: str, key: str, *names: str) -> dict[str, Any]:
    """The key's committed state: every entry, or those of `names` that exist; {} for a key never written."""
    entries = StateEntry.objects.filter(instance__type_name=type_name, instance__key=key)
    if names:
        entries = entries.filter(name__in=names)
    return dict(entries.values_list("name", "value"))


def state_values(type_name: str, keys: list[str], name: str) -> dict[str, Any]:
    """One entry's committed value for each of `keys` that has it: {key: value}."""
    if not keys:
        return {}
    rows = StateEntry.objects.filter(instance__type_name=type_name, instance__key__in=keys, name=name)
    return dict(rows.values_list("instance__key", "value"))
