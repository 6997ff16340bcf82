"""Exercise 4: Parcel, a state machine per parcel with its history. Write your code here; `make exercise 4`
checks it (docs/exercises.md)."""

from __future__ import annotations

from objects import ObjectContext, SharedObjectContext, TerminalError, VirtualObject

parcel = VirtualObject("Parcel", description="created → paid → shipped → delivered; cancel from created or paid.")

# TODO: the machine as data, e.g. {"pay": (("created",), "paid"), ...}, so that a refusal can list what is allowed:
# "Cannot ship parcel p1: it is created. Allowed from created: pay, cancel." (409); from a final state the list
# is "nothing (it is a final state)". A parcel never touched is "created".


@parcel.exclusive
def pay(ctx: ObjectContext) -> dict:
    """created → paid; returns {"status": ..., "history": [{"from": ..., "to": ...}, ...]}."""
    raise TerminalError("Not written yet: Parcel.pay", 501)


@parcel.exclusive
def ship(ctx: ObjectContext) -> dict:
    """paid → shipped."""
    raise TerminalError("Not written yet: Parcel.ship", 501)


@parcel.exclusive
def deliver(ctx: ObjectContext) -> dict:
    """shipped → delivered."""
    raise TerminalError("Not written yet: Parcel.deliver", 501)


@parcel.exclusive
def cancel(ctx: ObjectContext) -> dict:
    """created or paid → cancelled."""
    raise TerminalError("Not written yet: Parcel.cancel", 501)


@parcel.shared
def status(ctx: SharedObjectContext) -> dict:
    """{"status": ..., "history": [...]}; a new parcel is created with an empty history."""
    raise TerminalError("Not written yet: Parcel.status", 501)
