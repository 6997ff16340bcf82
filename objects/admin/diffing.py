"""A compact difference between two JSON values for the state history: which keys or items were added,
removed or changed, with their values shortened."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_TEXT = 60
MAX_ROWS = 20


@dataclass(frozen=True)
class DiffRow:
    op: str  # "added" | "removed" | "changed" | "set" | "cleared" | "more"
    path: str  # where in the value: lines[0].quantity ("" or the entry name for the whole value)
    old: str
    new: str


def short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def value_diff(old: Any, new: Any, path: str = "", *, created: bool = False, cleared: bool = False) -> list[DiffRow]:
    """The rows saying how `new` differs from `old`, at most MAX_ROWS (then one "more" row). `created`: the
    entry did not exist before (also assumed when `old` is None); `cleared`: the entry was removed."""
    if cleared:
        return [DiffRow("cleared", path, short(old), "")]
    if created or old is None:
        return [DiffRow("set", path, "", short(new))]
    rows: list[DiffRow] = []
    _walk(old, new, path, rows)
    if len(rows) > MAX_ROWS:
        rows = rows[:MAX_ROWS] + [DiffRow("more", path, "", f"{len(rows) - MAX_ROWS} more differences")]
    return rows


def _walk(old: Any, new: Any, path: str, rows: list[DiffRow]) -> None:
    if len(rows) > MAX_ROWS:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            child = f"{path}.{key}" if path else str(key)
            if key not in new:
                rows.append(DiffRow("removed", child, short(old[key]), ""))
            else:
                _walk(old[key], new[key], child, rows)
        rows.extend(
            DiffRow("added", f"{path}.{k}" if path else str(k), "", short(v)) for k, v in new.items() if k not in old
        )
    elif isinstance(old, list) and isinstance(new, list):
        for index, (a, b) in enumerate(zip(old, new, strict=False)):
            _walk(a, b, f"{path}[{index}]", rows)
        rows.extend(DiffRow("removed", f"{path}[{i}]", short(v), "") for i, v in enumerate(old) if i >= len(new))
        rows.extend(DiffRow("added", f"{path}[{i}]", "", short(v)) for i, v in enumerate(new) if i >= len(old))
    elif old != new or type(old) is not type(new):
        rows.append(DiffRow("changed", path, short(old), short(new)))
