"""Exercise 4: Parcel, a state machine per parcel with its history. A solution (docs/exercises.md); orders/ is
the shop's full one (refunds and stock released on cancel, access per owner)."""

from __future__ import annotations

from objects import ObjectContext, SharedObjectContext, TerminalError, VirtualObject

parcel = VirtualObject("Parcel", description="created → paid → shipped → delivered; cancel from created or paid.")

TRANSITIONS = {  # action: (the states it may start from, the state it leads to)
    "pay": (("created",), "paid"),
    "ship": (("paid",), "shipped"),
    "deliver": (("shipped",), "delivered"),
    "cancel": (("created", "paid"), "cancelled"),
}


def _move(ctx: ObjectContext, action: str) -> dict:
    status = ctx.get("status", "created")
    sources, target = TRANSITIONS[action]
    if status not in sources:
        allowed = [name for name, (starts, _) in TRANSITIONS.items() if status in starts]
        listed = ", ".join(allowed) if allowed else "nothing (it is a final state)"
        raise TerminalError(f"Cannot {action} parcel {ctx.key}: it is {status}. Allowed from {status}: {listed}.", 409)
    history = ctx.get("history", [])
    history.append({"from": status, "to": target})
    ctx.set("status", target)
    ctx.set("history", history)
    return {"status": target, "history": history}


@parcel.exclusive
def pay(ctx: ObjectContext) -> dict:
    return _move(ctx, "pay")


@parcel.exclusive
def ship(ctx: ObjectContext) -> dict:
    return _move(ctx, "ship")


@parcel.exclusive
def deliver(ctx: ObjectContext) -> dict:
    return _move(ctx, "deliver")


@parcel.exclusive
def cancel(ctx: ObjectContext) -> dict:
    return _move(ctx, "cancel")


@parcel.shared
def status(ctx: SharedObjectContext) -> dict:
    return {"status": ctx.get("status", "created"), "history": ctx.get("history", [])}
