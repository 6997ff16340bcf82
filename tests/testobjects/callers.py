"""Test types of who called (tests/integration/test_principal.py): handlers that answer and keep what their
context says of their caller and principal, and ones that call or send to another key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from objects import ObjectContext, SharedObjectContext, VirtualObject

whoami = VirtualObject("Whoami", access=lambda user, key, handler: user.is_authenticated)


def _seen(ctx: SharedObjectContext) -> dict[str, Any]:
    caller, principal = ctx.caller, ctx.principal
    return {
        "caller": None if caller is None else [caller.type_name, caller.key],
        "principal": None if principal is None else {"id": principal.id, "username": principal.username},
    }


@whoami.exclusive
def who(ctx: ObjectContext) -> dict:
    seen = _seen(ctx)
    ctx.set("seen", seen)
    return seen


@whoami.shared
def peek(ctx: SharedObjectContext) -> dict:
    return _seen(ctx)


@dataclass
class Target:
    key: str
    shared: bool = False


@whoami.exclusive
def relay(ctx: ObjectContext, target: Target) -> dict:
    return ctx.call("Whoami", target.key, "peek" if target.shared else "who")


@whoami.exclusive
def relay_send(ctx: ObjectContext, target: Target) -> str:
    return ctx.send("Whoami", target.key, "who")
