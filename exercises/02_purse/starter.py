"""Exercise 2: Purse, money in cents per user, each movement once. Write your code here; `make exercise 2`
checks it (docs/exercises.md)."""

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
        pass  # TODO: amount from 1 to MAX_AMOUNT, a tx_id that is not empty; otherwise TerminalError(..., 400)


@purse.exclusive
def deposit(ctx: ObjectContext, movement: Movement) -> dict:
    """Add `amount` cents; returns {"balance": cents}. A tx_id seen before returns its first result."""
    raise TerminalError("Not written yet: Purse.deposit", 501)


@purse.exclusive
def withdraw(ctx: ObjectContext, movement: Movement) -> dict:
    """Take `amount` cents, never below zero: "Insufficient funds: balance B, need A." (409)."""
    raise TerminalError("Not written yet: Purse.withdraw", 501)


@purse.shared
def balance(ctx: SharedObjectContext) -> dict:
    """{"balance": cents}: 0 for a purse never used."""
    raise TerminalError("Not written yet: Purse.balance", 501)
