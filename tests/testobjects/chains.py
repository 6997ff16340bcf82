"""Test types for calls between objects, sends, journaled steps and idempotency."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from objects import ObjectContext, SharedObjectContext, TerminalError, VirtualObject

chain = VirtualObject("Chain", access=lambda user, key, handler: user.is_authenticated)
relay = VirtualObject("Relay")
third = VirtualObject("Third")


def _redis():
    from objects.signals.notify import client

    return client()


@chain.exclusive
def call_self(ctx: ObjectContext) -> None:
    ctx.call("Chain", ctx.key, "bump")


@chain.exclusive
def bump(ctx: ObjectContext) -> int:
    value = ctx.get("n", 0) + 1
    ctx.set("n", value)
    return value


@chain.shared
def peek(ctx: SharedObjectContext) -> int:
    return ctx.get("n", 0)


@chain.exclusive
def cycle(ctx: ObjectContext) -> None:
    ctx.call("Relay", "r1", "forward", {"back_to": ctx.key})


@relay.exclusive
def forward(ctx: ObjectContext, arg: dict) -> None:
    ctx.call("Third", "t1", "forward", arg)


@third.exclusive(name="forward")
def forward_third(ctx: ObjectContext, arg: dict) -> None:
    ctx.call("Chain", arg["back_to"], "bump")


@chain.exclusive
def bump_other_then(ctx: ObjectContext, arg: dict) -> int:
    """Bump another Chain key (a request-response call), then optionally fail afterwards."""
    value = ctx.call("Chain", arg["other"], "bump")
    ctx.set("n", ctx.get("n", 0) + 1)
    if arg.get("then_fail"):
        raise TerminalError("failing after the call", 400)
    return value


@chain.exclusive
def catch_callee_error(ctx: ObjectContext) -> str:
    try:
        ctx.call("Recorder", "x", "refuse", {"message": "callee says no", "status": 409})
    except TerminalError as exc:
        return f"caught {exc.status_code}: {exc}"
    return "not raised"


@chain.exclusive
def read_shared_of_held(ctx: ObjectContext) -> int:
    return ctx.call("Chain", ctx.key, "peek")


@chain.exclusive
def cross(ctx: ObjectContext, arg: dict) -> int:
    """Lock this key, pause, then call the other key: two opposite chains can deadlock in the database."""
    import time

    ctx.set("n", ctx.get("n", 0) + 1)
    time.sleep(arg.get("pause", 0.05))
    return ctx.call("Chain", arg["other"], "bump")


@chain.exclusive
def send_then(ctx: ObjectContext, arg: dict) -> str:
    delay = timedelta(seconds=arg["delay"]) if arg.get("delay") else None
    invocation_id = ctx.send("Recorder", arg["target"], "append", {"value": arg["value"]}, delay=delay)
    if arg.get("then_fail"):
        raise TerminalError("failing after the send", 400)
    return invocation_id


@chain.exclusive
def step_then_fail_once(ctx: ObjectContext, arg: dict) -> int:
    """A journaled step that counts its real executions in Redis, then a transient failure on attempt 1."""
    value = ctx.run("count", lambda: _redis().incr(f"step:{arg['id']}"))
    if _redis().incr(f"attempt:{arg['id']}") == 1:
        raise RuntimeError("transient failure after the step")
    return value


@chain.exclusive
def slow_once(ctx: ObjectContext, arg: dict) -> int:
    """Counts executions; sleeps so concurrent idempotent requests overlap."""
    import time

    time.sleep(arg.get("sleep", 0.3))
    count = _redis().incr(f"exec:{arg['id']}")
    ctx.set("n", ctx.get("n", 0) + 1)
    return count


ephemeral = VirtualObject("Ephemeral", state_ttl=60)


@dataclass
class Put:
    value: str


@ephemeral.exclusive
def put(ctx: ObjectContext, arg: Put) -> None:
    ctx.set("value", arg.value)


@ephemeral.shared
def value(ctx: SharedObjectContext):
    return ctx.get("value")


@dataclass
class Names:
    names: list[str]


@ephemeral.exclusive
def put_names(ctx: ObjectContext, arg: Names) -> list[str]:
    """Store an object with the names as its keys, in their order; return the keys of the one stored before."""
    before = ctx.get("names", {})
    ctx.set("names", {name: index for index, name in enumerate(arg.names)})
    return list(before) if isinstance(before, dict) else []


@ephemeral.exclusive
def entries(ctx: ObjectContext) -> dict:
    """Every state entry, as the handler reads it."""
    return {name: ctx.get(name) for name in ctx.state_keys()}
