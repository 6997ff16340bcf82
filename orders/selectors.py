"""Reads across Order instances: whose order a key is, and a user's orders (from the objects' state rows)."""

from __future__ import annotations

from objects.models import StateEntry


def order_owner(order_id: str) -> str | None:
    """The username that placed order `order_id`, or None when it does not exist."""
    return (
        StateEntry.objects.filter(instance__type_name="Order", instance__key=order_id, name="user")
        .values_list("value", flat=True)
        .first()
    )


def orders_for_user(username: str) -> list[str]:
    """The ids of the orders `username` placed, newest first."""
    rows = StateEntry.objects.filter(instance__type_name="Order", name="user", value=username).order_by(
        "-instance__created_at", "-instance_id"
    )
    return list(rows.values_list("instance__key", flat=True))
