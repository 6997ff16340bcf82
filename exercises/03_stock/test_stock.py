"""The checks of exercise 3 (docs/exercises.md): `make exercise 3`."""

from __future__ import annotations

import pytest
from conftest import call, load

import objects
from objects import ObjectsError
from objects.services import invocation_get
from objects.testing import run_inbox

load(__file__)


def test_restock_and_reserve_move_available_and_reserved():
    assert call("Stock", "MUG", "available") == {"available": 0, "reserved": 0}
    assert call("Stock", "MUG", "restock", {"quantity": 10}) == {"available": 10, "reserved": 0}
    assert call("Stock", "MUG", "reserve", {"order_id": "o1", "quantity": 3}) == {"available": 7, "reserved": 3}
    assert call("Stock", "MUG", "release", {"order_id": "o1"}) == {"available": 10, "reserved": 0}


def test_never_oversold_and_the_refusal_says_how_many_are_left():
    call("Stock", "MUG", "restock", {"quantity": 2})
    with pytest.raises(ObjectsError) as refused:
        call("Stock", "MUG", "reserve", {"order_id": "o1", "quantity": 3})
    assert (refused.value.status_code, str(refused.value)) == (409, "Only 2 of MUG left.")


def test_fifty_queued_reservations_of_one_unit_against_ten():
    call("Stock", "MUG", "restock", {"quantity": 10})
    ids = [objects.send("Stock", "MUG", "reserve", {"order_id": f"o{n}", "quantity": 1}) for n in range(50)]
    run_inbox("Stock", "MUG")
    statuses = [invocation_get(i).status for i in ids]
    assert statuses.count("succeeded") == 10 and statuses.count("failed") == 40
    assert call("Stock", "MUG", "available") == {"available": 0, "reserved": 10}


def test_the_same_reservation_twice_is_a_no_op_and_another_quantity_a_409():
    call("Stock", "MUG", "restock", {"quantity": 5})
    call("Stock", "MUG", "reserve", {"order_id": "o1", "quantity": 2})
    assert call("Stock", "MUG", "reserve", {"order_id": "o1", "quantity": 2}) == {"available": 3, "reserved": 2}
    with pytest.raises(ObjectsError) as refused:
        call("Stock", "MUG", "reserve", {"order_id": "o1", "quantity": 4})
    assert refused.value.status_code == 409


def test_releasing_what_an_order_does_not_hold_is_a_404():
    with pytest.raises(ObjectsError) as refused:
        call("Stock", "MUG", "release", {"order_id": "nope"})
    assert refused.value.status_code == 404


@pytest.mark.parametrize(
    ("handler", "arg"), [("restock", {"quantity": 0}), ("reserve", {"order_id": "o", "quantity": 0})]
)
def test_a_quantity_below_one_is_a_400(handler, arg):
    with pytest.raises(ObjectsError) as refused:
        call("Stock", "MUG", handler, arg)
    assert refused.value.status_code == 400
