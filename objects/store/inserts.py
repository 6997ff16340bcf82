"""The invocation INSERTs of the ingress's hot paths (objects/runtime/submit.py, and the event loop's, objects/loop/):
by the key's (type, key), by its row's id, and for a fresh invocation with its defaults as constants, each
built once per database kind from the model's fields, so a field added to Invocation is part of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ..models import Instance, Invocation
from .db import db

INSERT_FIELDS = [f for f in Invocation._meta.concrete_fields if not f.primary_key]
# What every new invocation holds in the columns a caller does not choose (its fields' defaults: pending, no
# attempts, no output, error, caller, delay or idempotency key). An invocation that holds exactly these is
# inserted by a statement with them as constants in its text: psycopg adapts the 9 parameters a call chooses
# instead of 26 (adapting parameters was a tenth of the web process's CPU per call).
CHOSEN = {"uid", "instance_id", "type_name", "key", "handler", "kind", "partition", "input", "created_at", "principal"}
FRESH = {f.attname: f.get_default() for f in INSERT_FIELDS if f.attname not in CHOSEN}
# The parameters of the fresh statement (then the key's type and key), and of the statement by key (likewise).
FRESH_PARAMS = [f for f in INSERT_FIELDS if f.attname in CHOSEN and f.attname != "instance_id"]
BY_KEY_FIELDS = [f for f in INSERT_FIELDS if f.attname != "instance_id"]


@functools.cache
def insert_sql(vendor: str) -> tuple[str, str, str]:
    """The INSERT texts, built once per database kind: with the key's row looked up by (type, key), with a
    known instance id, and the first for a fresh invocation (`FRESH` as constants)."""
    connection = db()
    quote = connection.ops.quote_name
    table = quote(Invocation._meta.db_table)
    columns = ", ".join(quote(str(field.column)) for field in INSERT_FIELDS)

    by_key, fresh_by_key = (
        f"INSERT INTO {table} ({columns}) "
        f"SELECT {_selected(connection, vendor, fresh=fresh, chosen=lambda field: '%s')} "
        f"FROM {quote(Instance._meta.db_table)} k "
        'WHERE k.type_name = %s AND k."key" = %s RETURNING id, instance_id'
        for fresh in (False, True)
    )
    by_id = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(INSERT_FIELDS))})"
    return by_key, by_id, fresh_by_key


@functools.cache
def fresh_group_sql() -> str:
    """The fresh statement for many invocations at once (PostgreSQL): its parameters are one array per column of
    FRESH_PARAMS, in that order. Each invocation whose key has its row is inserted, in the arrays' order (ids
    follow it); the others are left out. Returns each inserted row's id, instance id and uid. The event loop's
    ingress groups the invocations that arrive while its previous statement runs (objects/loop/inserts.py)."""
    connection = db()
    quote = connection.ops.quote_name
    names = [field.attname for field in FRESH_PARAMS]
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in FRESH_PARAMS)
    selected = _selected(connection, "postgresql", fresh=True, chosen=lambda field: f"v.{quote(field.attname)}")
    columns = ", ".join(quote(str(field.column)) for field in INSERT_FIELDS)
    return (
        f"INSERT INTO {quote(Invocation._meta.db_table)} ({columns}) SELECT {selected} "
        f"FROM unnest({arrays}) WITH ORDINALITY AS v({', '.join(quote(n) for n in names)}, n) "
        f'JOIN {quote(Instance._meta.db_table)} k ON k.type_name = v.type_name AND k."key" = v."key" '
        "ORDER BY v.n RETURNING id, instance_id, uid"
    )


def _selected(connection: Any, vendor: str, *, fresh: bool, chosen: Callable[[Any], str]) -> str:
    """The SELECT list of an INSERT ... SELECT from the key's row `k`: its id as the instance, with `fresh` the
    columns a caller does not choose as constants (`FRESH`), every other column `chosen(field)`."""
    return ", ".join(
        "k.id"
        if field.attname == "instance_id"
        else _literal(field.get_db_prep_save(FRESH[field.attname], connection), vendor)
        if fresh and field.attname in FRESH
        else chosen(field)
        for field in INSERT_FIELDS
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
