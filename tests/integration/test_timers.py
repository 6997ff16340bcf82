"""Named timers (ctx.timer): armed with the handler's transaction, one per name, periodic ones re-armed with each
run until disarmed; listed in the admin and the management API. The cart's idle expiry is one such timer."""

from __future__ import annotations

import time

import pytest

import objects
from objects.models import Invocation, Status

pytestmark = pytest.mark.workers


def _timers(key: str, type_name: str = "BenchAwait") -> list[Invocation]:
    return list(Invocation.objects.filter(type_name=type_name, key=key, status=Status.PENDING).exclude(timer_name=""))


def _ticks(key: str) -> int:
    return objects.call("BenchAwait", key, "ticks")


def test_a_periodic_timer_ticks_every_interval_and_stops_when_disarmed(live):
    objects.call("BenchAwait", "periodic", "arm", {"name": "beat", "ms": 500, "every_ms": 500})
    time.sleep(3.2)
    ticked = _ticks("periodic")
    assert 5 <= ticked <= 7, ticked
    assert len(_timers("periodic")) == 1  # each run re-armed the next, in its own transaction
    assert objects.call("BenchAwait", "periodic", "disarm", {"name": "beat"}) is True
    stopped = _ticks("periodic")
    time.sleep(1.5)
    assert _ticks("periodic") == stopped
    assert _timers("periodic") == []
    assert objects.call("BenchAwait", "periodic", "disarm", {"name": "beat"}) is False


def test_arming_a_name_again_replaces_its_timer(live):
    for _ in range(3):
        objects.call("BenchAwait", "again", "arm", {"name": "once", "ms": 700, "every_ms": None})
    objects.call("BenchAwait", "again", "arm", {"name": "other", "ms": 60_000, "every_ms": None})
    armed = sorted((t.timer_name, t.timer_every) for t in _timers("again"))
    assert armed == [("once", None), ("other", None)]
    replaced = Invocation.objects.filter(key="again", timer_name="once", status=Status.CANCELLED)
    assert replaced.count() == 2 and "re-armed" in replaced.first().error_message
    time.sleep(1.5)
    assert _ticks("again") == 1  # the one timer left ran once
    assert [t.timer_name for t in _timers("again")] == ["other"]


def test_a_timer_armed_by_a_failing_handler_is_not_armed(live):
    with pytest.raises(objects.TerminalError):
        objects.call("BenchAwait", "failing", "arm", {"name": "x", "ms": 100, "every_ms": 10})  # interval too short
    assert _timers("failing") == []


def test_the_api_and_the_admin_list_the_armed_timers(live, admin_client):
    objects.call("BenchAwait", "listed", "arm", {"name": "hourly", "ms": 3_600_000, "every_ms": 3_600_000})
    [timer] = _timers("listed")
    detail = admin_client.get(f"/api/instances/{timer.instance_id}/").json()
    assert detail["timers"] == [
        {
            "name": "hourly",
            "handler": "tick",
            "next_at": detail["timers"][0]["next_at"],
            "every_seconds": 3600.0,
            "invocation_id": timer.public_id,
        }
    ]
    assert detail["timers"][0]["next_at"][:16] == timer.not_before.isoformat()[:16]
    page = admin_client.get(f"/admin/objects/instance/{timer.instance_id}/change/").content.decode()
    assert 'id="timers"' in page and "<code>hourly</code>" in page and "3600.0 s" in page


def test_the_carts_idle_expiry_is_one_timer_re_armed_by_each_change(live):
    from catalog.models import Product

    Product.objects.create(sku="MUG", name="Mug", price_cents=1299, active=True)
    for quantity in (1, 2, 3):
        objects.call("ShoppingCart", "timer-shopper", "add_item", {"sku": "MUG", "quantity": quantity})
    [expiry] = _timers("timer-shopper", "ShoppingCart")
    assert expiry.timer_name == "idle-expiry" and expiry.handler == "expire" and expiry.input == {"version": 3}
    assert Invocation.objects.filter(key="timer-shopper", handler="expire", status=Status.CANCELLED).count() == 2
