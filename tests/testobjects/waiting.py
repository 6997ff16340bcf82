"""Object types that wait durably (tests/concurrency/test_suspension.py, tests/integration/test_awakeables.py)."""

from __future__ import annotations

from typing import Any

from objects import ObjectContext, SharedObjectContext, TerminalError, VirtualObject


def _own_keys(user, key: str, handler: str) -> bool:
    return user.is_authenticated and key.startswith(user.username)


waiter = VirtualObject("Waiter", access=_own_keys)


def _redis():
    from objects.signals.notify import client

    return client()


@waiter.exclusive
def nap(ctx: ObjectContext, arg: dict) -> dict:
    """A journaled step, a state write, a sleep, another step: each step counts its real runs in Redis."""
    before = ctx.run("before", lambda: _redis().incr(f"waiter:before:{ctx.key}"))
    ctx.set("naps", ctx.get("naps", 0) + 1)
    ctx.send("Recorder", f"nap-{ctx.key}", "append", {"value": before})
    ctx.sleep(arg["seconds"])
    after = ctx.run("after", lambda: _redis().incr(f"waiter:after:{ctx.key}"))
    return {"before": before, "after": after, "naps": ctx.get("naps")}


@waiter.exclusive
def approve(ctx: ObjectContext) -> dict:
    """Wait for an awakeable whose id a journaled step publishes (a Redis list); a reject is caught."""
    runs = ctx.run("runs", lambda: _redis().incr(f"waiter:runs:{ctx.key}"))
    awakeable_id, awaitable = ctx.awakeable()
    ctx.run("publish", lambda: _redis().rpush(f"waiter:ids:{ctx.key}", awakeable_id))
    try:
        value = awaitable.result()
    except TerminalError as exc:
        return {"rejected": str(exc), "runs": runs}
    ctx.set("approved", value)
    return {"value": value, "runs": runs}


@waiter.exclusive
def bump(ctx: ObjectContext) -> int:
    n = ctx.get("n", 0) + 1
    ctx.set("n", n)
    return n


@waiter.shared
def peek(ctx: SharedObjectContext) -> dict:
    return ctx.get_all()


@waiter.exclusive
def swallow(ctx: ObjectContext, arg: dict) -> str:
    """A handler that catches every Exception around its sleep: the suspension is not one of them."""
    try:
        ctx.sleep(arg["seconds"])
    except Exception:  # noqa: BLE001 - the point of the test
        return "swallowed"
    return "slept"


@waiter.exclusive
def resolve_for(ctx: ObjectContext, arg: dict) -> None:
    """Resolve (or reject) another invocation's awakeable from a handler: it happens when this one commits."""
    if arg.get("reject"):
        ctx.reject_awakeable(arg["id"], arg["reject"])
    else:
        ctx.resolve_awakeable(arg["id"], arg.get("value"))
    if arg.get("then_fail"):
        raise TerminalError("failing after the resolve", 400)


@waiter.exclusive
def call_sleeper(ctx: ObjectContext, arg: dict) -> Any:
    """A request-response call to a handler that sleeps: it cannot wait inside its caller's transaction."""
    return ctx.call("BenchAwait", arg["key"], "sleep", {"ms": 1000})
