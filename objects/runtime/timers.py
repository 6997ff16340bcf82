"""What a suspended invocation waits for: awakeables completed (`awakeable_complete`) and named timers armed,
cancelled and re-armed (`ctx.timer`). Below the runtime, which arms timers and completes awakeables for a
handler.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import OperationalError, transaction
from django.utils import timezone

from .. import conf, waits
from ..errors import Conflict, InvalidInput, NotFound, PayloadTooLarge, Unavailable
from ..models import Awakeable, Instance, Invocation, Status
from ..signals.doorbell import ring
from ..store.locks import LOCK_NOT_AVAILABLE, set_lock_timeout
from ..validation import json_size
from .submit import invocation_insert, invocation_submit, ring_on_commit

# -- awakeables ----------------------------------------------------------------------------------------------


def awakeable_find(awakeable_id: str) -> Awakeable:
    """The awakeable with this id, with its invocation: InvalidInput (400) for a malformed id, NotFound (404)."""
    waits.awakeable_id_check(awakeable_id)
    found = Awakeable.objects.select_related("invocation").filter(token=awakeable_id).first()
    if found is None:
        raise NotFound(f"No awakeable {awakeable_id!r}.")
    return found


def awakeable_complete(*, awakeable_id: str, value: Any = None, rejected: bool = False) -> Awakeable:
    """Resolve an awakeable with a JSON `value`, or reject it (`rejected`, `value` the reason), once: Conflict
    (409) when it was completed already. The invocation waiting for it wakes and its key is rung.

    The key's row is locked first, so the completion and the waiter's suspension are ordered: either the
    waiter's attempt sees the completion, or the completion sees the waiter suspended and wakes it."""
    if rejected:
        value = str(value)
        if "\x00" in value:
            raise InvalidInput("The reason must not contain NUL characters.")
    else:
        try:
            size = json_size(value)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"The awakeable's value is not JSON: {exc}") from exc
        limit = conf.get("OBJECTS_MAX_STATE_ENTRY_BYTES")
        if size > limit:
            raise PayloadTooLarge(f"The awakeable's value is {size} bytes; the limit is {limit} bytes.")
    found = awakeable_find(awakeable_id)
    waiter = found.invocation
    now = timezone.now()
    try:
        with transaction.atomic():
            set_lock_timeout()
            list(Instance.objects.select_for_update(no_key=True).filter(pk=waiter.instance_id).values_list("pk"))
            done = Awakeable.objects.filter(pk=found.pk, completed_at__isnull=True).update(
                completed_at=now,
                rejected=rejected,
                value=None if rejected else value,
                failure=value if rejected else "",
            )
            if not done:
                found.refresh_from_db()
                raise Conflict(
                    f"The awakeable {awakeable_id} was already {'rejected' if found.rejected else 'resolved'}."
                )
            woken = Invocation.objects.filter(pk=waiter.pk, status=Status.SUSPENDED, not_before__isnull=True).update(
                not_before=now
            )
            if woken:
                type_name, key, partition = waiter.type_name, waiter.key, waiter.partition
                transaction.on_commit(lambda: ring(type_name, key, partition=partition))
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        raise Unavailable(f"{waiter.type_name}/{waiter.key} is busy; retry shortly.") from None
    return found


# -- named timers --------------------------------------------------------------------------------------------


def timer_arm(
    *,
    invocation: Invocation,
    name: str,
    handler: str,
    arg: Any = None,
    delay: timedelta | float | None = None,
    at: datetime | None = None,
    every: timedelta | float | None = None,
) -> Invocation:
    """Arm the timer `name` of the invocation's key (ctx.timer): a delayed send of `handler` to the key itself,
    replacing the timer of that name that is armed. Written in the invocation's transaction."""
    if not isinstance(name, str) or not 1 <= len(name) <= 100 or "\x00" in name:
        raise InvalidInput("A timer's name must be 1 to 100 characters.")
    if delay is not None and at is not None:
        raise InvalidInput("Give a timer delay= or at=, not both.")
    interval = waits.duration(every, what="timer's interval") if every is not None else None
    if interval is not None and interval < waits.MIN_EVERY:
        raise InvalidInput(f"A timer's interval must be at least {waits.MIN_EVERY.total_seconds():g} s.")
    if at is not None:
        if not isinstance(at, datetime) or timezone.is_naive(at):
            raise InvalidInput("A timer's at= must be a timezone-aware datetime.")
        wait = waits.duration(max(at - timezone.now(), timedelta(0)), what="timer's delay")
    elif delay is not None:
        wait = waits.duration(delay, what="timer's delay")
    elif interval is not None:
        wait = interval
    else:
        raise InvalidInput("ctx.timer needs delay=, at= or every=.")
    timer_cancel(instance_id=invocation.instance_id, name=name, keep=invocation.pk, reason="re-armed")
    armed, _ = invocation_submit(
        type_name=invocation.type_name,
        key=invocation.key,
        handler=handler,
        arg=arg,
        delay=wait,
        caller=invocation,
        timer=(name, interval),
    )
    return armed


def timer_cancel(*, instance_id: int, name: str, keep: int | None = None, reason: str = "cancelled") -> bool:
    """Disarm the key's timer `name` (its pending run is cancelled), except the invocation `keep` (the one
    running); False when none was armed."""
    rows = Invocation.objects.filter(instance_id=instance_id, timer_name=name, status=Status.PENDING)
    if keep is not None:
        rows = rows.exclude(pk=keep)
    message = f"Timer {name!r} {reason}."
    return rows.update(status=Status.CANCELLED, finished_at=timezone.now(), error_message=message, error_code=409) > 0


def timer_rearm(invocation: Invocation, now: datetime) -> Invocation:
    """A periodic timer's next run, after the one that just ran (`every` after its due time; after now when
    that is past already), written in the transaction of that run."""
    every = invocation.timer_every
    assert every is not None
    due = (invocation.not_before or now) + every
    if due <= now:
        due = now + every
    fields = {
        name: getattr(invocation, name)
        for name in (
            "instance_id",
            "type_name",
            "key",
            "handler",
            "kind",
            "partition",
            "input",
            "principal",
            "caller_type",
            "caller_key",
            "timer_name",
            "timer_every",
        )
    }
    following = invocation_insert(Invocation(**fields, not_before=due))
    ring_on_commit(following, due - now)
    return following
