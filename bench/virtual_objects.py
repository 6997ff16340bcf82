"""BenchCart: the object every benchmark workload calls (the same object is written for Restate in restate/)."""

from __future__ import annotations

from typing import Any

from objects import ObjectContext, SharedObjectContext, VirtualObject

bench_cart = VirtualObject(
    "BenchCart",
    access=lambda user, key, handler: user.is_authenticated,
    description="Benchmark workload: a list of items per key.",
)


@bench_cart.exclusive
def add_item(ctx: ObjectContext, item: Any) -> int:
    """Append the JSON body to the list in state entry `items`; return the list's length."""
    items = ctx.get("items", [])
    items.append(item)
    ctx.set("items", items)
    return len(items)


@bench_cart.shared
def get_items(ctx: SharedObjectContext) -> list:
    """The list of items added so far."""
    return ctx.get("items", [])


from . import waiting  # noqa: E402,F401  - BenchAwait
