"""The shop's pages through Django's test client: own-key isolation, PRG, JSON answers, idempotent forms."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

import objects
from catalog.demo import PRODUCTS, SHOPPERS
from catalog.models import Product

from .shop_fixtures import balance, cart, fund, make_product, stock

pytestmark = pytest.mark.workers
PASSWORD = "pw-for-tests-123"


@pytest.fixture
def shop(live):
    make_product("MUG", name="Mug", price=1299, stock=10)
    make_product("TEE", name="Tee", price=2500, stock=1)
    User = get_user_model()
    for name in ("alice", "bob"):
        User.objects.create_user(name, password=PASSWORD)


def signed_in(client, username):
    response = client.post("/accounts/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content
    return client


def token_of(html: str, form_action: str) -> str:
    match = re.search(rf'action="{re.escape(form_action)}".*?name="token" value="([0-9a-f]{{32}})"', html, re.S)
    assert match, f"no token in the form posting to {form_action}"
    return match.group(1)


def test_an_anonymous_cart_is_merged_into_the_shoppers_cart_at_sign_in(shop, client):
    response = client.post("/cart/add/", {"sku": "MUG", "quantity": 2})
    assert response.status_code == 302 and response["Location"] == "/cart/"
    assert "Mug" in client.get("/cart/").content.decode()
    objects.call("ShoppingCart", "alice", "add_item", {"sku": "TEE", "quantity": 1})
    signed_in(client, "alice")
    assert [(line["sku"], line["quantity"]) for line in cart("alice")["lines"]] == [("TEE", 1), ("MUG", 2)]
    page = client.get("/cart/").content.decode()
    assert "Mug" in page and "Tee" in page


def test_a_late_request_from_before_sign_in_does_not_sign_the_shopper_out(shop, client):
    """The live cart's read sent just before signing in can arrive after it, carrying the old session cookie:
    it is answered as anonymous and must not delete the browser's cookie, which is the new session's by then."""
    response = client.post("/cart/add/", {"sku": "MUG", "quantity": 2})
    assert response.status_code == 302
    before = client.cookies["sessionid"].value
    signed_in(client, "alice")
    assert client.cookies["sessionid"].value != before
    late = client.__class__()
    late.cookies["sessionid"] = before
    for path in ("/cart/json/", "/cart/", "/"):
        answer = late.get(path, headers={"accept": "application/json"} if path.endswith("json/") else {})
        assert answer.status_code == 200, (path, answer.status_code)
        assert "sessionid" not in answer.cookies, f"{path} answered {answer.cookies['sessionid'].output()}"
    assert [(line["sku"], line["quantity"]) for line in client.get("/cart/json/").json()["cart"]["lines"]] == [
        ("MUG", 2)
    ]
    signed_out = client.post("/accounts/logout/")
    assert signed_out.cookies["sessionid"].value == "", "signing out still deletes the cookie"


def test_each_shopper_sees_and_changes_only_their_own_cart(shop, client, django_user_model):
    signed_in(client, "alice")
    client.post("/cart/add/", {"sku": "MUG", "quantity": 3})
    other = signed_in(type(client)(), "bob")
    assert "Mug" not in other.get("/cart/").content.decode()
    # a form naming alice's SKU still only touches bob's own cart; there is no way to name another key
    other.post("/cart/update/", {"sku": "MUG", "quantity": 1, "key": "alice", "user": "alice"})
    other.post("/cart/remove/", {"sku": "MUG", "key": "alice"})
    assert cart("alice")["item_count"] == 3
    assert cart("bob")["item_count"] == 0


def test_cart_endpoints_answer_json_when_the_page_script_asks(shop, client):
    json_headers = {"HTTP_ACCEPT": "application/json"}
    ok = client.post("/cart/add/", {"sku": "MUG", "quantity": 2}, **json_headers)
    assert ok.status_code == 200 and ok.json()["cart"]["item_count"] == 2
    assert ok.json()["message"] == "Added Mug to your cart."
    bad = client.post("/cart/update/", {"sku": "MUG", "quantity": 100}, **json_headers)
    assert bad.status_code == 400 and "99" in bad.json()["message"]
    unknown = client.post("/cart/add/", {"sku": "NOPE", "quantity": 1}, **json_headers)
    assert unknown.status_code == 404 and "NOPE" in unknown.json()["message"]
    assert client.get("/cart/json/").json()["cart"]["item_count"] == 2


def test_bad_form_input_shows_a_message_and_changes_nothing(shop, client):
    signed_in(client, "alice")
    response = client.post("/cart/add/", {"sku": "MUG", "quantity": "0"}, follow=True)
    assert response.status_code == 200
    assert "Ensure this value is greater than or equal to 1" in response.content.decode()
    assert cart("alice")["lines"] == []


def test_a_message_travels_in_the_session_and_sets_no_cookie_of_its_own(shop, client):
    """MESSAGE_STORAGE is the session (the cookie storage built a signer on every request, ingress calls too)."""
    signed_in(client, "alice")
    redirect = client.post("/cart/add/", {"sku": "MUG", "quantity": "0"})
    assert redirect.status_code == 302 and "messages" not in redirect.cookies
    shown = client.get(redirect["Location"]).content.decode()
    assert "Ensure this value is greater than or equal to 1" in shown
    assert "Ensure this value" not in client.get(redirect["Location"]).content.decode()  # shown once


def test_checkout_places_the_order_and_a_double_submit_charges_once(shop, client):
    fund("alice", 10_000)
    signed_in(client, "alice")
    client.post("/cart/add/", {"sku": "MUG", "quantity": 2})
    token = token_of(client.get("/cart/").content.decode(), "/checkout/")
    first = client.post("/checkout/", {"token": token})
    second = client.post("/checkout/", {"token": token})
    assert first.status_code == 302 and first["Location"].startswith("/orders/ord_")
    assert second["Location"] == first["Location"]
    assert balance("alice") == 10_000 - 2598
    assert stock("MUG")["available"] == 8
    page = client.get(first["Location"]).content.decode()
    assert "paid" in page and "$25.98" in page and "Order placed" in page
    assert first["Location"].split("/")[2] in client.get("/orders/").content.decode()


def test_checkout_with_insufficient_funds_shows_the_shortfall(shop, client):
    fund("alice", 1000)
    signed_in(client, "alice")
    client.post("/cart/add/", {"sku": "MUG", "quantity": 1})
    token = token_of(client.get("/cart/").content.decode(), "/checkout/")
    page = client.post("/checkout/", {"token": token}, follow=True).content.decode()
    assert "Checkout failed: Your wallet has $10.00; this order is $12.99. Top up $2.99 to pay for it." in page
    assert balance("alice") == 1000 and stock("MUG") == {"available": 10, "reserved": 0}


def test_checkout_with_insufficient_stock_names_the_item(shop, client):
    fund("alice", 100_000)
    signed_in(client, "alice")
    client.post("/cart/add/", {"sku": "TEE", "quantity": 1})
    objects.call("Inventory", "TEE", "reserve", {"order_id": "someone-else", "quantity": 1})  # sold meanwhile
    token = token_of(client.get("/cart/").content.decode(), "/checkout/")
    page = client.post("/checkout/", {"token": token}, follow=True).content.decode()
    assert "Checkout failed: Tee is out of stock now; remove it from your cart to check out." in page
    assert balance("alice") == 100_000


def test_anonymous_checkout_is_sent_to_sign_in(shop, client):
    client.post("/cart/add/", {"sku": "MUG", "quantity": 1})
    response = client.post("/checkout/", {"token": "0" * 32})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_another_shoppers_order_and_unknown_orders_are_404(shop, client):
    fund("alice", 10_000)
    objects.call("ShoppingCart", "alice", "add_item", {"sku": "MUG", "quantity": 1})
    order_id = objects.call("ShoppingCart", "alice", "checkout")["order_id"]
    assert signed_in(client, "alice").get(f"/orders/{order_id}/").status_code == 200
    bob = signed_in(type(client)(), "bob")
    assert bob.get(f"/orders/{order_id}/").status_code == 404
    assert bob.get("/orders/ord_00000000000000000000000000000000/").status_code == 404
    assert order_id not in bob.get("/orders/").content.decode()


def test_wallet_top_up_with_one_form_token_deposits_once(shop, client, settings):
    settings.SHOP_DEMO_TOPUP = True  # off by default (tests/security/test_who_may.py)
    signed_in(client, "alice")
    page = client.get("/wallet/").content.decode()
    token = token_of(page, "/wallet/top-up/")
    client.post("/wallet/top-up/", {"amount": 2500, "token": token})
    response = client.post("/wallet/top-up/", {"amount": 2500, "token": token}, follow=True)
    assert balance("alice") == 2500
    assert "$25.00" in response.content.decode() and response.content.decode().count("Demo top-up</td>") == 1
    refused = client.post("/wallet/top-up/", {"amount": 999999, "token": token}, follow=True)
    assert "Select a valid choice" in refused.content.decode() and balance("alice") == 2500


def test_orders_and_wallet_need_sign_in(shop, client):
    for url in ("/orders/", "/wallet/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_load_demo_is_idempotent(live):
    call_command("load_demo")
    first = ({s: balance(s) for s in SHOPPERS}, {p[0]: stock(p[0]) for p in PRODUCTS}, Product.objects.count())
    call_command("load_demo")
    second = ({s: balance(s) for s in SHOPPERS}, {p[0]: stock(p[0]) for p in PRODUCTS}, Product.objects.count())
    assert first == second
    assert first[0] == SHOPPERS and first[2] == len(PRODUCTS)
    assert get_user_model().objects.get(username="admin").is_superuser
