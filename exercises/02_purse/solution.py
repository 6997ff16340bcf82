"""Exercise 2: Purse, money in cents per user, each movement once. A solution (docs/exercises.md); wallet/ is
the shop's full one (transfers, a paged history)."""

from __future__ import annotations

from dataclasses import dataclass

from objects import ObjectContext, SharedObjectContext, TerminalError, VirtualObject

purse = VirtualObject("Purse", description="Money in cents per user; a repeated tx_id changes nothing.")

MAX_AMOUNT = 1_000_000


@dataclass
class Movement:
    amount: int
    tx_id: str

    def __post_init__(self) -> None:
        if not 1 <= self.amount <= MAX_AMOUNT:
            raise TerminalError(f"amount: must be from 1 to {MAX_AMOUNT} cents, not {self.amount}.", 400)
        if not self.tx_id:
            raise TerminalError("tx_id: must not be empty.", 400)


def _move(ctx: ObjectContext, kind: str, movement: Movement, delta: int) -> dict:
    seen = ctx.get("tx", {})
    if movement.tx_id in seen:
        first = seen[movement.tx_id]
        if first["kind"] != kind or first["amount"] != movement.amount:
            raise TerminalError(f"tx_id {movement.tx_id} was used for another movement.", 409)
        return {"balance": first["balance"]}
    balance = ctx.get("balance", 0)
    if balance + delta < 0:
        raise TerminalError(f"Insufficient funds: balance {balance}, need {movement.amount}.", 409)
    balance += delta
    seen[movement.tx_id] = {"kind": kind, "amount": movement.amount, "balance": balance}
    ctx.set("balance", balance)
    ctx.set("tx", seen)
    return {"balance": balance}


@purse.exclusive
def deposit(ctx: ObjectContext, movement: Movement) -> dict:
    """Add `amount` cents; returns {"balance": cents}."""
    return _move(ctx, "deposit", movement, movement.amount)


@purse.exclusive
def withdraw(ctx: ObjectContext, movement: Movement) -> dict:
    """Take `amount` cents, never below zero (409); returns {"balance": cents}."""
    return _move(ctx, "withdraw", movement, -movement.amount)


@purse.shared
def balance(ctx: SharedObjectContext) -> dict:
    """{"balance": cents}: 0 for a purse never used."""
    return {"balance": ctx.get("balance", 0)}
