"""A cart whose stored state has an unexpected shape (an operator stored "oops" in its lines): its handlers refuse
with a clear error, the cart page says so, and every other page of that shopper keeps working."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth import get_user_model

import objects
from objects.models import Instance
from objects.services import state_edit

from .shop_fixtures import make_product

pytestmark = pytest.mark.workers
PASSWORD = "pw-for-tests-123"
JSON = {"HTTP_ACCEPT": "application/json"}
DAMAGED = "This cart's stored contents are not in a shape the shop can read"


@pytest.fixture
def damaged(live, client):
    make_product("MUG", name="Mug", price=1299, stock=10)
    get_user_model().objects.create_user("alice", password=PASSWORD)
    assert client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    assert client.post("/cart/add/", {"sku": "MUG", "quantity": 1}, **JSON).status_code == 200
    version = Instance.objects.get(type_name="ShoppingCart", key="alice").version
    state_edit(type_name="ShoppingCart", key="alice", expected_version=version, set_entries={"lines": "oops"})
    return client


@pytest.mark.parametrize("handler", ["get_cart", "add_item", "remove_item", "update_quantity", "checkout"])
def test_every_handler_refuses_a_damaged_cart_in_words(damaged, handler):
    arg = {"get_cart": None, "checkout": None, "remove_item": {"sku": "MUG"}}.get(
        handler, {"sku": "MUG", "quantity": 1}
    )
    with pytest.raises(objects.TerminalError) as refused:
        objects.call("ShoppingCart", "alice", handler, arg)
    assert refused.value.status_code == 409 and DAMAGED in refused.value.message and "'lines'" in refused.value.message


def test_clearing_a_damaged_cart_repairs_it(damaged):
    assert objects.call("ShoppingCart", "alice", "clear")["lines"] == []
    assert objects.call("ShoppingCart", "alice", "add_item", {"sku": "MUG", "quantity": 2})["item_count"] == 2


def test_the_cart_page_says_what_is_wrong_and_other_pages_work(damaged):
    page = damaged.get("/cart/")
    assert page.status_code == 200
    text = html.unescape(page.content.decode())
    assert DAMAGED in text and 'role="alert"' in text and '<p class="empty" hidden>' in text
    for path in ("/", "/orders/", "/wallet/", "/no-such-page/"):
        answer = damaged.get(path)
        assert answer.status_code in (200, 404) and b"Cart (<span" in answer.content, path
    added = damaged.post("/cart/add/", {"sku": "MUG", "quantity": 1}, **JSON)
    assert added.status_code == 409 and DAMAGED in added.json()["message"]
    as_json = damaged.get("/cart/json/")
    assert as_json.status_code == 409 and DAMAGED in as_json.json()["message"]
    followed = damaged.post("/cart/remove/", {"sku": "MUG"}, follow=True)
    assert followed.status_code == 200 and DAMAGED in html.unescape(followed.content.decode())
