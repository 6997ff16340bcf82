"""Handler inputs of the Inventory object; each checks its ranges before the invocation is accepted."""

from __future__ import annotations

from dataclasses import dataclass

from objects import TerminalError

MAX_QUANTITY = 1_000_000


def _check_quantity(quantity: int) -> None:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise TerminalError(f"quantity: must be a whole number from 1 to {MAX_QUANTITY}, got {quantity}.", 400)


def _check_order_id(order_id: str) -> None:
    if not 1 <= len(order_id) <= 255 or not order_id.strip():
        raise TerminalError("order_id: must be 1 to 255 characters and not blank.", 400)


@dataclass
class Restock:
    """`restock`: add `quantity` units to the stock on hand."""

    quantity: int

    def __post_init__(self) -> None:
        _check_quantity(self.quantity)


@dataclass
class Reservation:
    """`reserve`: hold `quantity` units for order `order_id`."""

    order_id: str
    quantity: int

    def __post_init__(self) -> None:
        _check_order_id(self.order_id)
        _check_quantity(self.quantity)


@dataclass
class OrderRef:
    """`release` and `commit`: the order whose reservation they settle."""

    order_id: str

    def __post_init__(self) -> None:
        _check_order_id(self.order_id)
