"""Checkout that waits for a payment confirmation (SHOP_PAYMENT_CONFIRMATION=1), in headless Chromium: the order
waits on an awakeable that the demo payment provider's page resolves (the order is placed and paid once) or
rejects (nothing is charged or reserved, the cart stays).

The checkout handler reads the setting in the workers, so this module restarts the session's workers with it on
(and again without it at the end) and starts a web server of its own with it on."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

import objects
from tests.integration.shop_fixtures import balance, cart, fund, make_product, stock
from tests.support import WebServer, _test_database_url

pytestmark = [pytest.mark.browser, pytest.mark.workers]
PASSWORD = "pw-for-tests-123"
FLAG = "SHOP_PAYMENT_CONFIRMATION"


@pytest.fixture(scope="module")
def confirming_web(workers, django_db_setup, django_db_blocker) -> Iterator[WebServer]:
    """The session's workers restarted with payment confirmation on, and a web server with it on."""
    workers.env[FLAG] = "1"
    try:
        for index in range(workers.count):
            workers.restart(index)
        with django_db_blocker.unblock():
            url = _test_database_url()
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(FLAG, "1")
            server = WebServer(url)
            server.start()
        yield server
        server.stop()
    finally:
        workers.env.pop(FLAG, None)
        for index in range(workers.count):
            workers.restart(index)


@pytest.fixture
def shop(confirming_web, live, redis_client):
    for key in redis_client.scan_iter("shop:payment*"):
        redis_client.delete(key)  # the demo provider's payments of earlier tests
    make_product("MUG", name="Mug", price=1299, stock=10)
    get_user_model().objects.create_user("alice", password=PASSWORD)
    fund("alice", 5_000)


@pytest.fixture
def open_page(browser, confirming_web):
    contexts = []

    def opened(*, javascript: bool = True, width: int = 1100, height: int = 800):
        context = browser.new_context(
            base_url=confirming_web.url, java_script_enabled=javascript, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield opened
    for context in contexts:
        context.close()


def sign_in_and_check_out_a_mug(page):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out alice")).to_be_visible()
    objects.call("ShoppingCart", "alice", "add_item", {"sku": "MUG", "quantity": 1})
    page.goto("/cart/")
    page.get_by_role("button", name="Check out and pay $12.99").click()
    expect(page.get_by_role("heading", name="Waiting for your payment confirmation")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(
        "Your order of $12.99 is waiting for the payment provider to confirm the payment. Nothing has been charged"
    )


def test_a_confirmed_payment_places_the_order_and_charges_the_wallet_once(shop, open_page):
    page = open_page(javascript=True, width=1280, height=800)
    sign_in_and_check_out_a_mug(page)
    waiting_url = page.url

    other = open_page(javascript=True)  # meanwhile the shop's pages answer (shared reads), nothing is charged
    other.goto(waiting_url.split("/pending/")[0] + "/accounts/login/")
    other.get_by_label("Username").fill("alice")
    other.get_by_label("Password").fill(PASSWORD)
    other.get_by_role("button", name="Sign in").click()
    other.goto("/cart/")
    expect(other.locator("tr[data-sku=MUG]")).to_be_visible()
    other.goto("/wallet/")
    expect(other.locator("#balance")).to_have_text("$50.00")
    assert balance("alice") == 5_000 and stock("MUG") == {"available": 10, "reserved": 0}
    other.goto("/")  # a change waits behind the checkout, and says why
    other.get_by_role("button", name="Add Mug to cart").click()
    expect(other.get_by_role("status")).to_have_text(
        "Your order is waiting for its payment confirmation; your change is kept and will be made as soon as the "
        "payment is answered.",
        timeout=15_000,
    )

    page.get_by_role("link", name="confirm or decline the payment at the payment provider").click()
    expect(page.get_by_role("heading", name="Payment of $12.99")).to_be_visible()
    expect(page.locator("section.payment")).to_contain_text("1 × Mug")
    page.get_by_role("button", name="Confirm payment").click()

    expect(page.locator("#order-status")).to_have_text("paid", timeout=20_000)
    expect(page.get_by_role("status")).to_contain_text("Thank you! Order placed and paid ($12.99).")
    order_id = page.url.rstrip("/").rsplit("/", 1)[1]
    assert balance("alice") == 5_000 - 1299
    assert stock("MUG") == {"available": 9, "reserved": 0}
    payments = [e for e in objects.call("Wallet", "alice", "history")["entries"] if e["kind"] == "withdraw"]
    assert [e["tx_id"] for e in payments] == [f"order-{order_id}"]  # charged once
    expect(other.get_by_role("status")).to_have_text("Added Mug to your cart.", timeout=15_000)
    assert [(line["sku"], line["quantity"]) for line in cart("alice")["lines"]] == [("MUG", 1)]  # a fresh cart
    assert objects.call("ShoppingCart", "alice", "orders") == [order_id]
    history = objects.call("Order", order_id, "status")["history"]
    assert {step["by"] for step in history} == {"alice"}

    page.goto("/payment-provider/")  # answered: nothing left to confirm
    expect(page.locator("#no-payments")).to_be_visible()


def test_a_declined_payment_fails_the_order_and_charges_or_reserves_nothing(shop, open_page):
    page = open_page(javascript=False, width=390, height=844)
    sign_in_and_check_out_a_mug(page)
    page.get_by_role("link", name="confirm or decline the payment at the payment provider").click()
    page.get_by_role("button", name="Decline").click()

    alert = page.get_by_role("alert")
    expect(alert).to_have_text(
        "Checkout failed: The payment provider declined the payment. Your payment of $12.99 was not made: "
        "nothing was charged and your cart is as it was.",
        timeout=20_000,
    )
    assert not re.search(r"ord_|sign_1|\d{4,}", alert.inner_text())  # no ids, no cents
    expect(page.locator("tr[data-sku=MUG]")).to_be_visible()
    assert balance("alice") == 5_000
    assert stock("MUG") == {"available": 10, "reserved": 0}
    assert cart("alice")["status"] == "open" and cart("alice")["item_count"] == 1
    page.goto("/orders/")
    expect(page.get_by_text("No orders yet.")).to_be_visible()
