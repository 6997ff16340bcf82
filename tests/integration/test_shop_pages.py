"""The shop's pages as shoppers expect them, through Django's test client: stock shown and enforced."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

import objects
from objects.models import Instance, Invocation
from objects.services import instance_pause

from .shop_fixtures import balance, cart, fund, key_held, make_product

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


def test_checkout_refusals_name_products_and_money_never_skus_or_cents(shop, client):
    fund("alice", 1000)
    signed_in(client)
    client.post("/cart/add/", {"sku": "MUG", "quantity": 1})
    page = client.post("/checkout/", checkout_form(client.get("/cart/").content.decode()), follow=True)
    assert "Checkout failed: Your wallet has $10.00; this order is $12.99. Top up $2.99 to pay for it." in (
        page.content.decode()
    )
    fund("alice", 100_000)
    client.post("/cart/add/", {"sku": "TEE", "quantity": 2})
    objects.call("Inventory", "TEE", "reserve", {"order_id": "someone-else", "quantity": 2})
    page = client.post("/checkout/", checkout_form(client.get("/cart/").content.decode()), follow=True)
    message = re.search(r'<p class="message error" role="alert">(.*?)</p>', page.content.decode(), re.S).group(1)
    assert message == "Checkout failed: Only 1 Tee left; your cart has 2. Lower the quantity to check out."
    assert balance("alice") == 101_000


def test_the_wallet_shows_payments_as_negative_amounts_in_words(shop, client):
    fund("alice", 10_000)
    signed_in(client)
    client.post("/cart/add/", {"sku": "MUG", "quantity": 1})
    order_url = client.post("/checkout/", checkout_form(client.get("/cart/").content.decode()))["Location"]
    page = client.get("/wallet/").content.decode()
    rows = re.findall(r"<tr><td.*?</tr>", page, re.S)
    payment = re.sub(r"<[^>]+>", " ", rows[0])
    assert "Payment for order" in payment and "-$12.99" in payment and "$87.01" in payment
    assert f'href="{order_url}"' in rows[0]
    assert "order-ord_" not in page and "fund-alice" not in page and "1299" not in re.sub(r"ord_\w+", "", page)


def test_a_paused_cart_is_on_hold_and_nothing_is_accepted(shop, client):
    signed_in(client)
    client.post("/cart/add/", {"sku": "MUG", "quantity": 1})
    instance_pause(instance=Instance.objects.get(type_name="ShoppingCart", key="alice"))
    before = Invocation.objects.filter(type_name="ShoppingCart").count()
    refused = client.post("/cart/add/", {"sku": "MUG", "quantity": 1}, **JSON)
    assert refused.status_code == 503 and refused.json()["message"].startswith("Your cart is on hold for a moment")
    page = client.post("/cart/update/", {"sku": "MUG", "quantity": 3}, follow=True).content.decode()
    assert "Your cart is on hold for a moment" in page
    assert Invocation.objects.filter(type_name="ShoppingCart").count() == before


def until_done(client, url):
    """GET the pending page until it stops saying "One moment" (each GET waits up to 2 s for the result)."""
    for _ in range(30):
        response = client.get(url)
        if b"One moment" not in response.content:
            return response
    raise AssertionError(f"{url} still pending")


def test_a_slow_checkout_says_still_working_and_the_page_completes(shop, client, settings):
    settings.SHOP_CALL_TIMEOUT = 1
    fund("alice", 10_000)
    signed_in(client)
    client.post("/cart/add/", {"sku": "MUG", "quantity": 1})
    form = checkout_form(client.get("/cart/").content.decode())
    with key_held("Inventory", "MUG"):  # checkout waits for the stock's lock
        waiting = client.post("/checkout/", form)
        assert waiting.status_code == 302 and waiting["Location"].startswith("/pending/")
        page = client.get(waiting["Location"]).content.decode()
        assert "Still working on it" in page and 'http-equiv="refresh"' in page
        assert "inv_" not in page and "/ingress/restate" not in page  # no attach URL (the live cart has its own)
    done = until_done(client, waiting["Location"])
    assert done.status_code == 302 and done["Location"].startswith("/orders/ord_")
    assert balance("alice") == 10_000 - 1299
    assert client.get(waiting["Location"]).status_code == 302  # forgotten once finished


def test_a_slow_cart_change_answers_202_and_the_pending_url_brings_the_cart(shop, client, settings):
    settings.SHOP_CALL_TIMEOUT = 1
    signed_in(client)
    client.post("/cart/add/", {"sku": "MUG", "quantity": 1})
    with key_held("ShoppingCart", "alice"):
        waiting = client.post("/cart/add/", {"sku": "MUG", "quantity": 2}, **JSON)
        assert waiting.status_code == 202 and waiting.json()["message"].startswith("Still working on it")
        url = waiting.json()["pending"]
        assert client.get(url, **JSON).status_code == 202
    for _ in range(30):
        done = client.get(url, **JSON)
        if done.status_code != 202:
            break
    assert done.status_code == 200 and done.json()["cart"]["item_count"] == 3
    assert done.json()["message"] == "Added Mug to your cart."
