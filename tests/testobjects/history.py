"""Object types for the state history's bounds (tests/integration/test_state_history_bound.py): the shape of the
benchmark's BenchCart (a list that grows by one item per call), with history and without."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from objects import ObjectContext, VirtualObject

history_cart = VirtualObject("HistoryCart", access=lambda user, key, handler: user.is_authenticated)


@history_cart.exclusive
def add_item(ctx: ObjectContext, item: Any) -> int:
    """Append the JSON body to the list in state entry `items`; return the list's length (BenchCart's handler)."""
    items = ctx.get("items", [])
    items.append(item)
    ctx.set("items", items)
    return len(items)


@dataclass
class AddTo:
    key: str
    item: Any = None


@history_cart.exclusive
def add_to(ctx: ObjectContext, arg: AddTo) -> int:
    """Add an item to another key's list through ctx.call (the callee's state is flushed inside the caller's
    transaction)."""
    return ctx.call("HistoryCart", arg.key, "add_item", arg.item)


quiet_cart = VirtualObject("QuietCart", access=lambda user, key, handler: user.is_authenticated, state_history=False)


@quiet_cart.exclusive(name="add_item")
def quiet_add_item(ctx: ObjectContext, item: Any) -> int:
    """HistoryCart's add_item on a type that keeps no history."""
    return add_item(ctx, item)
