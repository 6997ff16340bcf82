"""The `Order` object (key = order id): a state machine created -> paid -> shipped -> delivered, or cancelled.

Each transition runs alone on its order (exclusive) and appends {at, from, to, by} to the history in state; `by`
is who made it, as the framework tells the handler (the signed-in user, else the calling object), never what a
caller declares.
Cancelling a paid order refunds the wallet (deposit with tx_id "refund-<order id>") and releases the stock
of every line, inside the same transaction as the transition: all of it happens once, or none of it.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from objects import ObjectContext, SharedObjectContext, TerminalError, VirtualObject

from .inputs import NewOrder, Payment
from .machine import CREATED, PAID, transition_target
from .selectors import order_owner

OWNER_HANDLERS = frozenset({"status", "cancel"})


def order_access(user: Any, key: str, handler: str) -> bool:
    """Staff; the user who placed the order may read its status and cancel it. Everything else is staff-only."""
    if user.is_staff:
        return True
    return bool(user.is_authenticated and handler in OWNER_HANDLERS and order_owner(key) == user.username)


order = VirtualObject(
    "Order",
    access=order_access,
    description="An order (key = order id): create, pay, ship, deliver, cancel (refunds), status.",
)


def _view(ctx: SharedObjectContext) -> dict:
    return {
        "order_id": ctx.key,
        "user": ctx.get("user"),
        "status": ctx.get("status"),
        "lines": ctx.get("lines", []),
        "total_cents": ctx.get("total_cents", 0),
        "history": ctx.get("history", []),
    }


def _existing_status(ctx: SharedObjectContext) -> str:
    status = ctx.get("status")
    if status is None:
        raise TerminalError(f"No order {ctx.key!r}.", 404)
    return status


def _who(ctx: ObjectContext) -> str | None:
    """Who makes a transition: the signed-in user it runs for (`ctx.principal`, from the ingress or the principal
    server code named), else the object whose handler called (`Type/key`), else None (server code that named
    nobody)."""
    if ctx.principal is not None:
        return ctx.principal.username
    if ctx.caller is not None:
        return str(ctx.caller)
    return None


def _move(ctx: ObjectContext, action: str) -> tuple[str, str]:
    current = _existing_status(ctx)
    target = transition_target(order_id=ctx.key, status=current, action=action)
    history = ctx.get("history", [])
    history.append({"at": timezone.now().isoformat(), "from": current, "to": target, "by": _who(ctx)})
    ctx.set("history", history)
    ctx.set("status", target)
    return current, target


def _each_line(ctx: ObjectContext, handler: str) -> None:
    """Settle the stock of every line; a line that holds no reservation (404) has nothing to settle."""
    for line in ctx.get("lines", []):
        try:
            ctx.call("Inventory", line["sku"], handler, {"order_id": ctx.key})
        except TerminalError as exc:
            if exc.status_code != 404:
                raise


@order.exclusive
def create(ctx: ObjectContext, arg: NewOrder) -> dict:
    """Record a new order in state `created`. Repeating the same create returns the order; another is 409."""
    if ctx.get("status") is not None:
        if (ctx.get("user"), ctx.get("lines"), ctx.get("total_cents")) == (arg.user, arg.lines, arg.total_cents):
            return _view(ctx)
        raise TerminalError(f"Order {ctx.key!r} already exists with other contents; choose a new order id.", 409)
    ctx.set("user", arg.user)
    ctx.set("lines", arg.lines)
    ctx.set("total_cents", arg.total_cents)
    ctx.set("status", CREATED)
    ctx.set("history", [{"at": timezone.now().isoformat(), "from": None, "to": CREATED, "by": _who(ctx)}])
    return _view(ctx)


@order.exclusive
def pay(ctx: ObjectContext, arg: Payment) -> dict:
    """Record the wallet transaction that paid the order (the caller charged the wallet). Same tx_id: no-op."""
    if _existing_status(ctx) != CREATED and ctx.get("payment", {}).get("tx_id") == arg.tx_id:
        return _view(ctx)
    _move(ctx, "pay")
    ctx.set("payment", {"tx_id": arg.tx_id, "amount": ctx.get("total_cents"), "at": timezone.now().isoformat()})
    return _view(ctx)


@order.exclusive
def ship(ctx: ObjectContext) -> dict:
    """Paid -> shipped: the reserved stock of every line is committed (it leaves the warehouse)."""
    _move(ctx, "ship")
    _each_line(ctx, "commit")
    return _view(ctx)


@order.exclusive
def deliver(ctx: ObjectContext) -> dict:
    """Shipped -> delivered (final)."""
    _move(ctx, "deliver")
    return _view(ctx)


@order.exclusive
def cancel(ctx: ObjectContext) -> dict:
    """Created or paid -> cancelled (final): refund a paid order once and release the stock of every line."""
    previous, _ = _move(ctx, "cancel")
    if previous == PAID:
        refund = {"amount": ctx.get("total_cents"), "tx_id": f"refund-{ctx.key}"}
        ctx.call("Wallet", ctx.get("user"), "deposit", refund)
        ctx.set("refund", {**refund, "at": timezone.now().isoformat()})
    _each_line(ctx, "release")
    return _view(ctx)


@order.shared
def status(ctx: SharedObjectContext) -> dict:
    """The order: user, status, lines, total and the transition history ({at, from, to, by}), oldest first."""
    _existing_status(ctx)
    return _view(ctx)
