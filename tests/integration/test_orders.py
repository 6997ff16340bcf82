"""Order: the state machine refuses every invalid transition; cancelling a paid order refunds once (real workers)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

import objects
import objects.errors
from orders.machine import TRANSITIONS, allowed_actions
from orders.selectors import orders_for_user
from orders.virtual_objects import order_access

pytestmark = pytest.mark.workers

LINES = [
    {"sku": "MUG", "name": "Mug", "unit_price_cents": 250, "quantity": 2, "line_total_cents": 500},
    {"sku": "CAP", "name": "Cap", "unit_price_cents": 100, "quantity": 1, "line_total_cents": 100},
]
PATHS = {
    "created": [],
    "paid": ["pay"],
    "shipped": ["pay", "ship"],
    "delivered": ["pay", "ship", "deliver"],
    "cancelled": ["cancel"],
}


def _new_order(order_id: str, user: str = "olga") -> dict:
    return objects.call("Order", order_id, "create", {"user": user, "lines": LINES, "total_cents": 600})


def _act(order_id: str, action: str) -> dict:
    arg = {"tx_id": f"pay-{order_id}"} if action == "pay" else {}
    return objects.call("Order", order_id, action, arg)


@pytest.mark.parametrize("state", list(PATHS))
def test_every_invalid_transition_is_refused_with_the_allowed_ones(live, state):
    order_id = f"ord_{state}"
    _new_order(order_id)
    for action in PATHS[state]:
        _act(order_id, action)
    assert objects.call("Order", order_id, "status")["status"] == state
    refused = [a for a in TRANSITIONS if a not in allowed_actions(state)]
    assert refused, state
    listed = ", ".join(allowed_actions(state)) or "nothing (it is a final state)"
    for action in refused:
        arg = {"tx_id": "another-payment"} if action == "pay" else {}
        with pytest.raises(objects.TerminalError) as info:
            objects.call("Order", order_id, action, arg)
        assert info.value.status_code == 409
        assert str(info.value) == f"Cannot {action} order {order_id}: it is {state}. Allowed from {state}: {listed}."
    assert objects.call("Order", order_id, "status")["status"] == state


def test_the_history_records_each_transition_with_who(live):
    """`by` is the user the transition ran for (its principal), else the object that called, else None
    (server code that named no principal); the caller cannot declare it."""
    olga, packer = User.objects.create_user("olga"), User.objects.create_user("packer", is_staff=True)
    objects.call("Order", "ord_h", "create", {"user": "olga", "lines": LINES, "total_cents": 600}, principal=olga)
    objects.call("Order", "ord_h", "pay", {"tx_id": "t"}, principal=olga)
    objects.call("Order", "ord_h", "ship", principal=packer)
    order = objects.call("Order", "ord_h", "deliver")
    assert [(h["from"], h["to"], h["by"]) for h in order["history"]] == [
        (None, "created", "olga"),
        ("created", "paid", "olga"),
        ("paid", "shipped", "packer"),
        ("shipped", "delivered", None),
    ]
    with pytest.raises(objects.errors.InvalidInput, match="takes no input"):
        objects.call("Order", "ord_h", "cancel", {"by": "mallory"})
    with pytest.raises(objects.errors.InvalidInput, match="by: unknown field"):
        objects.call("Order", "ord_h", "pay", {"tx_id": "t", "by": "mallory"})
    assert all(h["at"] for h in order["history"])
    assert (order["user"], order["total_cents"], order["lines"]) == ("olga", 600, LINES)


def test_cancel_after_payment_refunds_exactly_once_and_releases_the_stock(live):
    User.objects.create_user("pia")
    objects.call("Wallet", "pia", "deposit", {"amount": 1000, "tx_id": "topup"})
    for line in LINES:
        objects.call("Inventory", line["sku"], "restock", {"quantity": 5})
        objects.call("Inventory", line["sku"], "reserve", {"order_id": "ord_c", "quantity": line["quantity"]})
    objects.call("Wallet", "pia", "withdraw", {"amount": 600, "tx_id": "pay-ord_c"})
    _new_order("ord_c", user="pia")
    objects.call("Order", "ord_c", "pay", {"tx_id": "pay-ord_c"})
    assert objects.call("Wallet", "pia", "balance") == {"balance": 400}

    assert objects.call("Order", "ord_c", "cancel")["status"] == "cancelled"
    with pytest.raises(objects.TerminalError) as info:
        objects.call("Order", "ord_c", "cancel")
    assert info.value.status_code == 409

    assert objects.call("Wallet", "pia", "balance") == {"balance": 1000}
    kinds = [(e["kind"], e["tx_id"]) for e in objects.call("Wallet", "pia", "history")["entries"]]
    assert kinds.count(("deposit", "refund-ord_c")) == 1
    for line in LINES:
        assert objects.call("Inventory", line["sku"], "available") == {"available": 5, "reserved": 0}


def test_cancel_of_an_unpaid_order_refunds_nothing(live):
    User.objects.create_user("quin")
    _new_order("ord_u", user="quin")
    objects.call("Order", "ord_u", "cancel")
    assert objects.call("Wallet", "quin", "balance") == {"balance": 0}


def test_shipping_commits_the_reserved_stock(live):
    objects.call("Inventory", "MUG", "restock", {"quantity": 5})
    objects.call("Inventory", "MUG", "reserve", {"order_id": "ord_s", "quantity": 2})
    _new_order("ord_s")
    objects.call("Order", "ord_s", "pay", {"tx_id": "t"})
    objects.call("Order", "ord_s", "ship")
    assert objects.call("Inventory", "MUG", "available") == {"available": 3, "reserved": 0}
    with pytest.raises(objects.TerminalError):
        objects.call("Order", "ord_s", "cancel")
    assert objects.call("Inventory", "MUG", "available") == {"available": 3, "reserved": 0}


def test_repeating_create_or_pay_is_a_no_op_but_other_contents_are_refused(live):
    first = _new_order("ord_r")
    assert _new_order("ord_r") == first
    with pytest.raises(objects.TerminalError) as info:
        objects.call("Order", "ord_r", "create", {"user": "olga", "lines": LINES[:1], "total_cents": 500})
    assert info.value.status_code == 409
    paid = objects.call("Order", "ord_r", "pay", {"tx_id": "t"})
    assert objects.call("Order", "ord_r", "pay", {"tx_id": "t"}) == paid
    assert len(paid["history"]) == 2


def test_status_of_an_unknown_order_is_404(live):
    for handler in ("status", "cancel"):
        with pytest.raises(objects.TerminalError) as info:
            objects.call("Order", "ord_missing", handler)
        assert info.value.status_code == 404


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"total_cents": 599}, "total_cents: must equal the sum"),
        ({"lines": []}, "lines: an order has 1 to 100 lines"),
        ({"lines": [{**LINES[0], "line_total_cents": 499}]}, "lines[0].line_total_cents"),
        ({"lines": [{**LINES[0], "quantity": 0}]}, "lines[0].quantity"),
        ({"lines": [LINES[0], LINES[0]]}, "each SKU may appear once"),
    ],
)
def test_malformed_orders_are_400(live, change, fragment):
    arg = {"user": "olga", "lines": LINES, "total_cents": 600, **change}
    with pytest.raises(objects.errors.ObjectsError) as info:
        objects.call("Order", "ord_bad", "create", arg)
    assert info.value.status_code == 400
    assert fragment in str(info.value)


def test_orders_for_user_lists_only_their_orders_newest_first(live):
    _new_order("ord_1", user="rex")
    _new_order("ord_2", user="sue")
    _new_order("ord_3", user="rex")
    assert orders_for_user("rex") == ["ord_3", "ord_1"]
    assert orders_for_user("nobody") == []


def test_the_owner_may_read_and_cancel_only_and_others_nothing(live):
    owner, other = User.objects.create_user("tom"), User.objects.create_user("ugo")
    staff = User.objects.create_user("boss", is_staff=True)
    _new_order("ord_a", user="tom")
    assert order_access(owner, "ord_a", "status") and order_access(owner, "ord_a", "cancel")
    for handler in ("pay", "ship", "deliver", "create"):
        assert not order_access(owner, "ord_a", handler)
    assert not order_access(other, "ord_a", "status")
    assert not order_access(owner, "ord_unknown", "status")
    assert order_access(staff, "ord_a", "ship") and order_access(staff, "ord_new", "create")
