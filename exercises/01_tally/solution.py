"""Exercise 1: Tally, a counter per key. A solution (docs/exercises.md); counters/ is the shop's full one."""

from __future__ import annotations

from dataclasses import dataclass

from objects import ObjectContext, SharedObjectContext, TerminalError, VirtualObject

tally = VirtualObject("Tally", description="A counter per key.")


@dataclass
class Step:
    by: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.by <= 1000:
            raise TerminalError(f"by: must be from 1 to 1000, not {self.by}.", 400)


@tally.exclusive
def add(ctx: ObjectContext, step: Step) -> int:
    """Add `by` to the key's value; return the new value."""
    total = ctx.get("value", 0) + step.by
    ctx.set("value", total)
    return total


@tally.exclusive
def reset(ctx: ObjectContext) -> int:
    """Set the value back to 0; return 0."""
    ctx.set("value", 0)
    return 0


@tally.shared
def value(ctx: SharedObjectContext) -> int:
    """The key's value: 0 for a key never added to."""
    return ctx.get("value", 0)
