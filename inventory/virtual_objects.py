"""The `Inventory` object (key = SKU): stock that is never oversold, reserved per order.

State: ``on_hand`` (units in the warehouse), ``reservations`` (``{order_id: quantity}``, held but not yet
shipped) and ``settled`` (the last SETTLED_MEMORY settled orders, so repeats are idempotent).
available = on_hand - sum(reservations). Every handler of one SKU runs alone (exclusive), so two
reservations can never both take the last unit.

Life of a reservation: reserve -> commit (the goods leave: on_hand drops) or release (the hold ends).
Releasing a committed reservation puts its units back (an order cancelled after its stock was committed).
"""

from __future__ import annotations

from typing import Any

from objects import ObjectContext, SharedObjectContext, TerminalError, VirtualObject

from .inputs import OrderRef, Reservation, Restock

SETTLED_MEMORY = 1000


def inventory_access(user: Any, key: str, handler: str) -> bool:
    """Anyone may read `available`; writes over HTTP are staff-only (checkout calls them server-side)."""
    return handler == "available" or bool(user.is_staff)


inventory = VirtualObject(
    "Inventory",
    access=inventory_access,
    description="Stock of one SKU (key = SKU): restock, reserve, release, commit, available.",
)


def _view(ctx: SharedObjectContext) -> dict:
    reserved = sum(ctx.get("reservations", {}).values())
    return {"available": int(ctx.get("on_hand", 0)) - reserved, "reserved": reserved}


def _settle(ctx: ObjectContext, order_id: str, quantity: int, outcome: str) -> None:
    settled = ctx.get("settled", {})
    number = int(ctx.get("settled_count", 0))
    settled[order_id] = {"quantity": quantity, "outcome": outcome, "n": number}
    if len(settled) > SETTLED_MEMORY:
        oldest = min(settled, key=lambda k: settled[k]["n"])
        del settled[oldest]
    ctx.set("settled", settled)
    ctx.set("settled_count", number + 1)


def _unknown(ctx: SharedObjectContext, order_id: str) -> TerminalError:
    return TerminalError(f"No reservation for order {order_id!r} on {ctx.key}.", 404)


@inventory.exclusive
def restock(ctx: ObjectContext, arg: Restock) -> dict:
    """Add units to the stock on hand (staff only over HTTP)."""
    ctx.set("on_hand", int(ctx.get("on_hand", 0)) + arg.quantity)
    return _view(ctx)


@inventory.exclusive
def reserve(ctx: ObjectContext, arg: Reservation) -> dict:
    """Hold units for an order; beyond the available stock is 409. Repeating the same reservation is a no-op."""
    reservations = ctx.get("reservations", {})
    held = reservations.get(arg.order_id)
    if held is not None:
        if held == arg.quantity:
            return _view(ctx)
        raise TerminalError(
            f"Order {arg.order_id!r} already holds {held} of {ctx.key}; release it before reserving {arg.quantity}.",
            409,
        )
    settled = ctx.get("settled", {}).get(arg.order_id)
    if settled is not None:
        raise TerminalError(
            f"The reservation of order {arg.order_id!r} on {ctx.key} was already {settled['outcome']}.", 409
        )
    available = _view(ctx)["available"]
    if arg.quantity > available:
        raise TerminalError(f"Only {available} of {ctx.key} left", 409)
    reservations[arg.order_id] = arg.quantity
    ctx.set("reservations", reservations)
    return _view(ctx)


@inventory.exclusive
def release(ctx: ObjectContext, arg: OrderRef) -> dict:
    """End an order's hold (or put back its committed units); repeats are no-ops; unknown orders are 404."""
    reservations = ctx.get("reservations", {})
    if arg.order_id in reservations:
        quantity = reservations.pop(arg.order_id)
        ctx.set("reservations", reservations)
        _settle(ctx, arg.order_id, quantity, "released")
        return _view(ctx)
    settled = ctx.get("settled", {}).get(arg.order_id)
    if settled is None:
        raise _unknown(ctx, arg.order_id)
    if settled["outcome"] == "committed":
        ctx.set("on_hand", int(ctx.get("on_hand", 0)) + settled["quantity"])
        _settle(ctx, arg.order_id, settled["quantity"], "returned")
    return _view(ctx)


@inventory.exclusive
def commit(ctx: ObjectContext, arg: OrderRef) -> dict:
    """The reserved units leave the warehouse; repeats are no-ops; unknown orders are 404."""
    reservations = ctx.get("reservations", {})
    if arg.order_id in reservations:
        quantity = reservations.pop(arg.order_id)
        ctx.set("reservations", reservations)
        ctx.set("on_hand", int(ctx.get("on_hand", 0)) - quantity)
        _settle(ctx, arg.order_id, quantity, "committed")
        return _view(ctx)
    settled = ctx.get("settled", {}).get(arg.order_id)
    if settled is None:
        raise _unknown(ctx, arg.order_id)
    if settled["outcome"] != "committed":
        raise TerminalError(f"The reservation of order {arg.order_id!r} on {ctx.key} was {settled['outcome']}.", 409)
    return _view(ctx)


@inventory.shared
def available(ctx: SharedObjectContext) -> dict:
    """Units free to reserve and units held by open reservations."""
    return _view(ctx)
