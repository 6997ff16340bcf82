"""Helpers of the shop's browser tests: a shop with products, a signed-in shopper with an order."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from playwright.sync_api import expect

import objects
from tests.integration.shop_fixtures import fund, make_product

PASSWORD = "pw-for-tests-123"


def stocked_shop() -> None:
    make_product("MUG", name="Mug", price=1299, stock=10)
    make_product("TEE", name="Tee", price=2500, stock=5)
    get_user_model().objects.create_user("alice", password=PASSWORD)


def order_for(username: str = "alice") -> str:
    """A paid order of `username` (36-character id), made through the objects."""
    fund(username, 10_000)
    objects.call("ShoppingCart", username, "add_item", {"sku": "TEE", "quantity": 1})
    return objects.call("ShoppingCart", username, "checkout")["order_id"]


def sign_in(page, username: str = "alice") -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=f"Sign out {username}")).to_be_visible()


def no_sideways_scroll(page) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"
