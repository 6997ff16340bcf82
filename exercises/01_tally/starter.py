"""Exercise 1: Tally, a counter per key. Write your code here; `make exercise 1` checks it (docs/exercises.md)."""

from __future__ import annotations

from dataclasses import dataclass

from objects import ObjectContext, SharedObjectContext, TerminalError, VirtualObject

tally = VirtualObject("Tally", description="A counter per key.")


@dataclass
class Step:
    by: int = 1

    def __post_init__(self) -> None:
        pass  # TODO: refuse a `by` outside 1..1000 with TerminalError("by: ...", 400)


@tally.exclusive
def add(ctx: ObjectContext, step: Step) -> int:
    """Add `by` to the key's value; return the new value."""
    raise TerminalError("Not written yet: Tally.add", 501)


@tally.exclusive
def reset(ctx: ObjectContext) -> int:
    """Set the value back to 0; return 0."""
    raise TerminalError("Not written yet: Tally.reset", 501)


@tally.shared
def value(ctx: SharedObjectContext) -> int:
    """The key's value: 0 for a key never added to."""
    raise TerminalError("Not written yet: Tally.value", 501)
