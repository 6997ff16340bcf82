"""State of one instance as a handler sees it: a cache of JSON texts, diffed and flushed on commit."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import F
from django.utils import timezone

from .models import Instance, StateChange, StateEntry


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class StateCache:
    """Entries of one instance as JSON texts. `get` decodes a fresh copy, so in-place mutation of a
    returned value never leaks into state without a `set`."""

    def __init__(self, instance_id: int | None, entries: dict[str, str] | None = None) -> None:
        self.instance_id = instance_id
        self._loaded = entries is not None
        self._current: dict[str, str] = dict(entries or {})
        self._committed: dict[str, str] = dict(self._current)

    @classmethod
    def for_instance(cls, instance_id: int | None) -> StateCache:
        return cls(instance_id)

    def _load(self) -> None:
        if self._loaded:
            return
        rows = (
            StateEntry.objects.filter(instance_id=self.instance_id).values_list("name", "value")
            if self.instance_id
            else []
        )
        self._current = {name: _dumps(value) for name, value in rows}
        self._committed = dict(self._current)
        self._loaded = True

    def get(self, name: str, default: Any = None) -> Any:
        self._load()
        text = self._current.get(name)
        return default if text is None else json.loads(text)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._current)

    def set(self, name: str, value: Any) -> None:
        self._load()
        self._current[name] = _dumps(value)

    def clear(self, name: str) -> None:
        self._load()
        self._current.pop(name, None)

    def clear_all(self) -> None:
        self._load()
        self._current.clear()

    def snapshot(self) -> dict[str, str] | None:
        """The current entries, or None when nothing is loaded yet (restore then forgets what a failed
        handler loaded, so the next one reads the entries again instead of seeing an empty state)."""
        return dict(self._current) if self._loaded else None

    def restore(self, snapshot: dict[str, str] | None) -> None:
        if snapshot is None:
            self._loaded = False
            self._current, self._committed = {}, {}
            return
        self._current = dict(snapshot)

    def flush(self, *, invocation_id: int | None = None, user_id: int | None = None) -> int | None:
        """Write what changed since the last flush; bump the version and record history.

        Returns the new version, or None when nothing changed. Runs inside the caller's transaction.
        """
        if not self._loaded or self._current == self._committed:
            return None
        instance_id = self.instance_id
        assert instance_id is not None, "only the state of an existing instance can be written"
        now = timezone.now()
        changed = {n: t for n, t in self._current.items() if self._committed.get(n) != t}
        removed = [n for n in self._committed if n not in self._current]
        if changed:
            StateEntry.objects.bulk_create(
                [
                    StateEntry(
                        instance_id=instance_id, name=n, value=json.loads(t), size=len(t.encode()), updated_at=now
                    )
                    for n, t in changed.items()
                ],
                update_conflicts=True,
                unique_fields=["instance", "name"],
                update_fields=["value", "size", "updated_at"],
            )
        if removed:
            StateEntry.objects.filter(instance_id=instance_id, name__in=removed).delete()
        Instance.objects.filter(pk=instance_id).update(version=F("version") + 1, changed_at=now)
        version = Instance.objects.filter(pk=instance_id).values_list("version", flat=True).get()
        history = [
            StateChange(
                instance_id=instance_id,
                name=n,
                action=StateChange.Action.SET,
                old_value=_loads(self._committed.get(n)),
                new_value=json.loads(t),
                version=version,
                invocation_id=invocation_id,
                user_id=user_id,
            )
            for n, t in changed.items()
        ] + [
            StateChange(
                instance_id=instance_id,
                name=n,
                action=StateChange.Action.CLEAR,
                old_value=_loads(self._committed[n]),
                new_value=None,
                version=version,
                invocation_id=invocation_id,
                user_id=user_id,
            )
            for n in removed
        ]
        StateChange.objects.bulk_create(history)
        self._committed = dict(self._current)
        return version


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
