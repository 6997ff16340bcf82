"""Inventory: never oversold under concurrent reservations; settling reservations is idempotent (real workers)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.db import connections

import objects
import objects.errors
from inventory.virtual_objects import inventory_access

pytestmark = pytest.mark.workers


def _reserve(sku: str, order_id: str) -> int:
    try:
        objects.call("Inventory", sku, "reserve", {"order_id": order_id, "quantity": 1}, timeout=60)
        return 200
    except objects.TerminalError as exc:
        return exc.status_code
    finally:
        connections.close_all()


def test_fifty_concurrent_reservations_against_ten_units_let_exactly_ten_through(live):
    objects.call("Inventory", "MUG", "restock", {"quantity": 10})
    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda i: _reserve("MUG", f"o{i}"), range(50)))
    assert codes.count(200) == 10
    assert codes.count(409) == 40
    assert objects.call("Inventory", "MUG", "available") == {"available": 0, "reserved": 10}


def test_a_reservation_beyond_stock_names_what_is_left(live):
    objects.call("Inventory", "CAP", "restock", {"quantity": 3})
    with pytest.raises(objects.TerminalError) as info:
        objects.call("Inventory", "CAP", "reserve", {"order_id": "o1", "quantity": 4})
    assert info.value.status_code == 409
    assert str(info.value) == "Only 3 of CAP left"


def test_release_and_commit_of_an_unknown_reservation_are_404(live):
    objects.call("Inventory", "PEN", "restock", {"quantity": 3})
    for handler in ("release", "commit"):
        with pytest.raises(objects.TerminalError) as info:
            objects.call("Inventory", "PEN", handler, {"order_id": "nope"})
        assert info.value.status_code == 404
        assert "nope" in str(info.value)


def test_repeated_operations_for_one_order_are_idempotent(live):
    objects.call("Inventory", "BAG", "restock", {"quantity": 5})
    view = {"available": 3, "reserved": 2}
    assert objects.call("Inventory", "BAG", "reserve", {"order_id": "o1", "quantity": 2}) == view
    assert objects.call("Inventory", "BAG", "reserve", {"order_id": "o1", "quantity": 2}) == view
    with pytest.raises(objects.TerminalError) as info:
        objects.call("Inventory", "BAG", "reserve", {"order_id": "o1", "quantity": 3})
    assert info.value.status_code == 409
    committed = {"available": 3, "reserved": 0}
    assert objects.call("Inventory", "BAG", "commit", {"order_id": "o1"}) == committed
    assert objects.call("Inventory", "BAG", "commit", {"order_id": "o1"}) == committed
    objects.call("Inventory", "BAG", "reserve", {"order_id": "o2", "quantity": 1})
    assert objects.call("Inventory", "BAG", "release", {"order_id": "o2"}) == committed
    assert objects.call("Inventory", "BAG", "release", {"order_id": "o2"}) == committed
    with pytest.raises(objects.TerminalError) as info:
        objects.call("Inventory", "BAG", "commit", {"order_id": "o2"})
    assert info.value.status_code == 409 and "released" in str(info.value)


def test_releasing_a_committed_reservation_puts_its_units_back_once(live):
    objects.call("Inventory", "HAT", "restock", {"quantity": 4})
    objects.call("Inventory", "HAT", "reserve", {"order_id": "o1", "quantity": 3})
    assert objects.call("Inventory", "HAT", "commit", {"order_id": "o1"}) == {"available": 1, "reserved": 0}
    assert objects.call("Inventory", "HAT", "release", {"order_id": "o1"}) == {"available": 4, "reserved": 0}
    assert objects.call("Inventory", "HAT", "release", {"order_id": "o1"}) == {"available": 4, "reserved": 0}


def test_bad_quantities_are_400(live):
    for arg in ({"quantity": 0}, {"quantity": 1_000_001}, {"quantity": "5"}):
        with pytest.raises(objects.errors.ObjectsError) as info:
            objects.call("Inventory", "BAD", "restock", arg)
        assert info.value.status_code == 400


@pytest.mark.django_db
def test_restock_and_reservations_are_staff_only_over_http_and_available_is_public():
    shopper, staff = User.objects.create_user("sam"), User.objects.create_user("boss", is_staff=True)
    for handler in ("restock", "reserve", "release", "commit"):
        assert not inventory_access(shopper, "MUG", handler)
        assert not inventory_access(AnonymousUser(), "MUG", handler)
        assert inventory_access(staff, "MUG", handler)
    assert inventory_access(AnonymousUser(), "MUG", "available")
    assert inventory_access(shopper, "MUG", "available")
