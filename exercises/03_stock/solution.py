"""Exercise 3: Stock, units of one SKU reserved per order, never oversold. A solution (docs/exercises.md);
inventory/ is the shop's full one (commit, returns, settled orders)."""

from __future__ import annotations

from dataclasses import dataclass

from objects import ObjectContext, SharedObjectContext, TerminalError, VirtualObject

stock = VirtualObject("Stock", description="Units of one SKU (the key), reserved per order.")


@dataclass
class Restock:
    quantity: int

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise TerminalError("quantity: must be at least 1.", 400)


@dataclass
class Reservation:
    order_id: str
    quantity: int

    def __post_init__(self) -> None:
        if self.quantity < 1:
            raise TerminalError("quantity: must be at least 1.", 400)


@dataclass
class Release:
    order_id: str


def _view(ctx: SharedObjectContext | ObjectContext) -> dict:
    reserved = sum(ctx.get("reservations", {}).values())
    return {"available": ctx.get("on_hand", 0) - reserved, "reserved": reserved}


@stock.exclusive
def restock(ctx: ObjectContext, arg: Restock) -> dict:
    ctx.set("on_hand", ctx.get("on_hand", 0) + arg.quantity)
    return _view(ctx)


@stock.exclusive
def reserve(ctx: ObjectContext, arg: Reservation) -> dict:
    reservations = ctx.get("reservations", {})
    if arg.order_id in reservations:
        if reservations[arg.order_id] != arg.quantity:
            raise TerminalError(f"Order {arg.order_id} holds {reservations[arg.order_id]} already.", 409)
        return _view(ctx)
    available = _view(ctx)["available"]
    if arg.quantity > available:
        raise TerminalError(f"Only {available} of {ctx.key} left.", 409)
    reservations[arg.order_id] = arg.quantity
    ctx.set("reservations", reservations)
    return _view(ctx)


@stock.exclusive
def release(ctx: ObjectContext, arg: Release) -> dict:
    reservations = ctx.get("reservations", {})
    if arg.order_id not in reservations:
        raise TerminalError(f"Order {arg.order_id} holds no {ctx.key}.", 404)
    del reservations[arg.order_id]
    ctx.set("reservations", reservations)
    return _view(ctx)


@stock.shared
def available(ctx: SharedObjectContext) -> dict:
    return _view(ctx)
