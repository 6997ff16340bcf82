"""Selectors of the shop: what its pages show, read from the catalog and the objects (shared handlers)."""

from __future__ import annotations

import logging
import re
from typing import Any

from django.utils.dateparse import parse_datetime

import objects
from cart.limits import MAX_QUANTITY
from catalog.selectors import product_list_active

log = logging.getLogger("shop")
EMPTY_CART = {"status": "open", "lines": [], "item_count": 0, "subtotal_cents": 0, "total_cents": 0}
LOW_STOCK = 5  # at most this many left: the catalog says "Only N left"


def cart_get(*, key: str | None) -> dict[str, Any]:
    if key is None:
        return dict(EMPTY_CART)
    return objects.call("ShoppingCart", key, "get_cart")


def stock_available(*, sku: str) -> int | None:
    """Units of `sku` free to buy now, from its Inventory object (a shared call: it never waits for the key);
    None when the inventory cannot be read."""
    try:
        available = objects.call("Inventory", sku, "available")["available"]
    except (objects.ObjectsError, KeyError, TypeError):
        return None
    return available if isinstance(available, int) else None


def stock_levels(*, skus: list[str]) -> dict[str, int | None]:
    return {sku: stock_available(sku=sku) for sku in dict.fromkeys(skus)}


def stock_refusal(*, name: str, available: int | None, in_cart: int, wanted: int) -> str | None:
    """Why `wanted` units (`in_cart` of them already in the cart) cannot be had, or None when they can."""
    if available is None or wanted <= available:
        return None
    if available <= 0:
        return f"{name} is out of stock."
    if in_cart and wanted > in_cart:
        return f"Only {available} {name} left; your cart already has {in_cart}."
    return f"Only {available} {name} left."


def cart_shortages(*, cart: dict[str, Any], stock: dict[str, int | None]) -> dict[str, str]:
    """Per SKU, the warning of each cart line that asks for more than the stock now holds."""
    warnings = {}
    for line in cart.get("lines") or []:
        available = stock.get(line["sku"])
        if available is not None and line["quantity"] > available:
            if available <= 0:
                warnings[line["sku"]] = f"{line['name']} is out of stock now; remove it to check out."
            else:
                warnings[line["sku"]] = f"Only {available} {line['name']} left; lower the quantity to check out."
    return warnings


def catalog_with_stock() -> list[dict[str, Any]]:
    """Active products with their live availability (None when the inventory cannot be read), capped for the
    quantity input (`max_quantity`), and whether few are left (`low`)."""
    rows = []
    for product in product_list_active():
        available = stock_available(sku=product.sku)
        rows.append(
            {
                "product": product,
                "available": available,
                "low": available is not None and 0 < available <= LOW_STOCK,
                "sold_out": available is not None and available <= 0,
                "max_quantity": MAX_QUANTITY if available is None else max(min(available, MAX_QUANTITY), 1),
            }
        )
    return rows


def order_ids_for(*, username: str) -> list[str]:
    """The shopper's order ids, newest first: from the orders app when it offers a selector, else the cart's."""
    try:
        from orders.selectors import orders_for_user

        return list(orders_for_user(username))
    except ImportError:
        pass
    except Exception:  # noqa: BLE001 - fall back to the cart's own list
        log.exception("orders_for_user(%r) failed; using the cart's list", username)
    return objects.call("ShoppingCart", username, "orders")


def order_get(*, order_id: str, username: str) -> dict[str, Any] | None:
    """The order's status, or None when it does not exist or belongs to someone else."""
    try:
        order = objects.call("Order", order_id, "status")
    except objects.ObjectsError:
        return None
    if not isinstance(order, dict) or order.get("user") != username:
        return None
    order["history"] = [{**step, "at": _when(step.get("at"))} for step in order.get("history") or []]
    return order


def order_list(*, username: str, limit: int = 50) -> list[dict[str, Any]]:
    found = []
    for order_id in order_ids_for(username=username)[:limit]:
        order = order_get(order_id=order_id, username=username)
        if order is not None:
            found.append(order)
    return found


def wallet_get(*, username: str, before: str | None = None, limit: int = 20) -> dict[str, Any]:
    if before and not (before.isascii() and before.isdigit() and len(before) < 19):  # int() takes "²", not 5000 digits
        raise objects.TerminalError("before: the page cursor must be a whole number, from a previous page's link.", 400)
    balance = objects.call("Wallet", username, "balance")["balance"]
    arg: dict[str, Any] = {"limit": limit}
    if before:
        arg["before"] = int(before)
    history = objects.call("Wallet", username, "history", arg)
    entries = [_wallet_entry(entry) for entry in history.get("entries", []) if isinstance(entry, dict)]
    return {"balance": balance, "entries": entries, "next": history.get("next")}


OUTGOING = frozenset({"withdraw", "transfer_out"})
ORDER_ID = re.compile(r"^ord_[0-9a-f]{32}\Z")


def _wallet_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A ledger entry as the wallet page shows it: money out as a negative amount, and what it was in words
    (with the order it paid or refunded, when there is one) instead of its transaction id."""
    kind, tx_id = entry.get("kind"), str(entry.get("tx_id") or "")
    amount = entry.get("amount") if isinstance(entry.get("amount"), int) else 0
    order_id = tx_id.split("-", 1)[-1] if ORDER_ID.match(tx_id.split("-", 1)[-1]) else ""
    if kind == "withdraw" and order_id and tx_id.startswith("order-"):
        what = "Payment for order"
    elif kind == "deposit" and order_id and tx_id.startswith("refund-"):
        what = "Refund of order"
    elif kind == "deposit" and tx_id.startswith("topup-"):
        what = "Demo top-up"
    else:
        what = {
            "deposit": "Deposit",
            "withdraw": "Withdrawal",
            "transfer_out": f"Transfer to {entry.get('counterparty')}",
            "transfer_in": f"Transfer from {entry.get('counterparty')}",
        }.get(str(kind), str(kind))
    if what in ("Deposit", "Withdrawal", "Demo top-up"):
        order_id = ""
    return {
        "at": _when(entry.get("at")),
        "what": what,
        "order_id": order_id,
        "amount": -amount if kind in OUTGOING else amount,
        "balance_after": entry.get("balance_after"),
    }


def _when(value: Any) -> Any:
    """An ISO timestamp from state as a datetime (the template formats it); anything else as it is."""
    return (parse_datetime(value) or value) if isinstance(value, str) else value
