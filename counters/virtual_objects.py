"""The `Counter` object (key = "<tenant>/<name>"): a multi-tenant counter whose handlers return a bare number.

Access: staff may use any tenant slug, existing or not; other users only the tenants they are members of.
"""

from __future__ import annotations

from typing import Any

from objects import ObjectContext, SharedObjectContext, VirtualObject

from .inputs import Step
from .keys import counter_key_check, counter_key_split


def counter_access(user: Any, key: str, handler: str) -> bool:
    """Staff: any well-formed key. Others: keys of tenants they are members of."""
    from .selectors import tenant_is_member

    parts = counter_key_split(key)
    if parts is None:
        return bool(user.is_staff)  # staff then get the handler's 400 naming the key rule
    return bool(user.is_staff) or tenant_is_member(user=user, slug=parts[0])


counter = VirtualObject(
    "Counter",
    access=counter_access,
    description='A tenant\'s counter (key = "<tenant>/<name>"): increment, decrement, reset, get.',
)


def _add(ctx: ObjectContext, delta: int) -> int:
    counter_key_check(ctx.key)
    value = int(ctx.get("value", 0)) + delta
    ctx.set("value", value)
    return value


@counter.exclusive
def increment(ctx: ObjectContext, arg: Step) -> int:
    """Add `by` (default 1); returns the new value."""
    return _add(ctx, arg.by)


@counter.exclusive
def decrement(ctx: ObjectContext, arg: Step) -> int:
    """Subtract `by` (default 1); the value may go below zero. Returns the new value."""
    return _add(ctx, -arg.by)


@counter.exclusive
def reset(ctx: ObjectContext) -> int:
    """Set the value to 0; returns 0."""
    counter_key_check(ctx.key)
    ctx.set("value", 0)
    return 0


@counter.shared
def get(ctx: SharedObjectContext) -> int:
    """The current value (0 for a counter never changed)."""
    counter_key_check(ctx.key)
    return int(ctx.get("value", 0))
