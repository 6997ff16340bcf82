"""The shop's checkout runs for the signed-in shopper, and the demo payment provider's page (Django's test
client; the browser tests in tests/browser/test_payment_confirmation.py follow a whole waiting checkout),
and a waiting checkout on the SQLite default."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis
from django.contrib.auth import get_user_model

import objects
from orders import payments
from tests.support import Workers

from .shop_fixtures import fund, make_product

pytestmark = pytest.mark.workers
PASSWORD = "pw-for-tests-123"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shop(live, redis_client):
    for key in redis_client.scan_iter("shop:payment*"):
        redis_client.delete(key)
    make_product("MUG", name="Mug", price=1299, stock=10)
    for name in ("alice", "bob"):
        get_user_model().objects.create_user(name, password=PASSWORD)


def signed_in(client, username="alice"):
    assert client.post("/accounts/login/", {"username": username, "password": PASSWORD}).status_code == 302
    return client


def test_checkout_runs_for_the_shopper_so_the_order_history_names_them(shop, client):
    fund("alice", 5_000)
    signed_in(client)
    client.post("/cart/add/", {"sku": "MUG", "quantity": 1})
    page = client.post("/checkout/", {"token": "a" * 32, "expected_total": 1299}, follow=True)
    assert "Thank you! Order placed and paid ($12.99)." in page.content.decode()
    [order_id] = objects.call("ShoppingCart", "alice", "orders")
    history = objects.call("Order", order_id, "status")["history"]
    assert [(step["to"], step["by"]) for step in history] == [("created", "alice"), ("paid", "alice")]
    assert "by alice" in page.content.decode() and "by ShoppingCart/" not in page.content.decode()


def test_the_payment_provider_is_off_by_default_and_answers_only_the_shoppers_own_payments(shop, client, settings):
    signed_in(client, "alice")
    assert client.get("/payment-provider/").status_code == 404  # off by default
    assert client.post("/payment-provider/ord_x/", {"decision": "confirm"}).status_code == 404
    settings.SHOP_PAYMENT_CONFIRMATION = True
    payments.payment_request(
        order_id="ord_bobs",
        user="bob",
        amount_cents=1299,
        items=[{"name": "Mug", "quantity": 1}],
        awakeable_id="sign_1" + "A" * 27,  # no checkout waits for it
    )
    assert "No payment is waiting for your answer." in client.get("/payment-provider/").content.decode()
    assert client.post("/payment-provider/ord_bobs/", {"decision": "confirm"}).status_code == 404
    client.post("/accounts/logout/")

    signed_in(client, "bob")
    page = client.get("/payment-provider/").content.decode()
    assert 'Payment of <span class="payment-amount">$12.99</span>' in page and "1 × Mug" in page
    bad = client.post("/payment-provider/ord_bobs/", {"decision": "maybe"}, follow=True).content.decode()
    assert "Select a valid choice." in bad
    answered = client.post("/payment-provider/ord_bobs/", {"decision": "confirm"}, follow=True).content.decode()
    assert "The shop no longer waits for this payment; nothing was charged." in answered
    assert "No payment is waiting for your answer." in answered
    back = client.post("/payment-provider/ord_bobs/", {"decision": "confirm", "next": "https://evil.example/"})
    assert back.status_code == 302 and back["Location"] == "/payment-provider/"  # only back to this site


SQLITE_CLIENT = textwrap.dedent("""
    import os, time, django
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    django.setup()
    import objects
    from catalog.models import Product
    from objects.models import Status
    from objects.services import invocation_get
    from orders import payments

    Product.objects.create(sku="MUG", name="Mug", description="", price_cents=1299, stock=10, active=True)
    objects.call("Inventory", "MUG", "restock", {"quantity": 10}, timeout=60)
    objects.call("Wallet", "alice", "deposit", {"amount": 5000, "tx_id": "fund"}, timeout=60)

    def checkout(confirm):
        objects.call("ShoppingCart", "alice", "add_item", {"sku": "MUG", "quantity": 1}, timeout=60)
        asked = time.time() - 10
        waiting = objects.send("ShoppingCart", "alice", "checkout")
        deadline = time.monotonic() + 60
        while not payments.payments_pending(user="alice", since=asked) or invocation_get(waiting).status != "suspended":
            assert time.monotonic() < deadline, invocation_get(waiting).status
            time.sleep(0.05)
        [payment] = payments.payments_pending(user="alice")
        payments.payment_answer(order_id=payment["order_id"], user="alice", confirm=confirm)
        while not invocation_get(waiting).is_done:
            assert time.monotonic() < deadline, invocation_get(waiting).status
            time.sleep(0.05)
        done = invocation_get(waiting)
        print("OUTCOME", done.status, done.error_code, objects.call("Wallet", "alice", "balance")["balance"],
              objects.call("Inventory", "MUG", "available")["available"],
              len(objects.call("ShoppingCart", "alice", "orders")),
              objects.call("ShoppingCart", "alice", "get_cart")["item_count"])

    checkout(True)
    checkout(False)
""")


def test_checkout_waits_for_the_payment_and_resumes_on_sqlite(tmp_path):
    """The SQLite default (`make run`): a confirmed checkout charges once, a declined one charges nothing."""
    redis_base = os.environ["REDIS_URL"].rsplit("/", 1)[0]
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": f"{redis_base}/6",
        "SHOP_PAYMENT_CONFIRMATION": "1",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    worker = Workers(env["DATABASE_URL"], count=1, env=env).start_one(0)
    try:
        out = subprocess.run(
            [sys.executable, "-c", SQLITE_CLIENT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=200
        )
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    assert out.returncode == 0, out.stderr[-3000:]
    outcomes = [line.split()[1:] for line in out.stdout.splitlines() if line.startswith("OUTCOME")]
    # status, error code, balance, stock left, orders, items in the cart
    assert outcomes == [
        ["succeeded", "None", "3701", "9", "1", "0"],
        ["failed", "402", "3701", "9", "1", "1"],
    ], out.stdout
