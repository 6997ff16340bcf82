"""The shop's checkout runs for the signed-in shopper, and the demo payment provider's page (Django's test
client; the browser tests in tests/browser/test_payment_confirmation.py follow a whole waiting checkout)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

import objects
from orders import payments

from .shop_fixtures import fund, make_product

pytestmark = pytest.mark.workers
PASSWORD = "pw-for-tests-123"


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
