"""Exercise 3: Stock, units of one SKU reserved per order, never oversold. Write your code here; `make exercise
3` checks it (docs/exercises.md)."""

from __future__ import annotations

from dataclasses import dataclass

from objects import ObjectContext, SharedObjectContext, TerminalError, VirtualObject

stock = VirtualObject("Stock", description="Units of one SKU (the key), reserved per order.")


@dataclass
class Restock:
    quantity: int  # TODO: at least 1 (400 otherwise)


@dataclass
class Reservation:
    order_id: str
    quantity: int  # TODO: at least 1 (400 otherwise)


@dataclass
class Release:
    order_id: str


@stock.exclusive
def restock(ctx: ObjectContext, arg: Restock) -> dict:
    """Add units on hand; returns {"available": n, "reserved": n}."""
    raise TerminalError("Not written yet: Stock.restock", 501)


@stock.exclusive
def reserve(ctx: ObjectContext, arg: Reservation) -> dict:
    """Hold units for an order: "Only N of SKU left." (409) when short; the same reservation again is a no-op."""
    raise TerminalError("Not written yet: Stock.reserve", 501)


@stock.exclusive
def release(ctx: ObjectContext, arg: Release) -> dict:
    """Give an order's units back; 404 when the order holds none."""
    raise TerminalError("Not written yet: Stock.release", 501)


@stock.shared
def available(ctx: SharedObjectContext) -> dict:
    """{"available": on hand minus reserved, "reserved": n}."""
    raise TerminalError("Not written yet: Stock.available", 501)
