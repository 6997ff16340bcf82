"""The checks of exercise 4 (docs/exercises.md): `make exercise 4`."""

from __future__ import annotations

import pytest
from conftest import call, load

from objects import ObjectsError

load(__file__)

PATHS = {  # a way to reach each state from a new parcel
    "created": [],
    "paid": ["pay"],
    "shipped": ["pay", "ship"],
    "delivered": ["pay", "ship", "deliver"],
    "cancelled": ["cancel"],
}
ALLOWED = {
    "created": ["pay", "cancel"],
    "paid": ["ship", "cancel"],
    "shipped": ["deliver"],
    "delivered": [],
    "cancelled": [],
}


def test_a_new_parcel_is_created_with_no_history():
    assert call("Parcel", "p1", "status") == {"status": "created", "history": []}


def test_the_happy_path_is_recorded_in_order():
    for action in ("pay", "ship", "deliver"):
        call("Parcel", "p1", action)
    assert call("Parcel", "p1", "status") == {
        "status": "delivered",
        "history": [
            {"from": "created", "to": "paid"},
            {"from": "paid", "to": "shipped"},
            {"from": "shipped", "to": "delivered"},
        ],
    }


@pytest.mark.parametrize("state", list(PATHS))
def test_every_action_not_allowed_is_a_409_listing_what_is_and_changes_nothing(state):
    key = f"p-{state}"
    for action in PATHS[state]:
        call("Parcel", key, action)
    before = call("Parcel", key, "status")
    listed = ", ".join(ALLOWED[state]) or "nothing (it is a final state)"
    for action in ("pay", "ship", "deliver", "cancel"):
        if action in ALLOWED[state]:
            continue
        with pytest.raises(ObjectsError) as refused:
            call("Parcel", key, action)
        assert refused.value.status_code == 409
        assert str(refused.value) == f"Cannot {action} parcel {key}: it is {state}. Allowed from {state}: {listed}."
        assert call("Parcel", key, "status") == before
