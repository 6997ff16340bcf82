"""The cart as shoppers see it: lines priced from the catalog, counts and totals."""

from __future__ import annotations

from typing import Any

from catalog.selectors import products_by_sku


def dollars(cents: int) -> str:
    """Integer cents as the shop shows money: 1999 -> "$19.99", -500 -> "-$5.00"."""
    return f"{'-' if cents < 0 else ''}${abs(cents) / 100:,.2f}"


def cart_view(*, state: dict[str, Any]) -> dict[str, Any]:
    """The cart output every handler returns, names and prices taken from the catalog now.

    A product removed from the catalog after it was added keeps the name and price it had then.
    """
    stored = state.get("lines") or []
    products = products_by_sku(skus=[line["sku"] for line in stored])
    lines = []
    for line in stored:
        product = products.get(line["sku"])
        name = product.name if product else line.get("name", line["sku"])
        price = product.price_cents if product else line.get("unit_price_cents", 0)
        lines.append(
            {
                "sku": line["sku"],
                "name": name,
                "unit_price_cents": price,
                "quantity": line["quantity"],
                "line_total_cents": price * line["quantity"],
            }
        )
    subtotal = sum(line["line_total_cents"] for line in lines)
    view: dict[str, Any] = {
        "status": state.get("status") or "open",
        "lines": lines,
        "item_count": sum(line["quantity"] for line in lines),
        "subtotal_cents": subtotal,
        "total_cents": subtotal,
    }
    if view["status"] == "checked_out":
        view["order_id"] = state.get("order_id")
    return view
