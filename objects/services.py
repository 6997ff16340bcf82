"""Services that write: accept invocations, operate on them (cancel, kill, retry), pause keys, edit state.

Each is a plain function with keyword-only arguments; views, admin actions and tasks call these.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db import OperationalError, transaction
from django.utils import timezone

from . import conf
from .errors import Conflict, InvalidInput, NotFound
from .models import Instance, Invocation, Status
from .runtime.state import StateCache
from .runtime.submit import (
    fresh_statement,
    instance_id_ensure,
    invocation_insert,
    invocation_insert_fresh,
    invocation_submit,
    principal_json,
)
from .runtime.timers import awakeable_complete, awakeable_find, timer_arm, timer_cancel, timer_rearm
from .signals import notify, tally
from .signals.crashes import start_key
from .signals.doorbell import ring
from .store.locks import LOCK_NOT_AVAILABLE, set_lock_timeout
from .validation import check_entry_size, validate_key

# Accepting invocations and completing what they wait for live below the runtime (objects/runtime/submit.py,
# objects/runtime/timers.py), which uses them for a handler's sends, timers and awakeables; this is their public home.
__all__ = [
    "awakeable_complete",
    "awakeable_find",
    "awakeable_reject",
    "awakeable_resolve",
    "fresh_statement",
    "instance_get",
    "instance_pause",
    "instance_resume",
    "invocation_cancel",
    "invocation_get",
    "invocation_insert",
    "invocation_insert_fresh",
    "invocation_kill",
    "invocation_retry",
    "invocation_submit",
    "principal_json",
    "state_edit",
    "timer_arm",
    "timer_cancel",
    "timer_rearm",
]


def invocation_get(public_id: str) -> Invocation:
    try:
        uid = UUID(hex=public_id.removeprefix("inv_"))
    except ValueError:
        raise NotFound(f"No invocation {public_id!r}: invocation ids look like inv_<32 hex digits>.") from None
    invocation = Invocation.objects.filter(uid=uid).first()
    if invocation is None:
        raise NotFound(f"No invocation {public_id!r}.")
    return invocation


def invocation_cancel(*, invocation: Invocation) -> Invocation:
    """Cancel a pending, delayed, backing-off or suspended invocation; it will never run (again). A suspended one
    lets go of its key: the key's later invocations run."""
    now = timezone.now()
    updated = Invocation.objects.filter(
        pk=invocation.pk, status__in=[Status.PENDING, Status.BACKING_OFF, Status.SUSPENDED]
    ).update(status=Status.CANCELLED, finished_at=now, error_message="Cancelled by an operator.", error_code=409)
    if not updated:
        invocation.refresh_from_db()
        raise Conflict(
            f"Invocation {invocation.public_id} is {invocation.status}; only pending, backing-off or suspended "
            "invocations can be cancelled."
        )
    invocation.status, invocation.finished_at = Status.CANCELLED, now
    tally.finished(invocation)
    _signal_done(invocation)
    ring(invocation.type_name, invocation.key, partition=invocation.partition)  # the key's next ones may run
    invocation.refresh_from_db()
    return invocation


def invocation_kill(*, invocation: Invocation) -> Invocation:
    """Kill an open invocation: if a worker is running it, its effects are discarded when it returns."""
    updated = Invocation.objects.filter(
        pk=invocation.pk, status__in=[Status.PENDING, Status.BACKING_OFF, Status.RUNNING, Status.SUSPENDED]
    ).update(kill_requested=True)
    if not updated:
        invocation.refresh_from_db()
        raise Conflict(f"Invocation {invocation.public_id} is {invocation.status}; it is not running.")
    with transaction.atomic():
        free = (
            Instance.objects.select_for_update(skip_locked=True, no_key=True).filter(pk=invocation.instance_id).exists()
        )
        if free:  # no worker holds the key, so nothing runs it now: finish it here
            now = timezone.now()
            open_row = Invocation.objects.filter(
                pk=invocation.pk, status__in=[Status.PENDING, Status.BACKING_OFF, Status.SUSPENDED]
            )
            killed = open_row.update(
                status=Status.KILLED, finished_at=now, error_message="Killed by an operator.", error_code=409
            )
            if killed:
                invocation.status, invocation.finished_at = Status.KILLED, now
                tally.finished(invocation)
    if free:
        _signal_done(invocation)
        ring(invocation.type_name, invocation.key, partition=invocation.partition)  # the key's next ones may run
    elif invocation.status == Status.SUSPENDED:  # a drain of its key discards it once the key is free
        ring(invocation.type_name, invocation.key, partition=invocation.partition, force=True)
    invocation.refresh_from_db()
    return invocation


def invocation_retry(*, invocation: Invocation) -> Invocation:
    """Run a failed or backing-off invocation again now (a failed one goes back to the key's inbox)."""
    updated = Invocation.objects.filter(pk=invocation.pk, status__in=[Status.FAILED, Status.BACKING_OFF]).update(
        status=Status.PENDING, not_before=None, finished_at=None, attempts=0, kill_requested=False
    )
    if not updated:
        invocation.refresh_from_db()
        raise Conflict(
            f"Invocation {invocation.public_id} is {invocation.status}; only failed or backing-off "
            "invocations can be retried."
        )
    _forget_crashes(invocation)
    ring(invocation.type_name, invocation.key, partition=invocation.partition)
    invocation.refresh_from_db()
    return invocation


def _forget_crashes(invocation: Invocation) -> None:
    """An operator's retry starts the crash count afresh (objects/worker/inbox.py, OBJECTS_CRASH_LIMIT)."""
    try:
        notify.client().delete(start_key(invocation.public_id))
    except Exception:  # noqa: BLE001 - without Redis there is no count to forget
        pass


def _signal_done(invocation: Invocation) -> None:
    notify.notify_done([invocation.public_id])


def instance_pause(*, instance: Instance, reason: str = "") -> Instance:
    Instance.objects.filter(pk=instance.pk).update(paused=True, paused_reason=reason[:500] or "Paused by an operator.")
    instance.refresh_from_db()
    return instance


def instance_resume(*, instance: Instance) -> Instance:
    Instance.objects.filter(pk=instance.pk).update(paused=False, paused_reason="")
    ring(instance.type_name, instance.key)
    instance.refresh_from_db()
    return instance


def instance_get(*, type_name: str, key: str) -> Instance:
    instance = Instance.objects.filter(type_name=type_name, key=key).first()
    if instance is None:
        raise NotFound(f"No instance {type_name}/{key}.")
    return instance


def state_edit(
    *,
    type_name: str,
    key: str,
    expected_version: int | None,
    set_entries: dict[str, Any] | None = None,
    clear: list[str] | None = None,
    clear_all: bool = False,
    replace: bool = False,
    user_id: int | None = None,
) -> int:
    """Change a key's state as an exclusive operation: queued behind the key's lock like an invocation.

    `expected_version` is the version the operator saw; a different current version raises Conflict
    (reload and retry), so an edit never overwrites a change it did not see. Returns the new version.
    """
    validate_key(key)
    for name, value in (set_entries or {}).items():
        if not isinstance(name, str) or not 1 <= len(name) <= 255:
            raise InvalidInput(f"Invalid state entry name {name!r}: 1 to 255 characters.")
        check_entry_size(name, value)

    try:
        with transaction.atomic():
            set_lock_timeout()  # an edit waits behind a running drain, but not forever
            instance = Instance.objects.select_for_update(no_key=True).get(pk=instance_id_ensure(type_name, key))
            if expected_version is not None and instance.version != expected_version:
                raise Conflict(
                    f"{type_name}/{key} changed since you loaded it (version {expected_version}, now "
                    f"{instance.version}); reload and retry."
                )
            state = StateCache.for_instance(instance.pk)
            if clear_all or replace:
                state.clear_all()
            for name in clear or []:
                state.clear(name)
            for name, value in (set_entries or {}).items():
                state.set(name, value)
            version = state.flush(user_id=user_id)
            if version is not None:  # live watchers see an operator's edit too (objects/watch.py)
                notify.state_changed(type_name, key, version)
                transaction.on_commit(notify.publish_changes)
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        seconds = conf.get("OBJECTS_LOCK_TIMEOUT_MS") / 1000
        raise Conflict(
            f"{type_name}/{key} is busy: its lock was held for more than {seconds:g}s (a long invocation or a "
            "stuck key). Retry shortly, or pause the key and look at its inbox."
        ) from None
    return instance.version if version is None else version


# -- awakeables ----------------------------------------------------------------------------------------------


def awakeable_resolve(awakeable_id: str, value: Any = None) -> None:
    """Resolve an awakeable with a JSON value (`objects.resolve_awakeable`): the invocation waiting for it goes
    on with the value. NotFound for an unknown id, Conflict when it was resolved or rejected already."""
    awakeable_complete(awakeable_id=awakeable_id, value=value)


def awakeable_reject(awakeable_id: str, reason: str) -> None:
    """Reject an awakeable (`objects.reject_awakeable`): the invocation waiting for it gets TerminalError(reason)."""
    awakeable_complete(awakeable_id=awakeable_id, value=reason, rejected=True)
