"""Handler inputs of the Order object; each checks its shape before the invocation is accepted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from objects import TerminalError

MAX_LINES = 100
MAX_LINE_QUANTITY = 10_000
LINE_FIELDS = ("sku", "name", "unit_price_cents", "quantity", "line_total_cents")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _line_problem(index: int, line: Any) -> str | None:
    where = f"lines[{index}]"
    if not isinstance(line, dict):
        return f"{where}: expected an object with {', '.join(LINE_FIELDS)}."
    missing = [f for f in LINE_FIELDS if f not in line]
    unknown = sorted(set(line) - set(LINE_FIELDS))
    if missing or unknown:
        return f"{where}: missing {', '.join(missing) or 'nothing'}; unknown {', '.join(unknown) or 'nothing'}."
    if not isinstance(line["sku"], str) or not 1 <= len(line["sku"]) <= 255:
        return f"{where}.sku: must be 1 to 255 characters."
    if not isinstance(line["name"], str) or len(line["name"]) > 500:
        return f"{where}.name: must be a string of at most 500 characters."
    if not _is_int(line["unit_price_cents"]) or line["unit_price_cents"] < 0:
        return f"{where}.unit_price_cents: must be a whole number of cents, 0 or more."
    if not _is_int(line["quantity"]) or not 1 <= line["quantity"] <= MAX_LINE_QUANTITY:
        return f"{where}.quantity: must be a whole number from 1 to {MAX_LINE_QUANTITY}."
    expected = line["unit_price_cents"] * line["quantity"]
    if not _is_int(line["line_total_cents"]) or line["line_total_cents"] != expected:
        return f"{where}.line_total_cents: must equal unit_price_cents x quantity ({expected})."
    return None


@dataclass
class NewOrder:
    """`create`: who placed the order, its lines (as the cart shows them) and the total in cents."""

    user: str
    lines: list
    total_cents: int

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= len(self.user) <= 150:
            problems.append("user: must be a username (1 to 150 characters).")
        if not 1 <= len(self.lines) <= MAX_LINES:
            problems.append(f"lines: an order has 1 to {MAX_LINES} lines.")
        skus = [line.get("sku") for line in self.lines if isinstance(line, dict)]
        if len(set(skus)) != len(skus):
            problems.append("lines: each SKU may appear once.")
        problems += [p for i, line in enumerate(self.lines) if (p := _line_problem(i, line))]
        if not problems and self.total_cents != sum(line["line_total_cents"] for line in self.lines):
            problems.append("total_cents: must equal the sum of line_total_cents.")
        if problems:
            raise TerminalError("Invalid order: " + " ".join(problems), 400)


@dataclass
class Payment:
    """`pay`: the wallet transaction that charged the order. Who paid is the invocation's principal, not input."""

    tx_id: str

    def __post_init__(self) -> None:
        if not 1 <= len(self.tx_id) <= 300:
            raise TerminalError("tx_id: must be 1 to 300 characters.", 400)
