"""ShoppingCart: one virtual object per shopper (key = username, or "anon:<session key>" before sign-in).

Every handler returns the cart: {"status", "lines": [{"sku", "name", "unit_price_cents", "quantity",
"line_total_cents"}], "item_count", "subtotal_cents", "total_cents"}; a checked-out cart adds "order_id"
(and checkout itself "order_total_cents").
Names and prices come from catalog.Product on the server, never from the client.

State entries: "lines" ([{"sku", "quantity", "name", "unit_price_cents"}], insertion order), "status"
("open" | "checked_out"), "order_id" (of the last checkout), "version" (bumped by every change; the idle
expiry compares it) and "orders" (order ids of this shopper, newest last).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings

from catalog.selectors import products_by_sku
from objects import ObjectContext, SharedObjectContext, TerminalError, VirtualObject
from orders import payments

from .access import cart_access
from .inputs import AddItemInput, CheckoutInput, ExpireInput, MergeInput, RemoveItemInput, UpdateQuantityInput
from .limits import MAX_LINES, MAX_QUANTITY, is_anonymous_key
from .pricing import cart_view, dollars
from .state_schema import CartState

MAX_REMEMBERED_ORDERS = 500

cart = VirtualObject(
    "ShoppingCart",
    access=cart_access,
    description="A shopper's cart: lines priced from the catalog, checkout into an Order paid from the Wallet.",
    state_schema=CartState,
)


def idle_seconds() -> float:
    return float(getattr(settings, "CART_IDLE_SECONDS", 3600))


DAMAGED = (
    "This cart's stored contents are not in a shape the shop can read (its {entry!r} entry was changed by hand), "
    "so it cannot be shown or changed. Support can repair or clear it; the rest of the shop works as usual."
)


def _stored_lines(ctx: SharedObjectContext) -> list[dict[str, Any]]:
    """The stored lines, checked: a value of another shape (an operator's edit) is this cart's clear error (409),
    never a TypeError in every handler and page that reads it."""
    lines = ctx.get("lines") or []
    if not isinstance(lines, list) or not all(_line_ok(line) for line in lines):
        raise TerminalError(DAMAGED.format(entry="lines"), 409)
    return lines


def _line_ok(line: Any) -> bool:
    return (
        isinstance(line, dict)
        and isinstance(line.get("sku"), str)
        and type(line.get("quantity")) is int
        and line["quantity"] > 0
        and isinstance(line.get("name", ""), str)
        and type(line.get("unit_price_cents", 0)) is int
    )


def _version(ctx: SharedObjectContext) -> int:
    version = ctx.get("version") or 0
    if type(version) is not int:
        raise TerminalError(DAMAGED.format(entry="version"), 409)
    return version


def _state(ctx: SharedObjectContext) -> dict[str, Any]:
    state = {name: ctx.get(name) for name in ("status", "order_id")}
    return {**state, "lines": [] if state["status"] == "checked_out" else _stored_lines(ctx)}


def _lines(ctx: ObjectContext) -> list[dict[str, Any]]:
    """The open cart's lines; a checked-out cart starts fresh."""
    if ctx.get("status") == "checked_out":
        return []
    return [dict(line) for line in _stored_lines(ctx)]


def _product(sku: str) -> Any:
    product = products_by_sku(skus=[sku]).get(sku)
    if product is None:
        raise TerminalError(f"No product with SKU {sku!r} in the catalog.", 404)
    if not product.active:
        raise TerminalError(f"{product.name} is no longer for sale.", 404)
    return product


def _save(ctx: ObjectContext, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Store the lines as an open cart, bump the version and push the idle expiry back (one timer per cart,
    re-armed by each change)."""
    version = _version(ctx) + 1
    ctx.set("lines", lines)
    ctx.set("status", "open")
    ctx.clear("order_id")
    ctx.set("version", version)
    ctx.timer("idle-expiry", "expire", {"version": version}, delay=timedelta(seconds=idle_seconds()))
    return cart_view(state=_state(ctx))


def _add(lines: list[dict[str, Any]], product: Any, quantity: int) -> None:
    for line in lines:
        if line["sku"] == product.sku:
            total = line["quantity"] + quantity
            if total > MAX_QUANTITY:
                raise TerminalError(
                    f"At most {MAX_QUANTITY} of one item per cart: you have {line['quantity']} {product.name} "
                    f"and asked for {quantity} more.",
                    400,
                )
            line.update(quantity=total, name=product.name, unit_price_cents=product.price_cents)
            return
    if len(lines) >= MAX_LINES:
        raise TerminalError(f"A cart holds at most {MAX_LINES} different items; remove one first.", 409)
    lines.append(
        {"sku": product.sku, "quantity": quantity, "name": product.name, "unit_price_cents": product.price_cents}
    )


@cart.exclusive(input=AddItemInput)
def add_item(ctx: ObjectContext, item: dict[str, Any]) -> dict[str, Any]:
    """Add `quantity` of `sku`, merged with the line already holding that SKU."""
    lines = _lines(ctx)
    _add(lines, _product(item["sku"]), item["quantity"])
    return _save(ctx, lines)


@cart.exclusive(input=RemoveItemInput)
def remove_item(ctx: ObjectContext, item: dict[str, Any]) -> dict[str, Any]:
    """Remove the line of `sku`; removing an absent SKU changes nothing (a double click is harmless)."""
    lines = _lines(ctx)
    kept = [line for line in lines if line["sku"] != item["sku"]]
    if len(kept) == len(lines):
        return cart_view(state=_state(ctx))
    return _save(ctx, kept)


@cart.exclusive(input=UpdateQuantityInput)
def update_quantity(ctx: ObjectContext, item: dict[str, Any]) -> dict[str, Any]:
    """Set the quantity of a line already in the cart; 0 removes it."""
    lines = _lines(ctx)
    line = next((line for line in lines if line["sku"] == item["sku"]), None)
    if line is None:
        if item["quantity"] == 0:
            return cart_view(state=_state(ctx))
        product = products_by_sku(skus=[item["sku"]]).get(item["sku"])
        raise TerminalError(f"{product.name if product else item['sku']} is not in your cart; add it first.", 404)
    if item["quantity"] == 0:
        lines.remove(line)
    else:
        line["quantity"] = item["quantity"]
    return _save(ctx, lines)


@cart.shared
def get_cart(ctx: SharedObjectContext) -> dict[str, Any]:
    """The cart, priced from the catalog now."""
    return cart_view(state=_state(ctx))


@cart.shared
def orders(ctx: SharedObjectContext) -> list[str]:
    """Ids of the orders checked out from this cart, newest first."""
    return list(reversed(_orders(ctx)))


def _orders(ctx: SharedObjectContext) -> list[str]:
    orders = ctx.get("orders") or []
    if not isinstance(orders, list) or not all(isinstance(order, str) for order in orders):
        raise TerminalError(DAMAGED.format(entry="orders"), 409)
    return orders


@cart.exclusive
def clear(ctx: ObjectContext) -> dict[str, Any]:
    """Empty the cart (the list of past orders stays)."""
    return _save(ctx, [])


@cart.exclusive(input=ExpireInput)
def expire(ctx: ObjectContext, arg: dict[str, Any]) -> dict[str, Any]:
    """Run by the idle-expiry timer each change re-arms: clears the cart only if nothing changed since."""
    if _version(ctx) == arg["version"] and _stored_lines(ctx):
        ctx.set("lines", [])
        ctx.set("version", arg["version"] + 1)
    return cart_view(state=_state(ctx))


@cart.exclusive(input=MergeInput)
def merge(ctx: ObjectContext, arg: dict[str, Any]) -> dict[str, Any]:
    """Move an anonymous cart's lines into this cart (at sign-in), within the limits, then clear it."""
    source = arg["from_key"]
    if source == ctx.key:
        return cart_view(state=_state(ctx))
    incoming = ctx.call("ShoppingCart", source, "get_cart")
    if not incoming["lines"] or incoming["status"] != "open":
        return cart_view(state=_state(ctx))
    lines = _lines(ctx)
    products = products_by_sku(skus=[line["sku"] for line in incoming["lines"]])
    for line in incoming["lines"]:
        product = products.get(line["sku"])
        if product is None or not product.active:
            continue
        have = next((x["quantity"] for x in lines if x["sku"] == product.sku), 0)
        room = MAX_QUANTITY - have
        if room <= 0 or (have == 0 and len(lines) >= MAX_LINES):
            continue
        _add(lines, product, min(room, line["quantity"]))
    ctx.call("ShoppingCart", source, "clear")
    return _save(ctx, lines)


def _check_stock_and_funds(ctx: ObjectContext, priced: dict[str, Any]) -> None:
    """Refuse (409) in the shopper's words, naming products and money, before anything is reserved: the stock
    and the balance as last committed (shared calls). Reserve and withdraw check again under their keys' locks."""
    for line in priced["lines"]:
        available = int(ctx.call("Inventory", line["sku"], "available")["available"])
        if line["quantity"] > available:
            if available <= 0:
                raise TerminalError(f"{line['name']} is out of stock now; remove it from your cart to check out.", 409)
            raise TerminalError(
                f"Only {available} {line['name']} left; your cart has {line['quantity']}. "
                "Lower the quantity to check out.",
                409,
            )
    balance = int(ctx.call("Wallet", ctx.key, "balance")["balance"])
    total = priced["total_cents"]
    if total > balance:
        raise TerminalError(
            f"Your wallet has {dollars(balance)}; this order is {dollars(total)}. "
            f"Top up {dollars(total - balance)} to pay for it.",
            409,
        )


@cart.exclusive
def checkout(ctx: ObjectContext, arg: CheckoutInput) -> dict[str, Any]:
    """Reserve stock, charge the wallet, create and pay the order, commit the stock, empty the cart.

    It runs in one transaction (ctx.call runs each callee inline): a refusal anywhere (409 for stock or
    funds) rolls back every reservation and the charge. With `expected_total_cents` (the total the shopper
    saw), a cart whose total is another now is refused with 412 before anything is reserved or charged.
    """
    if is_anonymous_key(ctx.key):
        raise TerminalError("Sign in to check out.", 403)
    lines = _lines(ctx)
    if not lines:
        raise TerminalError("Your cart is empty: add something before checking out.", 409)
    products = products_by_sku(skus=[line["sku"] for line in lines])
    for line in lines:
        product = products.get(line["sku"])
        if product is None or not product.active:
            name = line.get("name", line["sku"])
            raise TerminalError(f"{name} is no longer for sale; remove it from your cart to check out.", 404)
        line.update(name=product.name, unit_price_cents=product.price_cents)
    priced = cart_view(state={"lines": lines})
    if arg.expected_total_cents is not None and arg.expected_total_cents != priced["total_cents"]:
        raise TerminalError(
            f"The cart changed: its total is now {dollars(priced['total_cents'])}, "
            f"not {dollars(arg.expected_total_cents)}.",
            412,
        )
    _check_stock_and_funds(ctx, priced)
    if payments.confirmation_on():  # wait for the payment provider before anything is reserved or charged
        order_id = ctx.run("order id", payments.new_order_id)
        payments.payment_confirm(
            ctx, order_id=order_id, user=ctx.key, lines=priced["lines"], total_cents=priced["total_cents"]
        )
    else:
        order_id = payments.new_order_id()
    for line in priced["lines"]:
        ctx.call("Inventory", line["sku"], "reserve", {"order_id": order_id, "quantity": line["quantity"]})
    tx_id = f"order-{order_id}"
    ctx.call("Wallet", ctx.key, "withdraw", {"amount": priced["total_cents"], "tx_id": tx_id})
    ctx.call(
        "Order",
        order_id,
        "create",
        {"user": ctx.key, "lines": priced["lines"], "total_cents": priced["total_cents"]},
    )
    ctx.call("Order", order_id, "pay", {"tx_id": tx_id})
    for line in priced["lines"]:
        ctx.call("Inventory", line["sku"], "commit", {"order_id": order_id})
    ctx.set("lines", [])
    ctx.set("status", "checked_out")
    ctx.set("order_id", order_id)
    ctx.set("version", _version(ctx) + 1)
    ctx.set("orders", [*_orders(ctx), order_id][-MAX_REMEMBERED_ORDERS:])
    return {**cart_view(state=_state(ctx)), "order_total_cents": priced["total_cents"]}
