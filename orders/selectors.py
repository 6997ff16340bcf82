"""Reads across Order instances: whose order a key is, and a user's orders (from the objects' committed state)."""

from __future__ import annotations

import objects


def order_owner(order_id: str) -> str | None:
    """The username that placed order `order_id`, or None when it does not exist."""
    return objects.state_read("Order", order_id, "user").get("user")


def orders_for_user(username: str) -> list[str]:
    """The ids of the orders `username` placed, newest first."""
    return objects.instance_keys("Order", where={"user": username}, newest_first=True)
