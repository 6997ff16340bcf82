"""The ShoppingCart object: every handler, its limits, checkout all-or-nothing, expiry, merge and access."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

import objects
from catalog.models import Product
from objects.errors import InvalidInput, TerminalError
from objects.models import Invocation, StateEntry
from objects.registry import get_object
from objects.services import state_edit

from .shop_fixtures import balance, cart, fund, make_product, stock

pytestmark = pytest.mark.workers


def call(key, handler, arg=None, **kwargs):
    return objects.call("ShoppingCart", key, handler, arg, **kwargs)


@pytest.fixture
def products(live):
    return {
        "MUG": make_product("MUG", name="Mug", price=1299, stock=10),
        "TEE": make_product("TEE", name="Tee", price=2500, stock=2),
    }


def test_add_item_merges_quantities_and_prices_from_the_catalog(products):
    call("alice", "add_item", {"sku": "MUG", "quantity": 2})
    result = call("alice", "add_item", {"sku": "MUG", "quantity": 3})
    assert result == {
        "status": "open",
        "lines": [{"sku": "MUG", "name": "Mug", "unit_price_cents": 1299, "quantity": 5, "line_total_cents": 6495}],
        "item_count": 5,
        "subtotal_cents": 6495,
        "total_cents": 6495,
    }
    call("alice", "add_item", {"sku": "TEE", "quantity": 1})
    assert [line["sku"] for line in cart("alice")["lines"]] == ["MUG", "TEE"]
    assert cart("alice")["total_cents"] == 6495 + 2500


def test_get_cart_uses_the_current_catalog_price(products):
    call("alice", "add_item", {"sku": "MUG", "quantity": 2})
    Product.objects.filter(sku="MUG").update(price_cents=1000, name="Big mug")
    line = cart("alice")["lines"][0]
    assert (line["name"], line["unit_price_cents"], line["line_total_cents"]) == ("Big mug", 1000, 2000)


def test_unknown_and_inactive_skus_are_refused_with_404(products):
    make_product("OLD", stock=0, active=False)
    with pytest.raises(TerminalError) as unknown:
        call("alice", "add_item", {"sku": "NOPE", "quantity": 1})
    assert unknown.value.status_code == 404 and "NOPE" in unknown.value.message
    with pytest.raises(TerminalError) as inactive:
        call("alice", "add_item", {"sku": "OLD", "quantity": 1})
    assert inactive.value.status_code == 404 and "no longer for sale" in inactive.value.message
    assert cart("alice")["lines"] == []


@pytest.mark.parametrize(
    "arg",
    [
        {"sku": "MUG", "quantity": 0},
        {"sku": "MUG", "quantity": 100},
        {"sku": "MUG", "quantity": -1},
        {"sku": "MUG", "quantity": "lots"},
        {"sku": "MUG"},
        {"quantity": 1},
        {"sku": "", "quantity": 1},
    ],
)
def test_bad_quantities_are_400_and_never_become_an_invocation(products, arg):
    before = Invocation.objects.filter(type_name="ShoppingCart").count()
    with pytest.raises(InvalidInput) as exc:
        call("alice", "add_item", arg)
    assert exc.value.status_code == 400
    assert Invocation.objects.filter(type_name="ShoppingCart").count() == before


def test_a_line_holds_at_most_99(products):
    call("alice", "add_item", {"sku": "MUG", "quantity": 60})
    with pytest.raises(TerminalError) as exc:
        call("alice", "add_item", {"sku": "MUG", "quantity": 40})
    assert exc.value.status_code == 400 and "99" in exc.value.message
    assert cart("alice")["lines"][0]["quantity"] == 60


def test_a_cart_holds_at_most_100_lines(products):
    Product.objects.bulk_create([Product(sku=f"P{i:03d}", name=f"P{i}", price_cents=100, stock=0) for i in range(100)])
    lines = [{"sku": f"P{i:03d}", "quantity": 1, "name": f"P{i}", "unit_price_cents": 100} for i in range(100)]
    state_edit(type_name="ShoppingCart", key="alice", expected_version=None, set_entries={"lines": lines})
    assert cart("alice")["item_count"] == 100
    with pytest.raises(TerminalError) as exc:
        call("alice", "add_item", {"sku": "MUG", "quantity": 1})
    assert exc.value.status_code == 409 and "100" in exc.value.message
    # an SKU already in the cart still merges
    assert call("alice", "add_item", {"sku": "P000", "quantity": 1})["item_count"] == 101


def test_remove_item_removes_the_line_and_absent_skus_change_nothing(products):
    call("alice", "add_item", {"sku": "MUG", "quantity": 2})
    call("alice", "add_item", {"sku": "TEE", "quantity": 1})
    assert [line["sku"] for line in call("alice", "remove_item", {"sku": "MUG"})["lines"]] == ["TEE"]
    assert [line["sku"] for line in call("alice", "remove_item", {"sku": "MUG"})["lines"]] == ["TEE"]


def test_update_quantity_sets_and_zero_removes(products):
    call("alice", "add_item", {"sku": "MUG", "quantity": 2})
    assert call("alice", "update_quantity", {"sku": "MUG", "quantity": 7})["item_count"] == 7
    with pytest.raises(TerminalError) as absent:
        call("alice", "update_quantity", {"sku": "TEE", "quantity": 1})
    assert absent.value.status_code == 404
    with pytest.raises(InvalidInput):
        call("alice", "update_quantity", {"sku": "MUG", "quantity": 100})
    assert call("alice", "update_quantity", {"sku": "MUG", "quantity": 0})["lines"] == []


def test_clear_empties_the_cart(products):
    call("alice", "add_item", {"sku": "MUG", "quantity": 2})
    assert call("alice", "clear")["lines"] == []
    assert cart("alice")["item_count"] == 0


def test_checkout_reserves_charges_creates_a_paid_order_and_empties_the_cart(products):
    fund("alice", 10_000)
    call("alice", "add_item", {"sku": "MUG", "quantity": 2})
    call("alice", "add_item", {"sku": "TEE", "quantity": 1})
    result = call("alice", "checkout")
    order_id = result["order_id"]
    assert result["status"] == "checked_out" and result["lines"] == [] and result["order_total_cents"] == 5098
    assert balance("alice") == 10_000 - 5098
    assert stock("MUG") == {"available": 8, "reserved": 0}
    assert stock("TEE") == {"available": 1, "reserved": 0}
    order = objects.call("Order", order_id, "status")
    assert (order["user"], order["status"], order["total_cents"]) == ("alice", "paid", 5098)
    assert [(line["sku"], line["quantity"]) for line in order["lines"]] == [("MUG", 2), ("TEE", 1)]
    assert cart("alice") == {**cart("alice"), "status": "checked_out", "order_id": order_id}
    assert call("alice", "orders") == [order_id]
    # a checked-out cart starts fresh on the next add
    fresh = call("alice", "add_item", {"sku": "MUG", "quantity": 1})
    assert fresh["status"] == "open" and fresh["item_count"] == 1 and "order_id" not in fresh


def test_an_empty_cart_cannot_be_checked_out(products):
    fund("alice", 10_000)
    with pytest.raises(TerminalError) as exc:
        call("alice", "checkout")
    assert exc.value.status_code == 409 and "empty" in exc.value.message


def test_insufficient_funds_is_409_and_leaves_no_reservation_and_no_charge(products):
    fund("alice", 3000)
    call("alice", "add_item", {"sku": "MUG", "quantity": 1})
    call("alice", "add_item", {"sku": "TEE", "quantity": 1})
    with pytest.raises(TerminalError) as exc:
        call("alice", "checkout")
    assert exc.value.message == "Your wallet has $30.00; this order is $37.99. Top up $7.99 to pay for it."
    assert exc.value.status_code == 409
    assert balance("alice") == 3000
    assert stock("MUG") == {"available": 10, "reserved": 0}
    assert stock("TEE") == {"available": 2, "reserved": 0}
    assert cart("alice")["item_count"] == 2 and cart("alice")["status"] == "open"
    assert not StateEntry.objects.filter(instance__type_name="Order").exists()


def test_insufficient_stock_is_409_naming_the_item_and_rolls_back_earlier_reservations(products):
    fund("alice", 100_000)
    call("alice", "add_item", {"sku": "MUG", "quantity": 3})
    call("alice", "add_item", {"sku": "TEE", "quantity": 3})
    with pytest.raises(TerminalError) as exc:
        call("alice", "checkout")
    assert exc.value.message == "Only 2 Tee left; your cart has 3. Lower the quantity to check out."
    assert exc.value.status_code == 409
    assert stock("MUG") == {"available": 10, "reserved": 0}
    assert balance("alice") == 100_000
    assert cart("alice")["item_count"] == 6


def test_an_anonymous_cart_cannot_check_out(products):
    call("anon:s1", "add_item", {"sku": "MUG", "quantity": 1})
    with pytest.raises(TerminalError) as exc:
        call("anon:s1", "checkout")
    assert exc.value.status_code == 403 and "Sign in" in exc.value.message


def test_a_repeated_checkout_with_one_idempotency_key_charges_once(products):
    fund("alice", 10_000)
    call("alice", "add_item", {"sku": "MUG", "quantity": 1})
    first = call("alice", "checkout", idempotency_key="checkout-token-1")
    second = call("alice", "checkout", idempotency_key="checkout-token-1")
    assert first["order_id"] == second["order_id"]
    assert balance("alice") == 10_000 - 1299
    assert stock("MUG")["available"] == 9


def _scheduled_expiry(key):
    return Invocation.objects.filter(type_name="ShoppingCart", key=key, handler="expire").order_by("-id").first()


def test_every_change_pushes_back_a_delayed_expiry(products):
    call("alice", "add_item", {"sku": "MUG", "quantity": 1})
    first = _scheduled_expiry("alice")
    call("alice", "update_quantity", {"sku": "MUG", "quantity": 2})
    second = _scheduled_expiry("alice")
    assert second.input["version"] == first.input["version"] + 1
    expected = timezone.now() + timedelta(seconds=3600)
    assert abs((second.not_before - expected).total_seconds()) < 60


def test_expire_clears_only_when_nothing_changed_since(products):
    call("alice", "add_item", {"sku": "MUG", "quantity": 1})
    stale = _scheduled_expiry("alice").input["version"]
    call("alice", "add_item", {"sku": "MUG", "quantity": 1})
    current = _scheduled_expiry("alice").input["version"]
    assert call("alice", "expire", {"version": stale})["item_count"] == 2
    assert call("alice", "expire", {"version": current})["lines"] == []


def test_merge_moves_an_anonymous_cart_into_the_shoppers_cart_and_clears_it(products):
    call("alice", "add_item", {"sku": "MUG", "quantity": 90})
    call("anon:sess", "add_item", {"sku": "MUG", "quantity": 20})
    call("anon:sess", "add_item", {"sku": "TEE", "quantity": 1})
    merged = call("alice", "merge", {"from": "anon:sess"})
    assert [(line["sku"], line["quantity"]) for line in merged["lines"]] == [("MUG", 99), ("TEE", 1)]
    assert cart("anon:sess")["lines"] == []


def test_merge_accepts_only_anonymous_carts(products):
    with pytest.raises(InvalidInput):
        call("alice", "merge", {"from": "bob"})


def _user(username="", *, staff=False, session_key=None):
    return SimpleNamespace(
        is_staff=staff,
        is_authenticated=bool(username),
        get_username=lambda: username,
        username=username,
        session_key=session_key,
    )


@pytest.mark.parametrize(
    ("user", "key", "handler", "allowed"),
    [
        (_user("alice"), "alice", "add_item", True),
        (_user("alice"), "alice", "checkout", True),
        (_user("alice"), "bob", "get_cart", False),
        (_user("alice"), "bob", "add_item", False),
        (_user("alice"), "anon:abc", "get_cart", False),
        (_user(session_key="abc"), "anon:abc", "add_item", True),
        (_user(session_key="abc"), "anon:xyz", "get_cart", False),
        (_user(session_key="abc"), "alice", "get_cart", False),
        (_user(), "anon:", "get_cart", False),
        (_user("alice"), "alice", "merge", False),
        (_user("alice"), "alice", "expire", False),
        (_user("ops", staff=True), "bob", "clear", True),
    ],
)
def test_access_rule_keeps_each_cart_to_its_shopper(user, key, handler, allowed):
    assert get_object("ShoppingCart").access(user, key, handler) is allowed
