"""Services that write: accept invocations, operate on them (cancel, kill, retry), pause keys, edit state.

Each is a plain function with keyword-only arguments; views, admin actions and tasks call these.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from . import conf, notify, tally, waits
from .backends import db, fetchone
from .context import Principal
from .errors import Conflict, InvalidInput, NotFound, Unavailable
from .models import Awakeable, Instance, Invocation, Status
from .routing import partition_of
from .runtime import instance_id_ensure, resolve
from .state import StateCache
from .validation import check_entry_size, json_size, validate_delay, validate_input, validate_key


def input_hash(arg: Any) -> str:
    return hashlib.sha256(json.dumps(arg, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def invocation_submit(
    *,
    type_name: str,
    key: str,
    handler: str,
    arg: Any = None,
    idempotency_key: str | None = None,
    delay: timedelta | None = None,
    caller: Invocation | None = None,
    principal: Any = None,
    ring: bool = True,
    timer: tuple[str, timedelta | None] | None = None,
) -> tuple[Invocation, bool]:
    """Validate and accept an invocation: a committed row before anything runs it.

    `principal` (a user or an objects.Principal) is who it runs for; an invocation sent by a handler (`caller`)
    runs for its caller's principal and records the calling object.

    Returns (invocation, created). With an idempotency key already used for the same (type, key,
    handler) and input, returns the original invocation and created=False; with another input, Conflict.
    The doorbell rings after commit; with `ring=False` a caller about to wait for a created invocation rings
    in the same round trip as its wait (`result_of(..., ring=created)`), unless the submit runs inside the
    caller's own transaction or is delayed: those ring on commit as always (a second ring is harmless).
    """
    target = resolve(type_name, handler)
    validate_key(key)
    stored = validate_input(target, arg)
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 255:
        raise InvalidInput("The idempotency key must be 1 to 255 characters.")
    validate_delay(delay)
    digest = input_hash(stored) if idempotency_key else ""
    now = timezone.now()
    in_callers_transaction = transaction.get_connection().in_atomic_block
    # Without an idempotency key the two statements need no transaction of their own: in autocommit the
    # INSERT commits by itself (two round trips instead of four on the ingress's hot path) and on_commit
    # rings at once; inside a handler's transaction (ctx.send) both still wait for that commit.
    with transaction.atomic() if idempotency_key else contextlib.nullcontext():
        if idempotency_key:
            existing = _idempotent_match(type_name, key, handler, idempotency_key, digest)
            if existing:
                return existing, False
        fields = dict(
            type_name=type_name,
            key=key,
            handler=handler,
            kind=target.kind,
            partition=partition_of(type_name, key),
            input=stored,
            caller=caller,
            not_before=now + delay if delay else None,
            principal=principal_json(principal),
        )
        if caller is not None:
            fields.update(principal=caller.principal, caller_type=caller.type_name, caller_key=caller.key)
        if timer is not None:  # a named timer (ctx.timer): a delayed send of the key to itself
            fields.update(timer_name=timer[0], timer_every=timer[1])
        if idempotency_key:
            fields.update(
                idempotency_key=idempotency_key,
                input_hash=digest,
                idempotency_expires_at=now + conf.get("OBJECTS_IDEMPOTENCY_RETENTION"),
            )
            try:
                with transaction.atomic():
                    invocation = invocation_insert(Invocation(**fields))
            except IntegrityError:
                existing = _idempotent_match(type_name, key, handler, idempotency_key, digest)
                if existing is None:
                    raise
                return existing, False
        else:
            fresh = None if delay or caller or timer else invocation_insert_fresh(fields, now)
            invocation = fresh or invocation_insert(Invocation(**fields))
        if ring or delay or in_callers_transaction:
            _ring_on_commit(invocation, delay)
    return invocation, True


def principal_json(who: Any) -> dict[str, Any] | None:
    """What an invocation row keeps of who it runs for (`Invocation.principal`): a user's or a Principal's id
    and username, None for None or an anonymous user."""
    found = Principal.of(who)
    return None if found is None else found.as_json()


def invocation_insert_fresh(fields: dict[str, Any], now: datetime) -> Invocation | None:
    """The ingress's hot path: a new invocation with nothing but what a call chooses (no delay, caller or
    idempotency key), inserted by the statement with every other column a constant that finds the key's row,
    its instance built from the values it was given (no model instance to fill and read back). A new key
    gets its row, then the invocation is inserted by its id. None when the database cannot return the new
    ids (`invocation_insert` then)."""
    connection = db()
    if not connection.features.can_return_columns_from_insert:
        return None
    sql, params, chosen = fresh_statement(connection, fields, now)
    row = fetchone(connection, sql, params)
    if row is None:  # a new key
        instance_id = instance_id_ensure(chosen["type_name"], chosen["key"], missing=True)
        return invocation_insert(Invocation(**fields, instance_id=instance_id))
    chosen["id"], chosen["instance_id"] = row
    return Invocation.built(connection.alias, chosen)


def fresh_statement(connection: Any, fields: dict[str, Any], now: datetime) -> tuple[str, list[Any], dict[str, Any]]:
    """`invocation_insert_fresh`'s statement, its parameters and the new row's values (without its id and
    instance id, which the statement returns; no row when the key is new). Shared with the event loop's
    ingress (objects/asgi.py), which runs it on its own connection."""
    chosen = {"principal": None, **fields, "uid": uuid.uuid4(), "created_at": now}  # nobody's unless given
    params = [field.get_db_prep_save(chosen[field.attname], connection) for field in _FRESH_PARAMS]
    return _insert_sql(connection.vendor)[2], [*params, chosen["type_name"], chosen["key"]], chosen


@functools.cache
def fresh_group_sql() -> str:
    """`fresh_statement`'s statement for many invocations at once (PostgreSQL): its parameters are one array per
    column of `fresh_statement`'s, in that order, without the last two (the key's type and key, taken from the
    arrays). Each invocation whose key has its row is inserted, in the arrays' order (ids follow it); the others
    are left out. Returns each inserted row's id, instance id and uid. The event loop's ingress groups the
    invocations that arrive while its previous statement runs (objects/asgi.py, `GroupInsert`)."""
    connection = db()
    quote = connection.ops.quote_name
    names = [field.attname for field in _FRESH_PARAMS]
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in _FRESH_PARAMS)
    selected = _selected(connection, "postgresql", fresh=True, chosen=lambda field: f"v.{quote(field.attname)}")
    columns = ", ".join(quote(str(field.column)) for field in _INSERT_FIELDS)
    return (
        f"INSERT INTO {quote(Invocation._meta.db_table)} ({columns}) SELECT {selected} "
        f"FROM unnest({arrays}) WITH ORDINALITY AS v({', '.join(quote(n) for n in names)}, n) "
        f'JOIN {quote(Instance._meta.db_table)} k ON k.type_name = v.type_name AND k."key" = v."key" '
        "ORDER BY v.n RETURNING id, instance_id, uid"
    )


def invocation_insert(invocation: Invocation) -> Invocation:
    """Insert a new invocation row for its (type, key), the key's row found by the same statement (the
    ingress's hot path: one raw `INSERT ... SELECT`; the ORM's `create()` spent more CPU building the
    statement than PostgreSQL spent running it). A new key gets its row first, then the row is inserted."""
    connection = db()
    returning = connection.features.can_return_columns_from_insert
    by_key, by_id, _ = _insert_sql(connection.vendor)
    if invocation.instance_id is None and returning:
        params = [_prepared(invocation, field, connection) for field in _BY_KEY_FIELDS]
        with connection.cursor() as cursor:
            cursor.execute(by_key, [*params, invocation.type_name, invocation.key])
            row = cursor.fetchone()
        if row is not None:
            invocation.pk, invocation.instance_id = row
    if invocation.pk is None:
        if invocation.instance_id is None:  # a new key (or a database without INSERT ... RETURNING)
            invocation.instance_id = instance_id_ensure(invocation.type_name, invocation.key)
        values = [_prepared(invocation, field, connection) for field in _INSERT_FIELDS]
        with connection.cursor() as cursor:
            if returning:
                cursor.execute(by_id + " RETURNING id", values)
                invocation.pk = cursor.fetchone()[0]
            else:
                cursor.execute(by_id, values)
                invocation.pk = cursor.lastrowid
    invocation._state.adding = False
    invocation._state.db = connection.alias
    return invocation


_INSERT_FIELDS = [f for f in Invocation._meta.concrete_fields if not f.primary_key]
# What every new invocation holds in the columns a caller does not choose (its fields' defaults: pending, no
# attempts, no output, error, caller, delay or idempotency key). An invocation that holds exactly these is
# inserted by a statement with them as constants in its text: psycopg adapts the 9 parameters a call chooses
# instead of 26 (adapting parameters was a tenth of the web process's CPU per call).
_CHOSEN = {"uid", "instance_id", "type_name", "key", "handler", "kind", "partition", "input", "created_at", "principal"}
_FRESH = {f.attname: f.get_default() for f in _INSERT_FIELDS if f.attname not in _CHOSEN}
_FRESH_PARAMS = [f for f in _INSERT_FIELDS if f.attname in _CHOSEN and f.attname != "instance_id"]
_BY_KEY_FIELDS = [f for f in _INSERT_FIELDS if f.attname != "instance_id"]


def _prepared(invocation: Invocation, field: Any, connection: Any) -> Any:
    return field.get_db_prep_save(field.pre_save(invocation, True), connection)


@functools.cache
def _insert_sql(vendor: str) -> tuple[str, str, str]:
    """The INSERT texts, built once per database kind: with the key's row looked up by (type, key), with a
    known instance id, and the first for a fresh invocation (`_FRESH` as constants)."""
    connection = db()
    quote = connection.ops.quote_name
    table = quote(Invocation._meta.db_table)
    columns = ", ".join(quote(str(field.column)) for field in _INSERT_FIELDS)

    by_key, fresh_by_key = (
        f"INSERT INTO {table} ({columns}) "
        f"SELECT {_selected(connection, vendor, fresh=fresh, chosen=lambda field: '%s')} "
        f"FROM {quote(Instance._meta.db_table)} k "
        'WHERE k.type_name = %s AND k."key" = %s RETURNING id, instance_id'
        for fresh in (False, True)
    )
    by_id = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(_INSERT_FIELDS))})"
    return by_key, by_id, fresh_by_key


def _selected(connection: Any, vendor: str, *, fresh: bool, chosen: Callable[[Any], str]) -> str:
    """The SELECT list of an INSERT ... SELECT from the key's row `k`: its id as the instance, with `fresh` the
    columns a caller does not choose as constants (`_FRESH`), every other column `chosen(field)`."""
    return ", ".join(
        "k.id"
        if field.attname == "instance_id"
        else _literal(field.get_db_prep_save(_FRESH[field.attname], connection), vendor)
        if fresh and field.attname in _FRESH
        else chosen(field)
        for field in _INSERT_FIELDS
    )


def _literal(value: Any, vendor: str) -> str:
    """A prepared default as an SQL constant (the defaults are NULL, booleans, integers and plain texts)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return ("true" if value else "false") if vendor == "postgresql" else str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and (value == "" or (value.isascii() and value.replace("_", "").isalnum())):
        return f"'{value}'"
    raise TypeError(f"no SQL constant for the default {value!r}")


def _idempotent_match(type_name: str, key: str, handler: str, idempotency_key: str, digest: str) -> Invocation | None:
    existing = Invocation.objects.filter(
        type_name=type_name, key=key, handler=handler, idempotency_key=idempotency_key
    ).first()
    if existing is not None and existing.input_hash != digest:
        raise Conflict(
            f"The idempotency key {idempotency_key!r} was already used for {type_name}/{key}.{handler} with "
            f"another input ({existing.public_id}); use a new key for a new request."
        )
    return existing


def _ring_on_commit(invocation: Invocation, delay: timedelta | None) -> None:
    from .tasks import ring

    seconds = delay.total_seconds() if delay else None
    if seconds is not None and seconds > 3600:
        return  # far-future sends are released by the sweeper when due
    type_name, key, partition = invocation.type_name, invocation.key, invocation.partition
    transaction.on_commit(lambda: ring(type_name, key, countdown=seconds or None, partition=partition))


def invocation_get(public_id: str) -> Invocation:
    from uuid import UUID

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
    from .tasks import ring

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
    from .tasks import ring

    if free:
        _signal_done(invocation)
        ring(invocation.type_name, invocation.key, partition=invocation.partition)  # the key's next ones may run
    elif invocation.status == Status.SUSPENDED:  # a drain of its key discards it once the key is free
        ring(invocation.type_name, invocation.key, partition=invocation.partition, force=True)
    invocation.refresh_from_db()
    return invocation


def invocation_retry(*, invocation: Invocation) -> Invocation:
    """Run a failed or backing-off invocation again now (a failed one goes back to the key's inbox)."""
    from .tasks import ring

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


LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout fired


def _forget_crashes(invocation: Invocation) -> None:
    """An operator's retry starts the crash count afresh (objects/inbox.py, OBJECTS_CRASH_LIMIT)."""
    from .inbox import start_key
    from .notify import client

    try:
        client().delete(start_key(invocation.public_id))
    except Exception:  # noqa: BLE001 - without Redis there is no count to forget
        pass


def _signal_done(invocation: Invocation) -> None:
    from .notify import notify_done

    notify_done([invocation.public_id])


def instance_pause(*, instance: Instance, reason: str = "") -> Instance:
    Instance.objects.filter(pk=instance.pk).update(paused=True, paused_reason=reason[:500] or "Paused by an operator.")
    instance.refresh_from_db()
    return instance


def instance_resume(*, instance: Instance) -> Instance:
    from .tasks import ring

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
    from .inbox import set_lock_timeout

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
            from .errors import PayloadTooLarge

            raise PayloadTooLarge(f"The awakeable's value is {size} bytes; the limit is {limit} bytes.")
    found = awakeable_find(awakeable_id)
    waiter = found.invocation
    from .inbox import set_lock_timeout
    from .tasks import ring

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


def awakeable_resolve(awakeable_id: str, value: Any = None) -> None:
    """Resolve an awakeable with a JSON value (`objects.resolve_awakeable`): the invocation waiting for it goes
    on with the value. NotFound for an unknown id, Conflict when it was resolved or rejected already."""
    awakeable_complete(awakeable_id=awakeable_id, value=value)


def awakeable_reject(awakeable_id: str, reason: str) -> None:
    """Reject an awakeable (`objects.reject_awakeable`): the invocation waiting for it gets TerminalError(reason)."""
    awakeable_complete(awakeable_id=awakeable_id, value=reason, rejected=True)


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
    _ring_on_commit(following, due - now)
    return following
