"""BenchAwait: durable waiting under load (awakeables, sleeps, named timers), for any signed-in user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from objects import ObjectContext, SharedObjectContext, VirtualObject

bench_await = VirtualObject(
    "BenchAwait",
    access=lambda user, key, handler: user.is_authenticated,
    description="Benchmark workload: waits on an awakeable, sleeps, and ticks by a named timer.",
)


@dataclass
class Sleep:
    ms: int


@dataclass
class Arm:
    name: str
    ms: int
    every_ms: int | None = None


@dataclass
class Disarm:
    name: str


@bench_await.exclusive
def wait(ctx: ObjectContext) -> Any:
    """Wait on one awakeable (its id is in the invocation's `awaiting`); return the value it is resolved with."""
    _, awaitable = ctx.awakeable()
    return awaitable.result()


@bench_await.exclusive
def sleep(ctx: ObjectContext, arg: Sleep) -> dict:
    """Sleep `ms` milliseconds durably (the invocation is suspended meanwhile)."""
    ctx.sleep(timedelta(milliseconds=arg.ms))
    return {"slept_ms": arg.ms}


@bench_await.exclusive
def arm(ctx: ObjectContext, arg: Arm) -> str:
    """Arm the timer `name`: `tick` after `ms` milliseconds, then every `every_ms` when given."""
    every = timedelta(milliseconds=arg.every_ms) if arg.every_ms else None
    return ctx.timer(arg.name, "tick", delay=timedelta(milliseconds=arg.ms), every=every)


@bench_await.exclusive
def disarm(ctx: ObjectContext, arg: Disarm) -> bool:
    """Disarm the timer `name`; False when none was armed."""
    return ctx.cancel_timer(arg.name)


@bench_await.exclusive
def tick(ctx: ObjectContext) -> int:
    """Add 1 to state `ticks` (a timer runs it)."""
    ticks = ctx.get("ticks", 0) + 1
    ctx.set("ticks", ticks)
    return ticks


@bench_await.shared
def ticks(ctx: SharedObjectContext) -> int:
    """How many times `tick` ran."""
    return ctx.get("ticks", 0)
