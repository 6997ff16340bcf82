"""Redis for the app: the client and `pipelined` (several commands in one round trip), and the done signal.

A finished invocation's signal is pushed after commit to a per-invocation list that outlives the push (a TTL),
so a signal that arrives before the waiter starts waiting is not lost. Redis only carries the signal: the
waiter (objects/signals/doorbell.py, `wait_done`) reads the outcome from the signal or the database, and polls the
database when Redis is unreachable.
"""

from __future__ import annotations

import json
import logging
import threading
from functools import partial
from typing import Any

import redis
from django.db import connection, transaction

from .. import conf
from ..errors import CallTimeout
from ..models import DONE_STATUSES, Invocation
from ..timeouts import redis_options
from . import tally
from .keys import CHANGED_PREFIX, DONE_PREFIX

log = logging.getLogger("objects.notify")
_client: redis.Redis | None = None
SIGNAL_TTL = 300


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(conf.redis_url(), **redis_options())
    return _client


def pipelined(commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send `commands` in one packet on a pooled connection and read every reply: a pipeline without
    redis-py's Pipeline object (≈ 40 us less CPU per round trip on the hot paths). Replies come raw, without
    redis-py's response callbacks (bytes, integers, lists; BLPOP's pair is a list). An error reply is raised
    once every reply is read, so the connection stays in step; a connection that broke is dropped and the
    round trip sent once more on another (as redis-py's pipelines do), and a second failure raised."""
    try:
        return _round_trip(commands)
    except redis.ConnectionError:
        return _round_trip(commands)


def _round_trip(commands: list[tuple[Any, ...]]) -> list[Any]:
    pool = client().connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command(conn.pack_commands(commands))
        replies: list[Any] = []
        error: redis.ResponseError | None = None
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
                error = error or exc
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)
    if error is not None:
        raise error
    return replies


def done_key(public_id: str) -> str:
    return f"{DONE_PREFIX}{public_id}"


def notify_done(public_ids: list[str], outcomes: dict[str, str] | None = None, forget: list[str] | None = None) -> None:
    """Signal finished invocations. With `outcomes` (public id -> `outcome_text`), the signal carries the
    committed outcome, so the waiter needs no database read; without, it says "read the database".
    `forget` are Redis keys deleted in the same round trip (the last handlers' start counts, inbox.py), and the
    metrics counted since the last signal are added up there too (objects/signals/tally.py)."""
    metrics = tally.commands() + changed_commands()
    if not public_ids and not forget and not metrics:
        return
    outcomes = outcomes or {}
    commands: list[tuple[Any, ...]] = [("DEL", *forget)] if forget else []
    commands += metrics
    for public_id in public_ids:
        commands += [
            ("RPUSH", done_key(public_id), outcomes.get(public_id, "1")),
            ("EXPIRE", done_key(public_id), SIGNAL_TTL),
        ]
    try:
        pipelined(commands)
    except redis.RedisError as exc:
        log.warning(
            "could not signal %d finished invocation(s); waiters will poll the database: %s", len(public_ids), exc
        )


# -- state changes: a message per changed key after commit, for live watchers (objects/watch.py) ----------------
_changes_lock = threading.Lock()
_changes: dict[tuple[str, str], int] = {}  # (type, key) -> its last committed version, not published yet


def changed_channel(type_name: str) -> str:
    """The Redis pub/sub channel of a type's committed state changes; a message is `{"key", "version"}`."""
    return CHANGED_PREFIX + type_name


def state_changed(type_name: str, key: str, version: int) -> None:
    """Announce a key's new state version once the current transaction commits (never when it, or the savepoint
    around this call, rolls back). Published with the next done signal (`notify_done`), or by `publish_changes`."""
    transaction.on_commit(partial(_changed, type_name, key, version))


def _changed(type_name: str, key: str, version: int) -> None:
    with _changes_lock:
        if _changes.get((type_name, key), -1) < version:
            _changes[(type_name, key)] = version


def changed_commands() -> list[tuple[Any, ...]]:
    """The committed changes not published yet, as PUBLISH commands, taken (one per key, its last version).
    A message lost with its round trip is only a hint lost: a watcher reads the state from the database."""
    global _changes
    with _changes_lock:
        taken, _changes = _changes, {}
    return [("PUBLISH", changed_channel(t), json.dumps({"key": k, "version": v})) for (t, k), v in taken.items()]


def publish_changes() -> None:
    """Publish the committed changes now (an operator's edit, which sends no done signal)."""
    notify_done([])


def call_timeout(public_id: str, timeout: float) -> CallTimeout:
    """The error of a wait that outlasted its timeout (the invocation goes on)."""
    return CallTimeout(
        f"Invocation {public_id} did not finish within {timeout:g}s; it goes on. "
        f"Attach to it later: GET /{conf.get('OBJECTS_INGRESS_PREFIX').strip('/')}/restate/invocation/"
        f"{public_id}/attach",
        public_id,
    )


def fresh_invocation(pk: int) -> Invocation | None:
    """The invocation as committed, None when it was deleted."""
    return Invocation.objects.filter(pk=pk).first()


_OUTCOME_FIELDS = ("status", "output", "error_message", "error_code", "error_type")


def outcome_text(invocation: Invocation) -> str | None:
    """The finished invocation's outcome as the worker committed it, for the done signal; None when the
    in-memory row may differ from the committed one (then the waiter reads the database)."""
    if invocation.status not in DONE_STATUSES:
        return None
    outcome = {name: getattr(invocation, name) for name in _OUTCOME_FIELDS}
    if connection.vendor == "postgresql":
        outcome["output"] = jsonb_order(outcome["output"])
    try:
        return json.dumps(outcome)
    except (TypeError, ValueError):
        return None


def jsonb_order(value: Any) -> Any:
    """`value` with its objects' keys in the order PostgreSQL's jsonb stores them (shorter keys first, then
    by their UTF-8 bytes), so an output taken from the signal reads exactly like one read from the row."""
    if isinstance(value, dict):
        ordered = sorted(value.items(), key=lambda item: (len(str(item[0]).encode()), str(item[0]).encode()))
        return {k: jsonb_order(v) for k, v in ordered}
    if isinstance(value, list):
        return [jsonb_order(v) for v in value]
    return value


def apply_outcome(invocation: Invocation, payload: bytes | str) -> bool:
    """Take the outcome from the signal when it carries one (True); a bare signal means read the database."""
    if payload in (b"1", b"", "1", ""):
        return False
    try:
        outcome = json.loads(payload)
    except ValueError:
        return False
    if not isinstance(outcome, dict) or outcome.get("status") not in DONE_STATUSES:
        return False
    for name in _OUTCOME_FIELDS:
        setattr(invocation, name, outcome.get(name))
    return True
