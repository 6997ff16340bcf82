"""The checks of exercise 2 (docs/exercises.md): `make exercise 2`."""

from __future__ import annotations

import pytest
from conftest import call, load

from objects import ObjectsError

load(__file__)


def refused(handler: str, arg: dict, key: str = "ada") -> ObjectsError:
    with pytest.raises(ObjectsError) as caught:
        call("Purse", key, handler, arg)
    return caught.value


def test_deposits_and_withdrawals_move_the_balance():
    assert call("Purse", "ada", "balance") == {"balance": 0}
    assert call("Purse", "ada", "deposit", {"amount": 500, "tx_id": "t1"}) == {"balance": 500}
    assert call("Purse", "ada", "withdraw", {"amount": 120, "tx_id": "t2"}) == {"balance": 380}
    assert call("Purse", "ada", "balance") == {"balance": 380}
    assert call("Purse", "bob", "balance") == {"balance": 0}


def test_never_below_zero_and_the_refusal_says_by_how_much():
    call("Purse", "ada", "deposit", {"amount": 300, "tx_id": "t1"})
    error = refused("withdraw", {"amount": 500, "tx_id": "t2"})
    assert error.status_code == 409
    assert str(error) == "Insufficient funds: balance 300, need 500."
    assert call("Purse", "ada", "balance") == {"balance": 300}


def test_a_repeated_tx_id_returns_the_first_result_and_changes_nothing():
    assert call("Purse", "ada", "deposit", {"amount": 300, "tx_id": "t1"}) == {"balance": 300}
    call("Purse", "ada", "deposit", {"amount": 100, "tx_id": "t2"})
    assert call("Purse", "ada", "deposit", {"amount": 300, "tx_id": "t1"}) == {"balance": 300}
    assert call("Purse", "ada", "balance") == {"balance": 400}


def test_a_tx_id_reused_for_another_movement_is_a_409():
    call("Purse", "ada", "deposit", {"amount": 300, "tx_id": "t1"})
    assert refused("deposit", {"amount": 999, "tx_id": "t1"}).status_code == 409
    assert refused("withdraw", {"amount": 300, "tx_id": "t1"}).status_code == 409
    assert call("Purse", "ada", "balance") == {"balance": 300}


def test_a_refused_withdrawal_does_not_use_up_its_tx_id():
    error = refused("withdraw", {"amount": 50, "tx_id": "t1"})
    assert error.status_code == 409
    call("Purse", "ada", "deposit", {"amount": 100, "tx_id": "t0"})
    assert call("Purse", "ada", "withdraw", {"amount": 50, "tx_id": "t1"}) == {"balance": 50}


@pytest.mark.parametrize(
    "arg",
    [{"amount": 0, "tx_id": "t"}, {"amount": 1_000_001, "tx_id": "t"}, {"amount": 5, "tx_id": ""}, {"amount": 5}],
)
def test_bad_input_is_a_400_before_anything_is_stored(arg):
    assert refused("deposit", arg).status_code == 400
    assert call("Purse", "ada", "balance") == {"balance": 0}
