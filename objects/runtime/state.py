"""State of one instance as a handler sees it: a cache of JSON texts, diffed and flushed on commit, with the
history of its changes (bounded: per type on or off, per key the last OBJECTS_STATE_HISTORY_PER_KEY versions)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django.utils import timezone

from .. import jsoncodec
from ..models import StateChange
from ..registry import get_object
from ..store.db import db, fetchall
from ..store.sql import (
    COMMITTED_SQL,
    ENTRIES_SQL,
    VERSION_BUMP_SQL,
    entry_delete,
    entry_upsert,
    history_insert_sql,
    history_trim,
    json_mark,
    sql_json,
)


def _dumps(value: Any) -> str:
    return jsoncodec.dumps(value)


# The instances whose state `flush` wrote while a group pass runs (a handler's ctx.call into another key). The
# pass reads every key's entries ahead, with their inboxes; a key written this way before its turn is read
# again (objects/worker/partition.py), so the call's change is not lost.
written: ContextVar[set[int] | None] = ContextVar("objects_state_written", default=None)


def entries_from_pass(text: str | None) -> dict[str, str]:
    """A key's entries as a pass reads them ahead (objects/store/passes.py, HEADS_STATE): a JSON array of
    [name, length] pairs, a newline, then the values' stored texts one after another (a length of null: SQL
    NULL, JSON null). Each value is kept as stored, not decoded: the engine stores compact texts, the form
    `set` gives (a text stored otherwise, by hand, makes a `set` of the same value count as a change once)."""
    if not text:
        return {}
    header, _, values = text.partition("\n")  # a name's newline is escaped in the header's JSON
    entries: dict[str, str] = {}
    at = 0
    for name, length in jsoncodec.loads(header):
        if length is None:
            entries[name] = "null"
        else:
            entries[name] = values[at : at + length]
            at += length
    return entries


def entries_from_rows(rows: Any) -> dict[str, str]:
    """A key's entries from (name, value) rows, as `load` keeps them: one normalized JSON text per name."""
    return {name: _dumps(_decoded(value)) for name, value in rows}


def committed_state(type_name: str, key: str) -> tuple[int | None, dict[str, str]]:
    """The key's row id and its entries, read by one statement (a shared handler's read); (None, {}) when the
    key has no row yet."""
    return committed_from_rows(fetchall(db(), COMMITTED_SQL, [type_name, key]))


def committed_from_rows(rows: list[Any]) -> tuple[int | None, dict[str, str]]:
    """`committed_state` from the rows of COMMITTED_SQL (also read on the web process's event loop)."""
    if not rows:
        return None, {}
    return int(rows[0][0]), entries_from_rows((name, value) for _, name, value in rows if name is not None)


class StateCache:
    """Entries of one instance as JSON texts. `get` decodes a fresh copy, so in-place mutation of a
    returned value never leaks into state without a `set`."""

    def __init__(
        self, instance_id: int | None, entries: dict[str, str] | None = None, *, type_name: str | None = None
    ) -> None:
        self.instance_id = instance_id
        self.history = history_kept(type_name)  # whether a handler's changes are recorded
        self._loaded = entries is not None
        self._current: dict[str, str] = dict(entries or {})
        self._committed: dict[str, str] = dict(self._current)  # as of the last recorded change (history)
        self._stored: dict[str, str] = dict(self._current)  # as the entry rows hold them in this transaction

    @classmethod
    def for_instance(cls, instance_id: int | None, *, type_name: str | None = None) -> StateCache:
        return cls(instance_id, type_name=type_name)

    def load(self) -> None:
        """Read the entries (once; a restore after a failed handler forgets them)."""
        if self._loaded:
            return
        connection = db()
        rows: list[tuple[str, Any]] = []
        if self.instance_id:
            rows = fetchall(connection, ENTRIES_SQL, [self.instance_id])
        self._current = entries_from_rows(rows)
        self._committed = dict(self._current)
        self._stored = dict(self._current)
        self._loaded = True

    def get(self, name: str, default: Any = None) -> Any:
        self.load()
        text = self._current.get(name)
        return default if text is None else jsoncodec.loads(text)

    def names(self) -> list[str]:
        self.load()
        return sorted(self._current)

    def set(self, name: str, value: Any, text: str | None = None) -> None:
        """Set an entry; `text`: its JSON text, when the caller has encoded it already (a size check)."""
        self.load()
        self._current[name] = _dumps(value) if text is None else text

    def clear(self, name: str) -> None:
        self.load()
        self._current.pop(name, None)

    def clear_all(self) -> None:
        self.load()
        self._current.clear()

    def snapshot(self) -> dict[str, str] | None:
        """The current entries, or None when nothing is loaded yet (restore then forgets what a failed
        handler loaded, so the next one reads the entries again instead of seeing an empty state)."""
        return dict(self._current) if self._loaded else None

    def restore(self, snapshot: dict[str, str] | None) -> None:
        if snapshot is None:
            self._loaded = False
            self._current, self._committed, self._stored = {}, {}, {}
            return
        self._current = dict(snapshot)

    def changes(self) -> tuple[dict[str, str], list[str]] | None:
        """What changed since the last flush: (entries set, as JSON texts; entries cleared), or None."""
        if not self._loaded or self._current == self._committed:
            return None
        changed = {n: t for n, t in self._current.items() if self._committed.get(n) != t}
        return changed, [n for n in self._committed if n not in self._current]

    def history_rows(
        self, pending: tuple[dict[str, str], list[str]], user_id: int | None = None
    ) -> list[tuple[str, str, str | None, str | None]]:
        """The history rows of `pending` (`changes()`): (name, action, old text, new text), as stored (JSON null
        as SQL NULL). A handler's change records the new value only: the old one is the previous row's new
        value (selectors.instance_history fills it in), and writing it again doubled the bytes PostgreSQL
        compressed and logged per call for a large entry. An operator's edit (`user_id`) and a clear keep it.
        None for a handler's change of a type without history (`VirtualObject(..., state_history=False)`)."""
        if user_id is None and not self.history:
            return []
        changed, removed = pending
        rows = [
            (
                n,
                StateChange.Action.SET.value,
                None if user_id is None else sql_json(self._committed.get(n)),
                sql_json(t),
            )
            for n, t in changed.items()
        ]
        rows += [(n, StateChange.Action.CLEAR.value, sql_json(self._committed[n]), None) for n in removed]
        return rows

    def flushed(self, *, entries: bool = True) -> None:
        """The changes were recorded (version and history) by the caller's own statement, and with `entries`
        the entry rows written too; without, `store` writes them later."""
        self._committed = dict(self._current)
        if entries:
            self._stored = dict(self._current)

    def store(self) -> None:
        """Write the entry rows that differ from what the rows hold (after changes recorded without them:
        a group pass writes a key's entries once, after the key's last invocation of the pass)."""
        if self._loaded and self._current != self._stored:
            connection = db()
            with connection.cursor() as cursor:
                self._write_entries(cursor, connection.ops.adapt_datetimefield_value(timezone.now()))

    def entry_changes(self) -> tuple[dict[str, str], list[str]]:
        """How the entries differ from what the entry rows hold: (entries to write, entries to delete)."""
        changed = {n: t for n, t in self._current.items() if self._stored.get(n) != t}
        return changed, [n for n in self._stored if n not in self._current]

    def _write_entries(self, cursor: Any, now: Any) -> None:
        changed, removed = self.entry_changes()
        if changed:
            row = f"(%s, %s, {json_mark(cursor.db.vendor)}, %s, %s)"
            cursor.execute(*entry_upsert(self.instance_id, changed, now, row=row))
        if removed:
            cursor.execute(*entry_delete(self.instance_id, removed))
        self._stored = dict(self._current)

    def flush(self, *, invocation_id: int | None = None, user_id: int | None = None) -> int | None:
        """Write what changed since the last flush; bump the version and record history.

        Returns the new version, or None when nothing changed. Runs inside the caller's transaction.
        """
        connection = db()
        pending = self.changes()
        if pending is None:
            self.store()
            return None
        instance_id = self.instance_id
        assert instance_id is not None, "only the state of an existing instance can be written"
        seen = written.get()
        if seen is not None:
            seen.add(instance_id)
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        # Raw SQL with the JSON texts the cache already holds: no ORM query building and no second
        # encoding of each value (the ORM would decode and re-encode every text). One statement each.
        with connection.cursor() as cursor:
            self._write_entries(cursor, now)
            cursor.execute(VERSION_BUMP_SQL, [now, instance_id])
            version = cursor.fetchone()[0]
            history = self.history_rows(pending, user_id)
            if history:
                params: list[Any] = []
                for name, action, old, new in history:
                    params += [instance_id, name, action, old, new, version, invocation_id, user_id, now]
                cursor.execute(history_insert_sql(len(history), json_mark(connection.vendor)), params)
                cursor.execute(*history_trim(instance_id, "%s", [version]))
        self.flushed()
        return version


def history_kept(type_name: str | None) -> bool:
    """Whether the handlers' state changes of `type_name` are recorded (an unknown or unnamed type's are)."""

    found = get_object(type_name) if type_name else None
    return found is None or found.state_history


def _decoded(value: Any) -> Any:
    return jsoncodec.loads(value) if isinstance(value, str) else value


def watched_from_rows(rows: list[Any]) -> tuple[int, dict[str, Any]]:
    """The key's version and state (name -> value) from the rows of WATCHED_SQL: (0, {}) for a key with no row."""
    if not rows:
        return 0, {}
    return int(rows[0][0]), {name: _decoded(value) for _, name, value in rows if name is not None}
