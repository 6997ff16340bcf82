"""Wallet: idempotent movements, no overdraft, transfers that never create or lose money (real workers)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import AnonymousUser, User
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import objects
from objects.errors import ObjectsError
from objects.models import Invocation
from tests.support import threaded_call as _call
from wallet.ledger import PAGE_SIZE
from wallet.virtual_objects import wallet_access

pytestmark = pytest.mark.workers


def _user(name: str) -> str:
    User.objects.create_user(name)
    return name


def _balance(name: str) -> int:
    return objects.call("Wallet", name, "balance")["balance"]


def test_repeated_tx_id_returns_the_first_result_and_changes_nothing(live):
    assert objects.call("Wallet", "ann", "deposit", {"amount": 500, "tx_id": "t1"}) == {"balance": 500}
    assert objects.call("Wallet", "ann", "deposit", {"amount": 200, "tx_id": "t2"}) == {"balance": 700}
    assert objects.call("Wallet", "ann", "deposit", {"amount": 500, "tx_id": "t1"}) == {"balance": 500}
    assert objects.call("Wallet", "ann", "withdraw", {"amount": 100, "tx_id": "w1"}) == {"balance": 600}
    assert objects.call("Wallet", "ann", "withdraw", {"amount": 100, "tx_id": "w1"}) == {"balance": 600}
    assert _balance("ann") == 600
    assert len(objects.call("Wallet", "ann", "history")["entries"]) == 3


def test_tx_id_reused_for_another_request_is_refused(live):
    objects.call("Wallet", "bob", "deposit", {"amount": 500, "tx_id": "t1"})
    with pytest.raises(objects.TerminalError) as info:
        objects.call("Wallet", "bob", "withdraw", {"amount": 500, "tx_id": "t1"})
    assert info.value.status_code == 409
    assert "already used for a deposit of 500" in str(info.value)
    assert _balance("bob") == 500


def test_withdraw_never_goes_below_zero_and_names_the_shortfall(live):
    objects.call("Wallet", "cat", "deposit", {"amount": 300, "tx_id": "d"})
    with pytest.raises(objects.TerminalError) as info:
        objects.call("Wallet", "cat", "withdraw", {"amount": 500, "tx_id": "w"})
    assert info.value.status_code == 409
    assert str(info.value) == "Insufficient funds: balance 300, need 500 (short by 200)"
    assert _balance("cat") == 300


def test_a_refused_withdraw_does_not_erase_the_balance_for_the_next_movement(live):
    from tests.support import wait_for

    objects.call("Wallet", "cy", "deposit", {"amount": 300, "tx_id": "d"})
    for round_ in range(5):  # refusal and deposit back to back, so they usually run in one batch
        objects.send("Wallet", "cy", "withdraw", {"amount": 10_000, "tx_id": f"w{round_}"})
        objects.send("Wallet", "cy", "deposit", {"amount": 1, "tx_id": f"d{round_}"})
    wait_for(lambda: len(objects.call("Wallet", "cy", "history")["entries"]) == 6)
    assert _balance("cy") == 305
    assert [e["balance_after"] for e in objects.call("Wallet", "cy", "history")["entries"]] == [
        305,
        304,
        303,
        302,
        301,
        300,
    ]


@pytest.mark.parametrize(
    ("arg", "fragment"),
    [
        ({"amount": 0, "tx_id": "x"}, "amount: must be a whole number of cents from 1 to 100000000"),
        ({"amount": 100_000_001, "tx_id": "x"}, "amount"),
        ({"amount": -5, "tx_id": "x"}, "amount"),
        ({"amount": 5, "tx_id": ""}, "tx_id"),
        ({"amount": 1.5, "tx_id": "x"}, "amount: Input should be a valid integer"),
        ({"amount": 5}, "tx_id: Field required"),
    ],
)
def test_bad_movement_input_is_400_and_never_becomes_an_invocation(live, arg, fragment):
    with pytest.raises(ObjectsError) as info:
        objects.call("Wallet", "dan", "deposit", arg)
    assert info.value.status_code == 400
    assert fragment in str(info.value)
    assert not Invocation.objects.filter(type_name="Wallet", key="dan").exists()


def test_transfer_moves_money_and_both_histories_show_it(live):
    sender, receiver = _user("eve"), _user("fay")
    objects.call("Wallet", sender, "deposit", {"amount": 1000, "tx_id": "d"})
    assert objects.call("Wallet", sender, "transfer", {"to": receiver, "amount": 400, "tx_id": "t"}) == {"balance": 600}
    assert objects.call("Wallet", sender, "transfer", {"to": receiver, "amount": 400, "tx_id": "t"}) == {"balance": 600}
    assert _balance(receiver) == 400
    out = objects.call("Wallet", sender, "history")["entries"][0]
    assert (out["kind"], out["amount"], out["balance_after"], out["counterparty"]) == ("transfer_out", 400, 600, "fay")
    incoming = objects.call("Wallet", receiver, "history")["entries"]
    assert [(e["kind"], e["amount"], e["counterparty"], e["tx_id"]) for e in incoming] == [
        ("transfer_in", 400, "eve", "eve:t")
    ]


def test_transfer_to_unknown_user_is_404_and_nothing_moves(live):
    sender = _user("gus")
    objects.call("Wallet", sender, "deposit", {"amount": 1000, "tx_id": "d"})
    with pytest.raises(objects.TerminalError) as info:
        objects.call("Wallet", sender, "transfer", {"to": "nobody", "amount": 400, "tx_id": "t"})
    assert info.value.status_code == 404
    assert "nobody" in str(info.value)
    assert _balance(sender) == 1000
    assert objects.call("Wallet", "nobody", "balance") == {"balance": 0}
    assert len(objects.call("Wallet", sender, "history")["entries"]) == 1


def test_transfer_beyond_balance_and_to_self_are_refused_and_nothing_moves(live):
    sender, receiver = _user("hal"), _user("ida")
    objects.call("Wallet", sender, "deposit", {"amount": 100, "tx_id": "d"})
    with pytest.raises(objects.TerminalError) as info:
        objects.call("Wallet", sender, "transfer", {"to": receiver, "amount": 101, "tx_id": "t"})
    assert info.value.status_code == 409 and "short by 1" in str(info.value)
    with pytest.raises(objects.TerminalError) as info:
        objects.call("Wallet", sender, "transfer", {"to": sender, "amount": 10, "tx_id": "t2"})
    assert info.value.status_code == 400
    assert (_balance(sender), _balance(receiver)) == (100, 0)


def test_history_pages_newest_first_with_a_cursor(live):
    total = PAGE_SIZE + 5
    for i in range(total):
        objects.send("Wallet", "jay", "deposit", {"amount": i + 1, "tx_id": f"d{i}"})
    from tests.support import wait_for

    wait_for(lambda: _balance("jay") == total * (total + 1) // 2)
    seen, cursor = [], None
    while True:
        page = objects.call("Wallet", "jay", "history", {"limit": 20, "before": cursor})
        seen += [e["amount"] for e in page["entries"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == list(range(total, 0, -1))
    with pytest.raises(objects.TerminalError) as info:
        objects.call("Wallet", "jay", "history", {"limit": 101})
    assert info.value.status_code == 400


@pytest.mark.django_db
def test_only_the_owner_or_staff_reach_a_wallet_and_nobody_calls_receive_directly():
    owner, other = User.objects.create_user("kim"), User.objects.create_user("lee")
    staff = User.objects.create_user("boss", is_staff=True)
    assert wallet_access(owner, "kim", "withdraw")
    assert wallet_access(staff, "kim", "deposit")
    assert not wallet_access(other, "kim", "balance")
    assert not wallet_access(AnonymousUser(), "kim", "balance")
    assert not wallet_access(owner, "kim", "receive")
    assert not wallet_access(staff, "kim", "receive")


operations = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "withdraw", "transfer"]),
        st.integers(0, 4),
        st.integers(1, 4),
        st.integers(1, 400),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_concurrent_movements_keep_the_total_and_no_balance_below_zero(live, ops):
    prefix = uuid.uuid4().hex[:8]
    names = [_user(f"{prefix}-{i}") for i in range(5)]
    for name in names:
        objects.call("Wallet", name, "deposit", {"amount": 300, "tx_id": "seed"})

    def run(index_op):
        index, (kind, src, hop, amount) = index_op
        arg = {"amount": amount, "tx_id": f"op{index}"}
        if kind == "transfer":
            arg["to"] = names[(src + hop) % 5]
        try:
            _call("Wallet", names[src], kind, arg, timeout=60)
        except objects.TerminalError as exc:
            assert kind != "deposit" and exc.status_code == 409, exc
            return 0
        return {"deposit": amount, "withdraw": -amount, "transfer": 0}[kind]

    with ThreadPoolExecutor(8) as pool:
        net = sum(pool.map(run, enumerate(ops)))
    balances = [_balance(name) for name in names]
    assert all(b >= 0 for b in balances), balances
    assert sum(balances) == 5 * 300 + net
    for name, balance in zip(names, balances, strict=True):
        entries = objects.call("Wallet", name, "history", {"limit": 100})["entries"]
        signed = {"deposit": 1, "transfer_in": 1, "withdraw": -1, "transfer_out": -1}
        assert sum(signed[e["kind"]] * e["amount"] for e in entries) == balance
        assert entries[0]["balance_after"] == balance
