"""Object types used by the test suite (registered only when OBJECTS_TEST_OBJECTS=1)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from objects import ObjectContext, SharedObjectContext, TerminalError, VirtualObject

recorder = VirtualObject("Recorder", access=lambda user, key, handler: user.is_authenticated)


def _redis():
    from objects.signals.notify import client

    return client()


@dataclass
class Item:
    value: int | str


@recorder.exclusive
def append(ctx: ObjectContext, item: Item) -> int:
    items = ctx.get("items", [])
    items.append(item.value)
    ctx.set("items", items)
    return len(items)


@recorder.shared
def items(ctx: SharedObjectContext) -> list:
    return ctx.get("items", [])


@recorder.exclusive
def hold(ctx: ObjectContext, arg: dict) -> str:
    """Record enter/exit in a side table; optionally block until the test pushes to a release list."""
    from tests.testobjects.models import Event

    Event.objects.create(key=ctx.key, kind="enter", at=time.time(), worker=str(os.getpid()))
    _redis().rpush(f"entered:{ctx.key}", 1)  # visible at once, unlike the uncommitted Event row
    ctx.set("held", True)
    if arg.get("release"):
        _redis().blpop([f"release:{arg['release']}"], timeout=arg.get("timeout", 20))
    if arg.get("sleep"):
        time.sleep(arg["sleep"])
    Event.objects.create(key=ctx.key, kind="exit", at=time.time(), worker=str(os.getpid()))
    return "done"


@recorder.exclusive
def flaky(ctx: ObjectContext, arg: dict) -> int:
    """Fails `fail_times` times (counted in Redis, outside the transaction), then appends once."""
    attempt = _redis().incr(f"flaky:{ctx.key}:{arg['id']}")
    ctx.set("touched", ctx.get("touched", 0) + 1)
    if attempt <= arg["fail_times"]:
        raise RuntimeError(f"transient failure {attempt}")
    return append(ctx, Item(arg["id"]))


@recorder.exclusive
def refuse(ctx: ObjectContext, arg: dict) -> None:
    ctx.set("items", ["should not be kept"])
    _redis().incr(f"refuse:{ctx.key}")
    raise TerminalError(arg.get("message", "refused"), arg.get("status", 422))


@dataclass
class OtherKey:
    key: str


@recorder.exclusive
def note_succeeded(ctx: ObjectContext, other: OtherKey) -> int:
    """Notes, with the ORM, the succeeded invocations of another key; returns how many rows the update changed."""
    from objects.models import Invocation, Status

    succeeded = Invocation.objects.filter(type_name="Recorder", key=other.key, status=Status.SUCCEEDED)
    return succeeded.update(error_code=299)


@recorder.shared
def sneaky_write(ctx: SharedObjectContext) -> None:
    ctx.set("items", [])  # type: ignore[attr-defined]


@recorder.exclusive
def crash_once(ctx: ObjectContext, arg: dict) -> int:
    """Appends; on the first attempt it signals the test and blocks so the test can SIGKILL the worker."""
    if _redis().incr(f"crash:{ctx.key}") == 1:
        ctx.set("items", ["half-applied"])
        _redis().rpush(f"crash-started:{ctx.key}", 1)
        time.sleep(60)
    return append(ctx, Item(arg["id"]))


@recorder.exclusive
def crash_always(ctx: ObjectContext, arg: dict) -> None:
    """A poison handler: it SIGKILLs the worker process running it, every time (keys `poison-*` only)."""
    import signal

    if not ctx.key.startswith("poison-") or arg.get("confirm") != "kill my worker":
        raise TerminalError("crash_always only runs on poison-* keys with confirm='kill my worker'", 400)
    _redis().incr(f"crashes:{ctx.key}")
    os.kill(os.getpid(), signal.SIGKILL)


# chains: more test types (calls, sends, steps, idempotency); docs_examples: types declared in docs/*.md;
# inputs: nested inputs (tests/security/test_inputs.py); callers: who called (tests/integration/test_principal.py);
# history: the state history bound (tests/integration/test_state_history_bound.py); waiting: durable waits
# (tests/concurrency/test_suspension.py), with the bench app's BenchAwait
import bench.waiting  # noqa: E402,F401

from . import callers, chains, docs_examples, history, inputs, waiting  # noqa: E402,F401
