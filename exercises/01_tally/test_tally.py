"""The checks of exercise 1 (docs/exercises.md): `make exercise 1`."""

from __future__ import annotations

import pytest
from conftest import call, load

import objects
from objects import ObjectsError
from objects.testing import run_inbox

load(__file__)


def test_a_new_key_is_zero():
    assert call("Tally", "visits", "value") == 0


def test_add_returns_the_new_value_and_one_by_default():
    assert call("Tally", "visits", "add", {"by": 5}) == 5
    assert call("Tally", "visits", "add", {}) == 6
    assert call("Tally", "visits", "value") == 6


def test_keys_count_apart():
    call("Tally", "a", "add", {"by": 2})
    call("Tally", "b", "add", {"by": 7})
    assert (call("Tally", "a", "value"), call("Tally", "b", "value")) == (2, 7)


@pytest.mark.parametrize("by", [0, -3, 1001])
def test_a_step_out_of_range_is_a_400_naming_by_and_changes_nothing(by):
    call("Tally", "visits", "add", {"by": 1})
    with pytest.raises(ObjectsError) as refused:
        call("Tally", "visits", "add", {"by": by})
    assert refused.value.status_code == 400 and "by" in str(refused.value)
    assert call("Tally", "visits", "value") == 1


def test_reset_sets_zero():
    call("Tally", "visits", "add", {"by": 9})
    assert call("Tally", "visits", "reset") == 0
    assert call("Tally", "visits", "value") == 0


def test_queued_adds_on_one_key_all_count_in_order():
    ids = [objects.send("Tally", "busy", "add", {"by": n}) for n in range(1, 21)]
    run_inbox("Tally", "busy")
    from objects.services import invocation_get

    assert [invocation_get(i).output for i in ids] == [n * (n + 1) // 2 for n in range(1, 21)]
    assert call("Tally", "busy", "value") == 210
