"""Live updates in the shop: a cart changed in another tab or by an operator shows in the cart page and the header's
count within a second (Server-Sent Events from the watch endpoint), with JavaScript on."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from objects.models import Instance
from objects.services import state_edit
from tests.browser.shop_pages import sign_in, stocked_shop

pytestmark = [pytest.mark.browser, pytest.mark.workers]


@pytest.fixture
def shop(live_web):
    stocked_shop()


def watching(page):
    """Wait until the page's event stream is open (its first event has been answered)."""
    page.wait_for_function("document.body.hasAttribute('data-cart-watch')")
    page.wait_for_timeout(300)


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_another_tab_sees_the_cart_change_within_a_second(shop, new_page, width, height):
    adding = new_page(width=width, height=height)
    sign_in(adding)
    watching_cart = new_page(width=width, height=height)
    sign_in(watching_cart)
    watching_cart.goto("/cart/")
    expect(watching_cart.get_by_text("Your cart is empty.")).to_be_visible()
    watching(watching_cart)
    browsing = new_page(width=width, height=height)
    sign_in(browsing)
    browsing.goto("/")
    watching(browsing)

    adding.goto("/")
    adding.locator("li.product[data-sku=MUG]").get_by_label("Quantity").fill("2")
    adding.locator("li.product[data-sku=MUG]").get_by_role("button", name="Add Mug to cart").click()
    expect(adding.get_by_role("status")).to_contain_text("Added Mug to your cart.")

    expect(watching_cart.get_by_role("rowheader", name="Mug")).to_be_visible(timeout=1000)
    expect(watching_cart.locator("#total")).to_have_text("$25.98", timeout=1000)
    expect(watching_cart.locator("#cart-count")).to_have_text("2", timeout=1000)
    expect(browsing.locator("#cart-count")).to_have_text("2", timeout=1000)


def test_an_operators_edit_shows_in_the_open_cart_page(shop, new_page):
    page = new_page(width=1280, height=800)
    sign_in(page)
    page.goto("/")
    page.locator("li.product[data-sku=MUG]").get_by_role("button", name="Add Mug to cart").click()
    expect(page.locator("#cart-count")).to_have_text("1")
    page.goto("/cart/")
    watching(page)
    instance = Instance.objects.get(type_name="ShoppingCart", key="alice")
    lines = [{"sku": "MUG", "quantity": 1, "name": "Mug", "unit_price_cents": 1299}]
    lines.append({"sku": "TEE", "quantity": 3, "name": "Tee", "unit_price_cents": 2500})
    state_edit(type_name="ShoppingCart", key="alice", expected_version=instance.version, set_entries={"lines": lines})
    expect(page.get_by_role("rowheader", name="Tee")).to_be_visible(timeout=1000)
    expect(page.locator("#cart-count")).to_have_text("4", timeout=1000)
    expect(page.locator("#total")).to_have_text("$87.99", timeout=1000)
