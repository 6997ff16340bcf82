"""The `Wallet` object (key = username): cents that are never created or lost, with idempotent movements.

Money comes in only from staff (a `deposit` over HTTP needs objects.change_instance, see docs/api.md), from
other objects (`ctx.call`: an order's refund, the credit half of a transfer) and from server-side code (the
shop's demo top-up calls `top_up`, capped per day). A user may not deposit into their own wallet over HTTP.

Every writing handler takes a caller-chosen `tx_id`: a repeated tx_id returns the first result and changes
nothing (the last TX_MEMORY tx_ids of a wallet are remembered, see `wallet.ledger`). A transfer debits
the sender and credits the receiver in one transaction (`ctx.call` runs the receiver's `receive` under
its lock inside the sender's transaction), so both happen or neither does.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from objects import ObjectContext, SharedObjectContext, TerminalError, VirtualObject

from .inputs import HistoryQuery, Movement, Receipt, TopUp, Transfer
from .ledger import ledger_balance, ledger_page, ledger_record, ledger_replay

INTERNAL_HANDLERS = frozenset({"receive", "top_up"})  # called by other objects or server-side code only
STAFF_HANDLERS = frozenset({"deposit"})  # money from nowhere: not for the wallet's owner


def wallet_access(user: Any, key: str, handler: str) -> bool:
    """Staff (with the permission the handler needs), or the wallet's owner except for `deposit`; `receive`
    (only a transfer calls it) and `top_up` (only the shop's demo top-up calls it) are refused over HTTP."""
    if handler in INTERNAL_HANDLERS:
        return False
    if user.is_staff:
        return True
    return bool(handler not in STAFF_HANDLERS and user.is_authenticated and user.username == key)


wallet = VirtualObject(
    "Wallet",
    access=wallet_access,
    description="A user's balance in cents (key = username): deposit, withdraw, transfer, history.",
    # The ledger in its state is the wallet's history already; state history would also store its `tx` map (up
    # to TX_MEMORY tx_ids, ~300 KB) again on every movement (docs/admin.md, "State history").
    state_history=False,
)


def _dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def _shortfall(balance: int, need: int) -> TerminalError:
    return TerminalError(f"Insufficient funds: balance {balance}, need {need} (short by {need - balance})", 409)


@wallet.exclusive
def deposit(ctx: ObjectContext, arg: Movement) -> dict:
    """Add `amount` cents. A refund is a deposit with its own tx_id."""
    replay = ledger_replay(ctx, tx_id=arg.tx_id, kind="deposit", amount=arg.amount)
    if replay is not None:
        return replay
    balance = ledger_balance(ctx) + arg.amount
    return ledger_record(ctx, tx_id=arg.tx_id, kind="deposit", amount=arg.amount, balance_after=balance)


@wallet.exclusive
def top_up(ctx: ObjectContext, arg: TopUp) -> dict:
    """Internal: a deposit of at most `daily_cap` cents per day (UTC) in all; over it, 429 naming what is left.
    The day's sum is kept in state (``topup``: {"day", "cents"}), so two top-ups at once cannot both pass."""
    replay = ledger_replay(ctx, tx_id=arg.tx_id, kind="deposit", amount=arg.amount)
    if replay is not None:
        return replay
    today = timezone.now().date().isoformat()
    spent = ctx.get("topup", {})
    used = int(spent.get("cents", 0)) if spent.get("day") == today else 0
    if used + arg.amount > arg.daily_cap:
        left = max(arg.daily_cap - used, 0)
        raise TerminalError(
            f"Demo top-ups are capped at {_dollars(arg.daily_cap)} a day; {_dollars(left)} left today.", 429
        )
    ctx.set("topup", {"day": today, "cents": used + arg.amount})
    balance = ledger_balance(ctx) + arg.amount
    return ledger_record(ctx, tx_id=arg.tx_id, kind="deposit", amount=arg.amount, balance_after=balance)


@wallet.exclusive
def withdraw(ctx: ObjectContext, arg: Movement) -> dict:
    """Take `amount` cents; never below zero (409 naming the shortfall)."""
    replay = ledger_replay(ctx, tx_id=arg.tx_id, kind="withdraw", amount=arg.amount)
    if replay is not None:
        return replay
    balance = ledger_balance(ctx)
    if arg.amount > balance:
        raise _shortfall(balance, arg.amount)
    return ledger_record(ctx, tx_id=arg.tx_id, kind="withdraw", amount=arg.amount, balance_after=balance - arg.amount)


@wallet.exclusive
def transfer(ctx: ObjectContext, arg: Transfer) -> dict:
    """Move `amount` cents to user `to`'s wallet: debit here, credit there, in one transaction."""
    if arg.to == ctx.key:
        raise TerminalError("Cannot transfer to your own wallet; choose another user.", 400)
    replay = ledger_replay(ctx, tx_id=arg.tx_id, kind="transfer_out", amount=arg.amount, counterparty=arg.to)
    if replay is not None:
        return replay
    if not get_user_model().objects.filter(username=arg.to, is_active=True).exists():
        raise TerminalError(f"No user {arg.to!r}: transfers go to an existing, active user.", 404)
    balance = ledger_balance(ctx)
    if arg.amount > balance:
        raise _shortfall(balance, arg.amount)
    ctx.call("Wallet", arg.to, "receive", {"sender": ctx.key, "amount": arg.amount, "tx_id": arg.tx_id})
    return ledger_record(
        ctx,
        tx_id=arg.tx_id,
        kind="transfer_out",
        amount=arg.amount,
        balance_after=balance - arg.amount,
        counterparty=arg.to,
    )


@wallet.exclusive
def receive(ctx: ObjectContext, arg: Receipt) -> dict:
    """Internal: the credit half of a transfer, called by the sender's `transfer` only.

    Recorded under tx_id "<sender>:<tx_id>". A repeat is refused (409) rather than replayed: the sender
    only calls it for a tx_id it has not seen, so a repeat here means the credit exists and a second
    debit must not happen.
    """
    tx_id = f"{arg.sender}:{arg.tx_id}"
    if ledger_replay(ctx, tx_id=tx_id, kind="transfer_in", amount=arg.amount, counterparty=arg.sender):
        raise TerminalError(f"Transfer {arg.tx_id!r} from {arg.sender} was already received by {ctx.key}.", 409)
    balance = ledger_balance(ctx) + arg.amount
    return ledger_record(
        ctx, tx_id=tx_id, kind="transfer_in", amount=arg.amount, balance_after=balance, counterparty=arg.sender
    )


@wallet.shared
def balance(ctx: SharedObjectContext) -> dict:
    """The current balance in cents."""
    return {"balance": ledger_balance(ctx)}


@wallet.shared
def history(ctx: SharedObjectContext, arg: HistoryQuery) -> dict:
    """Movements newest first, `limit` per page; pass the returned `next` as `before` for the next page."""
    return ledger_page(ctx, limit=arg.limit, before=arg.before)
