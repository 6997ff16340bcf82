"""Accepting invocations: `invocation_submit` (validation, idempotency keys, the committed row, the ring
after commit), the key's row found or made, and the INSERTs the ingress's hot paths run (their texts in
objects/store/inserts.py), shared with the event loop (objects/asgi.py). Below the runtime, which submits a
handler's sends (`ctx.send`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import conf
from ..context import Principal
from ..errors import Conflict, InvalidInput, NotFound
from ..models import Instance, Invocation
from ..registry import Handler, all_objects, get_object
from ..routing import partition_of
from ..signals.doorbell import (
    ring as ring_key,  # invocation_submit's `ring` is a flag
)
from ..store.db import db, fetchone
from ..store.inserts import BY_KEY_FIELDS, FRESH_PARAMS, INSERT_FIELDS, insert_sql
from ..store.sql import instance_create_statement, instance_id_sql
from ..validation import validate_delay, validate_input, validate_key


def resolve(type_name: str, handler_name: str) -> Handler:
    obj = get_object(type_name)
    if obj is None:
        known = ", ".join(o.name for o in all_objects()) or "none"
        raise NotFound(f"Unknown object type {type_name!r}; known types: {known}.")
    handler = obj.handlers.get(handler_name)
    if handler is None:
        known = ", ".join(sorted(obj.handlers)) or "none"
        raise NotFound(f"Object type {type_name!r} has no handler {handler_name!r}; its handlers: {known}.")
    return handler


def instance_id_find(type_name: str, key: str) -> int | None:
    """The id of the key's row, None when the key has none yet. One indexed SELECT on the hot paths."""
    connection = db()
    row = fetchone(connection, instance_id_sql(connection), [type_name, key])
    return None if row is None else int(row[0])


def instance_id_ensure(type_name: str, key: str, *, missing: bool = False) -> int:
    """The id of the key's row, created when the key is new (`missing`: the caller just found no row, so
    the row is created without looking first). On PostgreSQL one raw `INSERT ... ON CONFLICT DO NOTHING
    RETURNING id`, and a look-up only when another request created the row meanwhile."""
    if not missing:
        found = instance_id_find(type_name, key)
        if found is not None:
            return found
    connection = db()
    if connection.vendor == "postgresql":
        row = fetchone(connection, *instance_create_statement(connection, type_name, key))
        if row is not None:
            return int(row[0])
    else:
        Instance.objects.bulk_create([Instance(type_name=type_name, key=key)], ignore_conflicts=True)
    found = instance_id_find(type_name, key)
    if found is None:  # created and deleted again in between (an operator's delete): create it once more
        return instance_id_ensure(type_name, key, missing=True)
    return found


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
            ring_on_commit(invocation, delay)
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
    ingress (objects/asgi.py), which runs it on its own connection; store.inserts.fresh_group_sql is the same
    for many invocations at once."""
    chosen = {"principal": None, **fields, "uid": uuid.uuid4(), "created_at": now}  # nobody's unless given
    params = [field.get_db_prep_save(chosen[field.attname], connection) for field in FRESH_PARAMS]
    return insert_sql(connection.vendor)[2], [*params, chosen["type_name"], chosen["key"]], chosen


def invocation_insert(invocation: Invocation) -> Invocation:
    """Insert a new invocation row for its (type, key), the key's row found by the same statement (one
    `INSERT ... SELECT`). A new key gets its row first, then the row is inserted."""
    connection = db()
    returning = connection.features.can_return_columns_from_insert
    by_key, by_id, _ = insert_sql(connection.vendor)
    if invocation.instance_id is None and returning:
        params = [_prepared(invocation, field, connection) for field in BY_KEY_FIELDS]
        with connection.cursor() as cursor:
            cursor.execute(by_key, [*params, invocation.type_name, invocation.key])
            row = cursor.fetchone()
        if row is not None:
            invocation.pk, invocation.instance_id = row
    if invocation.pk is None:
        if invocation.instance_id is None:  # a new key (or a database without INSERT ... RETURNING)
            invocation.instance_id = instance_id_ensure(invocation.type_name, invocation.key)
        values = [_prepared(invocation, field, connection) for field in INSERT_FIELDS]
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


def _prepared(invocation: Invocation, field: Any, connection: Any) -> Any:
    return field.get_db_prep_save(field.pre_save(invocation, True), connection)


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


def ring_on_commit(invocation: Invocation, delay: timedelta | None) -> None:
    seconds = delay.total_seconds() if delay else None
    if seconds is not None and seconds > 3600:
        return  # far-future sends are released by the sweeper when due
    type_name, key, partition = invocation.type_name, invocation.key, invocation.partition
    transaction.on_commit(lambda: ring_key(type_name, key, countdown=seconds or None, partition=partition))
