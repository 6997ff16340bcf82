"""The shop in headless Chromium: cart, checkout, refusals, separate shoppers, sign-in merge, admin clear."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

import objects
from tests.integration.shop_fixtures import balance, cart, fund, make_product, stock

pytestmark = [pytest.mark.browser, pytest.mark.workers]
PASSWORD = "pw-for-tests-123"
DOCS_IMAGE = Path(__file__).resolve().parents[2] / "docs" / "images" / "cart.png"


@pytest.fixture
def shop(live_web):
    make_product("MUG", name="Mug", price=1299, stock=10)
    make_product("TEE", name="Tee", price=2500, stock=5)
    make_product("POSTER", name="Poster", price=3499, stock=1)
    User = get_user_model()
    for name in ("alice", "bob"):
        User.objects.create_user(name, password=PASSWORD)
    User.objects.create_superuser("boss", password=PASSWORD)


def sign_in(page, username):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=f"Sign out {username}")).to_be_visible()


def add_from_catalog(page, name, quantity=1):
    page.goto("/")
    page.get_by_label("Quantity").and_(page.locator(f"#qty-{name.upper()}")).fill(str(quantity))
    page.get_by_role("button", name=f"Add {name} to cart").click()
    expect(page.get_by_role("status")).to_contain_text(f"Added {name} to your cart.")


def test_shopper_adds_changes_removes_and_checks_out(shop, new_page, artifacts):
    fund("alice", 10_000)
    page = new_page()
    sign_in(page, "alice")
    add_from_catalog(page, "Mug")
    add_from_catalog(page, "Tee", 2)
    expect(page.locator("#cart-count")).to_have_text("3")
    page.goto("/cart/")
    mug = page.locator("tr[data-sku=MUG]")
    mug.get_by_label("Quantity of Mug").fill("3")
    mug.get_by_role("button", name="Update").click()
    expect(mug.locator(".line-total")).to_have_text("$38.97")  # updated in place by the page script
    expect(page.locator("#total")).to_have_text("$88.97")
    page.screenshot(path=str(artifacts / "cart.png"), full_page=True)
    if os.environ.get("OBJECTS_DOCS_SCREENSHOTS") == "1":  # `make screenshots`: the README's picture
        shutil.copyfile(artifacts / "cart.png", DOCS_IMAGE)
    page.get_by_role("button", name="Remove Tee").click()
    expect(page.locator("tr[data-sku=TEE]")).to_have_count(0)
    expect(page.locator("#total")).to_have_text("$38.97")
    assert [(line["sku"], line["quantity"]) for line in cart("alice")["lines"]] == [("MUG", 3)]
    page.reload()
    expect(page.locator("#total")).to_have_text("$38.97")
    page.get_by_role("button", name="Check out and pay $38.97").click()
    expect(page).to_have_url(re.compile(r"/orders/ord_[0-9a-f]{32}/$"))
    expect(page.locator("#order-status")).to_have_text("paid")
    expect(page.locator("#order-total")).to_have_text("$38.97")
    expect(page.locator("#cart-count")).to_have_text("0")
    page.get_by_role("link", name="Wallet").click()
    expect(page.locator("#balance")).to_have_text("$61.03")
    assert balance("alice") == 6103 and stock("MUG")["available"] == 7
    page.get_by_role("link", name="Orders").click()
    expect(page.get_by_role("table")).to_contain_text("paid")


def test_checkout_with_insufficient_funds_says_so_and_charges_nothing(shop, new_page):
    fund("bob", 1000)
    page = new_page()
    sign_in(page, "bob")
    add_from_catalog(page, "Mug")
    page.goto("/cart/")
    page.get_by_role("button", name="Check out and pay").click()
    expect(page.get_by_role("alert")).to_contain_text("Your wallet has $10.00; this order is $12.99. Top up $2.99")
    expect(page.locator("tr[data-sku=MUG]")).to_have_count(1)
    assert balance("bob") == 1000 and stock("MUG") == {"available": 10, "reserved": 0}


def test_checkout_with_insufficient_stock_names_the_item(shop, new_page):
    fund("bob", 100_000)
    page = new_page()
    sign_in(page, "bob")
    add_from_catalog(page, "Mug")
    add_from_catalog(page, "Poster")
    objects.call("Inventory", "POSTER", "reserve", {"order_id": "someone-else", "quantity": 1})  # sold meanwhile
    page.goto("/cart/")
    page.get_by_role("button", name="Check out and pay").click()
    expect(page.get_by_role("alert")).to_contain_text("Poster is out of stock now")
    assert balance("bob") == 100_000
    assert stock("MUG") == {"available": 10, "reserved": 0} and stock("POSTER") == {"available": 0, "reserved": 1}


def test_two_shoppers_in_two_browsers_keep_separate_carts(shop, new_page):
    alice, bob = new_page(), new_page()
    sign_in(alice, "alice")
    sign_in(bob, "bob")
    add_from_catalog(alice, "Mug", 2)
    add_from_catalog(bob, "Tee")
    alice.goto("/cart/")
    bob.goto("/cart/")
    expect(alice.locator("tr[data-sku]")).to_have_count(1)
    expect(alice.locator("tr[data-sku=MUG]")).to_be_visible()
    expect(bob.locator("tr[data-sku]")).to_have_count(1)
    expect(bob.locator("tr[data-sku=TEE]")).to_be_visible()


def test_an_anonymous_cart_is_merged_at_sign_in(shop, new_page):
    objects.call("ShoppingCart", "alice", "add_item", {"sku": "TEE", "quantity": 1})
    page = new_page()
    add_from_catalog(page, "Mug", 2)
    page.goto("/cart/")
    page.get_by_role("link", name="Sign in to check out").click()
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"^[^?]*/cart/$"))
    expect(page.locator("tr[data-sku=MUG] input[name=quantity]")).to_have_value("2")
    expect(page.locator("tr[data-sku=TEE]")).to_be_visible()
    expect(page.locator("#cart-count")).to_have_text("3")


def test_the_cart_works_without_javascript_by_keyboard_on_a_narrow_screen(shop, new_page):
    page = new_page(javascript=False, width=360, height=740)
    sign_in(page, "alice")
    page.goto("/")
    page.locator("#qty-MUG").focus()
    page.keyboard.press("Enter")  # submits the add form (POST, redirect, GET)
    expect(page.get_by_role("status")).to_contain_text("Added Mug to your cart.")
    page.goto("/cart/")
    quantity = page.get_by_label("Quantity of Mug")
    quantity.fill("4")
    quantity.press("Enter")
    expect(page.locator("#total")).to_have_text("$51.96")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the cart page scrolls sideways by {overflow}px at 360px"


def test_staff_clears_a_shoppers_cart_in_the_admin_and_the_shop_shows_it_empty(shop, new_page):
    shopper = new_page()
    sign_in(shopper, "alice")
    add_from_catalog(shopper, "Mug", 2)
    admin = new_page()
    admin.goto("/admin/login/?next=/admin/objects/instance/")
    admin.get_by_label("Username").fill("boss")
    admin.get_by_label("Password").fill(PASSWORD)
    admin.get_by_role("button", name="Log in").click()
    admin.goto("/admin/objects/instance/?type_name=ShoppingCart&q=alice")
    row = admin.locator("#result_list tbody tr", has_text="alice")
    expect(row).to_have_count(1)
    row.locator("input[name=_selected_action]").check()
    admin.locator("select[name=action]").select_option("clear_all_state")
    admin.get_by_role("button", name="Go").click()
    expect(admin.locator("#content")).to_contain_text("will go")
    admin.get_by_role("button", name="Yes, clear").click()
    expect(admin.locator(".messagelist")).to_be_visible()
    assert cart("alice")["lines"] == []
    shopper.goto("/cart/")
    expect(shopper.get_by_text("Your cart is empty.")).to_be_visible()
    expect(shopper.locator("#cart-count")).to_have_text("0")
