"""The shop as shoppers expect it, in headless Chromium at a desktop and a phone size, with and without
JavaScript: stock shown and enforced."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

import objects
from tests.browser.shop_pages import PASSWORD, no_sideways_scroll, sign_in
from tests.integration.shop_fixtures import balance, fund, key_held, make_product

pytestmark = [pytest.mark.browser, pytest.mark.workers]
DESKTOP_JS = pytest.param(1280, 800, True, id="1280-js")
PHONE_NO_JS = pytest.param(390, 844, False, id="390-nojs")
WATCH = re.compile(r"/watch(\?.*)?$")  # a cart's live event stream


@pytest.fixture
def shop(live_web):
    make_product("MUG", name="Mug", price=1299, stock=10)
    make_product("TEE", name="Tee", price=2500, stock=3)
    make_product("CAP", name="Cap", price=900, stock=0)
    get_user_model().objects.create_user("alice", password=PASSWORD)


@pytest.mark.parametrize(("width", "height", "javascript"), [DESKTOP_JS, PHONE_NO_JS])
def test_stock_is_shown_enforced_and_warned_about(shop, new_page, width, height, javascript):
    page = new_page(javascript=javascript, width=width, height=height)
    sign_in(page)
    page.goto("/")
    tee = page.locator("li.product[data-sku=TEE]")
    expect(tee.locator(".stock")).to_have_text("Only 3 left")
    expect(tee.get_by_label("Quantity")).to_have_attribute("max", "3")
    cap = page.locator("li.product[data-sku=CAP]")
    expect(cap.locator(".stock")).to_have_text("Out of stock")
    expect(cap.get_by_role("button", name="Add Cap to cart")).to_be_disabled()
    no_sideways_scroll(page)
    tee.get_by_label("Quantity").fill("2")
    tee.get_by_role("button", name="Add Tee to cart").click()
    expect(page.get_by_role("status")).to_contain_text("Added Tee to your cart.")
    page.locator("li.product[data-sku=TEE]").get_by_label("Quantity").fill("2")
    page.locator("li.product[data-sku=TEE]").get_by_role("button", name="Add Tee to cart").click()
    expect(page.get_by_role("alert")).to_have_text("Only 3 Tee left; your cart already has 2.")

    objects.call("Inventory", "TEE", "reserve", {"order_id": "someone-else", "quantity": 2})
    page.goto("/cart/")
    warnings = page.locator("#stock-warnings")
    expect(warnings).to_have_text("Only 1 Tee left; lower the quantity to check out.")
    no_sideways_scroll(page)
    quantity = page.get_by_label("Quantity of Tee")
    quantity.fill("1")
    quantity.press("Enter")
    expect(page.locator("#total")).to_have_text("$25.00")
    expect(warnings).to_have_text("")


@pytest.mark.parametrize(("width", "height", "javascript"), [DESKTOP_JS, PHONE_NO_JS])
def test_checkout_asks_to_confirm_a_total_that_changed_in_another_tab(shop, new_page, width, height, javascript):
    """The click lands before the page learns of the change: without JavaScript, or with it before the live update
    arrives (here its event stream is held back). Checkout sends the total shown; the server refuses another."""
    fund("alice", 10_000)
    page = new_page(javascript=javascript, width=width, height=height)
    if javascript:
        page.route(WATCH, lambda route: route.abort())
    sign_in(page)
    page.goto("/")
    page.locator("li.product[data-sku=MUG]").get_by_role("button", name="Add Mug to cart").click()
    expect(page.get_by_role("status")).to_contain_text("Added Mug to your cart.")
    page.goto("/cart/")
    quantity = page.get_by_label("Quantity of Mug")
    quantity.fill("2")
    quantity.press("Enter")  # in place with JavaScript: the total checkout expects follows
    expect(page.locator("#total")).to_have_text("$25.98")
    objects.call("ShoppingCart", "alice", "add_item", {"sku": "TEE", "quantity": 1})  # another tab
    page.get_by_role("button", name="Check out and pay $25.98").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Your cart changed since you saw it: the total is now $50.98, not $25.98. Nothing was charged. "
        "Check it and confirm to pay."
    )
    assert balance("alice") == 10_000
    expect(page.locator("tr[data-sku=TEE]")).to_be_visible()
    page.get_by_role("button", name="Confirm and pay $50.98").click()
    expect(page.locator("#order-total")).to_have_text("$50.98")
    assert balance("alice") == 10_000 - 5098


def test_a_live_update_of_the_total_asks_to_confirm_it_and_holds_the_button_a_moment(shop, new_page):
    """With JavaScript the open cart follows another tab's change: the page says the total changed, the checkout
    button asks to confirm the new amount and takes no click at once (one aimed at the old amount is not
    taken as a confirmation), and a confirmed checkout charges exactly the total shown."""
    fund("alice", 10_000)
    page = new_page(javascript=True, width=1280, height=800)
    sign_in(page)
    objects.call("ShoppingCart", "alice", "add_item", {"sku": "MUG", "quantity": 2})
    page.goto("/cart/")
    expect(page.get_by_role("button", name="Check out and pay $25.98")).to_be_enabled()
    page.wait_for_timeout(300)  # the event stream is open
    page.evaluate(
        """() => { window.heldWhenSaid = null; new MutationObserver(() => {
            if (window.heldWhenSaid === null && document.querySelector('#messages [role=alert]'))
                window.heldWhenSaid = document.querySelector('.checkout button[type=submit]').disabled;
        }).observe(document.getElementById('messages'), {childList: true, subtree: true}); }"""
    )
    objects.call("ShoppingCart", "alice", "add_item", {"sku": "TEE", "quantity": 1})  # another tab
    expect(page.get_by_role("alert")).to_have_text(
        "Your cart changed elsewhere: the total is now $50.98, not $25.98. Check it, then confirm to pay.",
        timeout=2000,
    )
    expect(page.locator("tr[data-sku=TEE]")).to_be_visible()
    assert page.evaluate("window.heldWhenSaid") is True
    assert page.locator("input[name=expected_total]").input_value() == "5098"
    assert balance("alice") == 10_000
    page.get_by_role("button", name="Confirm and pay $50.98").click()  # waits for the hold to end
    expect(page.locator("#order-total")).to_have_text("$50.98")
    assert balance("alice") == 10_000 - 5098


def test_a_slow_change_says_still_working_and_the_page_follows_it(shop, new_page):
    """The page waits 5 s (SHOP_CALL_TIMEOUT) for a call, then says "still working" and completes later."""
    page = new_page(javascript=True, width=1280, height=800)
    sign_in(page)
    objects.call("ShoppingCart", "alice", "add_item", {"sku": "MUG", "quantity": 1})
    page.goto("/cart/")
    with key_held("ShoppingCart", "alice"):
        quantity = page.get_by_label("Quantity of Mug")
        quantity.fill("2")
        quantity.press("Enter")
        expect(page.get_by_role("status")).to_contain_text("Still working on it", timeout=10_000)
    expect(page.get_by_role("status")).to_have_text("Updated Mug.", timeout=10_000)
    expect(page.locator("#total")).to_have_text("$25.98")


def test_a_slow_checkout_without_javascript_shows_a_page_that_completes(shop, new_page):
    fund("alice", 10_000)
    page = new_page(javascript=False, width=390, height=844)
    sign_in(page)
    objects.call("ShoppingCart", "alice", "add_item", {"sku": "MUG", "quantity": 1})
    page.goto("/cart/")
    with key_held("Inventory", "MUG"):  # checkout waits for the stock's lock
        page.get_by_role("button", name="Check out and pay $12.99").click(no_wait_after=True)
        expect(page.get_by_role("heading", name="One moment")).to_be_visible(timeout=10_000)
        expect(page.locator("#pending-message")).to_contain_text("Still working on it")
    expect(page.locator("#order-total")).to_have_text("$12.99", timeout=10_000)
