"""The shop's pages as shoppers expect them, through Django's test client: stock shown and enforced."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

import objects

from .shop_fixtures import cart, make_product

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
