"""The shop's pages as shoppers expect them, through Django's test client: stock shown and enforced."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

import objects

from .shop_fixtures import balance, cart, fund, make_product

pytestmark = pytest.mark.workers
PASSWORD = "pw-for-tests-123"
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture
def shop(live):
    make_product("MUG", name="Mug", price=1299, stock=10)
    make_product("TEE", name="Tee", price=2500, stock=3)
    make_product("CAP", name="Cap", price=900, stock=0)
    get_user_model().objects.create_user("alice", password=PASSWORD)


def signed_in(client, username="alice"):
    assert client.post("/accounts/login/", {"username": username, "password": PASSWORD}).status_code == 302
    return client


def product_card(html: str, sku: str) -> str:
    match = re.search(rf'<li class="product" data-sku="{sku}">(.*?)</li>', html, re.S)
    assert match, f"no catalog card for {sku}"
    return match.group(1)


def test_the_catalog_shows_stock_and_disables_what_is_sold_out(shop, client):
    page = client.get("/").content.decode()
    tee, cap, mug = product_card(page, "TEE"), product_card(page, "CAP"), product_card(page, "MUG")
    assert "Only 3 left" in tee and 'max="3"' in tee
    assert "Out of stock" in cap
    assert re.search(r"<button[^>]*disabled[^>]*>Add Cap to cart", cap), cap
    assert "In stock" in mug and 'max="10"' in mug and "disabled" not in mug


def test_adding_more_than_the_stock_is_refused_naming_the_product_and_what_is_left(shop, client):
    refused = client.post("/cart/add/", {"sku": "TEE", "quantity": 4}, **JSON)
    assert refused.status_code == 409
    assert refused.json()["message"] == "Only 3 Tee left."
    client.post("/cart/add/", {"sku": "TEE", "quantity": 2}, **JSON)
    again = client.post("/cart/add/", {"sku": "TEE", "quantity": 2}, follow=True).content.decode()
    assert "Only 3 Tee left; your cart already has 2." in again
    sold_out = client.post("/cart/add/", {"sku": "CAP", "quantity": 1}, **JSON)
    assert sold_out.status_code == 409 and sold_out.json()["message"] == "Cap is out of stock."
    raised = client.post("/cart/update/", {"sku": "TEE", "quantity": 5}, **JSON)
    assert raised.status_code == 409 and raised.json()["message"] == "Only 3 Tee left."
    assert [(line["sku"], line["quantity"]) for line in cart(client.session["anon_cart_key"])["lines"]] == [("TEE", 2)]


def test_the_cart_page_warns_before_checkout_when_a_line_exceeds_the_stock(shop, client):
    signed_in(client)
    client.post("/cart/add/", {"sku": "TEE", "quantity": 2})
    assert "lower the quantity" not in client.get("/cart/").content.decode()
    objects.call("Inventory", "TEE", "reserve", {"order_id": "someone-else", "quantity": 2})
    page = client.get("/cart/").content.decode()
    assert "Only 1 Tee left; lower the quantity to check out." in page
    assert re.search(r'id="q-TEE"[^>]*max="1"', page), page
    answer = client.post("/cart/update/", {"sku": "TEE", "quantity": 1}, **JSON).json()
    assert answer["stock"] == {"TEE": 1}


def checkout_form(html: str) -> dict[str, str]:
    form = re.search(r'<form method="post" action="/checkout/".*?</form>', html, re.S)
    assert form, "no checkout form"
    fields = dict(re.findall(r'name="(token|expected_total)" value="([^"]*)"', form.group(0)))
    assert set(fields) == {"token", "expected_total"}, form.group(0)
    return fields


def test_checkout_charges_nothing_when_the_cart_changed_and_asks_to_confirm_the_new_total(shop, client):
    fund("alice", 10_000)
    signed_in(client)
    client.post("/cart/add/", {"sku": "MUG", "quantity": 1})
    seen = checkout_form(client.get("/cart/").content.decode())
    assert seen["expected_total"] == "1299"
    objects.call("ShoppingCart", "alice", "add_item", {"sku": "TEE", "quantity": 1})  # another tab
    response = client.post("/checkout/", seen)
    page = response.content.decode()
    assert response.status_code == 409
    assert "Your cart changed since you saw it: the total is now $37.99, not $12.99. Nothing was charged." in page
    assert balance("alice") == 10_000 and cart("alice")["item_count"] == 2
    confirm = checkout_form(page)
    assert confirm["expected_total"] == "3799" and confirm["token"] != seen["token"]
    assert "Confirm and pay $37.99" in re.sub(r"<[^>]+>", "", page)
    done = client.post("/checkout/", confirm)
    assert done.status_code == 302 and done["Location"].startswith("/orders/ord_")
    assert balance("alice") == 10_000 - 3799


def test_the_cart_object_refuses_a_checkout_whose_expected_total_is_stale(shop):
    fund("alice", 10_000)
    objects.call("ShoppingCart", "alice", "add_item", {"sku": "MUG", "quantity": 1})
    with pytest.raises(objects.TerminalError) as stale:
        objects.call("ShoppingCart", "alice", "checkout", {"expected_total_cents": 999})
    assert stale.value.status_code == 412 and "$12.99" in stale.value.message
    assert balance("alice") == 10_000
    paid = objects.call("ShoppingCart", "alice", "checkout", {"expected_total_cents": 1299})
    assert paid["order_total_cents"] == 1299
