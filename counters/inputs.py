"""Handler input of the Counter object."""

from __future__ import annotations

from dataclasses import dataclass

from objects import TerminalError

MAX_STEP = 1_000_000


@dataclass
class Step:
    """`increment` and `decrement`: by how much (1 to 1,000,000; an empty body means 1)."""

    by: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.by <= MAX_STEP:
            raise TerminalError(f"by: must be a whole number from 1 to {MAX_STEP:,}, got {self.by}.", 400)
