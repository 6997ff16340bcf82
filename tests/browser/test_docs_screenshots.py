"""Screenshots for docs/operations.md (the admin overview, instance list, one instance and the invocation list)
and docs/shop.md (a cart page following another tab's change, the 404 page on a phone, the payment provider's
page and the page of a checkout waiting for it).

They are taken from a live server with the demo data and a few shop calls, so the docs show the pages as they
are; each page is checked for what the docs say it shows before it is captured, at 1280x800 or 390x844 (the
viewport, not the whole page). They go to var/screenshots/ on every test run (so a test run leaves the work tree
clean) and to docs/images/ with `make screenshots` (OBJECTS_DOCS_SCREENSHOTS=1).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

import objects
from catalog.demo import ADMIN_PASSWORD, ADMIN_USERNAME, DEMO_PASSWORD
from objects import services
from objects.models import Instance
from tests.browser.test_payment_confirmation import confirming_web, open_page  # noqa: F401 - its fixtures

pytestmark = [pytest.mark.browser, pytest.mark.workers]
DEMO_TYPES = ("Counter", "Inventory", "Order", "ShoppingCart", "Wallet")
ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images" if os.environ.get("OBJECTS_DOCS_SCREENSHOTS") == "1" else ROOT / "var" / "screenshots"


@pytest.fixture
def demo(live_web):
    call_command("load_demo", stdout=io.StringIO())
    objects.call("ShoppingCart", "alice", "add_item", {"sku": "MUG-CLASSIC", "quantity": 2})
    objects.call("ShoppingCart", "alice", "add_item", {"sku": "NOTE-A5", "quantity": 1})
    objects.call("ShoppingCart", "alice", "checkout")
    objects.call("ShoppingCart", "bob", "add_item", {"sku": "STICKERS", "quantity": 3})
    objects.call("Counter", "acme/visits", "increment", {"by": 41})
    with pytest.raises(objects.TerminalError):
        objects.call("ShoppingCart", "bob", "update_quantity", {"sku": "PEN-BRASS", "quantity": 1})


def capture(page, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / f"{name}.png"))


def sign_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=f"Sign out {username}")).to_be_visible()


def test_admin_pages_for_the_operations_guide(demo, new_page):
    page = new_page(width=1280, height=800)
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(ADMIN_USERNAME)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()

    counter = Instance.objects.get(type_name="Counter", key="acme/visits")
    services.instance_pause(instance=counter, reason="Checking a double count")
    objects.send("Counter", "acme/visits", "increment", {"by": 1})  # held back by the pause

    page.goto("/admin/objects/instance/overview/")
    expect(page.locator("tr[data-type=ShoppingCart] td.scheduled")).to_have_text("2")  # the carts' idle expiry
    expect(page.locator("tr[data-type=Counter] td.paused")).to_contain_text("1 (holding 1)")
    # The test server also registers the test suite's own object types; the picture shows the demo's.
    page.evaluate(
        "demo => document.querySelectorAll('tr[data-type]').forEach(row => {"
        " if (!demo.includes(row.dataset.type)) row.remove(); })",
        list(DEMO_TYPES),
    )
    capture(page, "admin-overview")

    page.goto("/admin/objects/instance/")
    expect(page.locator("#result_list")).to_contain_text("acme/visits")
    capture(page, "admin-instances")

    cart = Instance.objects.get(type_name="ShoppingCart", key="alice")
    page.goto(f"/admin/objects/instance/{cart.pk}/change/")
    expect(page.locator("#content")).to_contain_text("checked_out")
    expect(page.locator("#state-history")).to_contain_text("→")  # a version's difference from the one before
    page.locator("#state-entries").evaluate("panel => panel.scrollIntoView()")  # state, inbox, timers
    capture(page, "admin-instance")
    page.locator("#state-history").evaluate("panel => panel.scrollIntoView()")
    capture(page, "admin-instance-history")

    page.goto("/admin/objects/invocation/")
    expect(page.locator("#result_list")).to_contain_text("checkout")
    expect(page.locator("#result_list")).to_contain_text("refused (")  # the handler's 4xx, not a fault
    expect(page.locator("#result_list")).to_contain_text("blocked: key paused")
    capture(page, "admin-invocations")

    for name in ("overview", "instances", "instance", "instance-history", "invocations"):
        assert (IMAGES / f"admin-{name}.png").stat().st_size > 10_000


def test_shop_pages_for_the_shop_guide(demo, new_page):
    page = new_page(width=1280, height=800)
    sign_in(page, "bob")
    page.goto("/cart/")
    expect(page.get_by_role("button", name="Check out and pay $14.97")).to_be_visible()
    page.wait_for_timeout(500)  # the cart's event stream is open
    objects.call("ShoppingCart", "bob", "add_item", {"sku": "NOTE-A5", "quantity": 1})  # another tab
    expect(page.get_by_role("alert")).to_contain_text("Your cart changed elsewhere: the total is now $29.96")
    expect(page.get_by_role("button", name="Confirm and pay $29.96")).to_be_enabled()
    capture(page, "shop-live-cart")

    phone = new_page(width=390, height=844)
    assert phone.goto("/no-such-page/").status == 404
    expect(phone.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(phone.get_by_role("navigation", name="Main")).to_be_visible()
    capture(phone, "shop-404")

    for name in ("shop-live-cart", "shop-404"):
        assert (IMAGES / f"{name}.png").stat().st_size > 10_000


def test_payment_pages_for_the_shop_guide(confirming_web, live, redis_client, open_page):  # noqa: F811
    """Last in this module: its workers confirm payments until the module ends."""
    for key in redis_client.scan_iter("shop:payment*"):
        redis_client.delete(key)  # the demo provider's payments of earlier tests
    call_command("load_demo", stdout=io.StringIO())
    objects.call("ShoppingCart", "alice", "add_item", {"sku": "MUG-CLASSIC", "quantity": 2})
    objects.call("ShoppingCart", "alice", "add_item", {"sku": "NOTE-A5", "quantity": 1})
    page = open_page(width=1280, height=800)
    sign_in(page, "alice")
    page.goto("/cart/")
    page.get_by_role("button", name="Check out and pay $40.97").click()
    expect(page.get_by_role("heading", name="Waiting for your payment confirmation")).to_be_visible()
    capture(page, "shop-payment-waiting")

    page.get_by_role("link", name="confirm or decline the payment at the payment provider").click()
    expect(page.get_by_role("heading", name="Payment of $40.97")).to_be_visible()
    expect(page.locator("section.payment")).to_contain_text("2 × Classic mug")
    capture(page, "shop-payment-provider")
    page.get_by_role("button", name="Confirm payment").click()  # nothing left waiting
    expect(page.locator("#order-status")).to_have_text("paid", timeout=20_000)

    for name in ("shop-payment-waiting", "shop-payment-provider"):
        assert (IMAGES / f"{name}.png").stat().st_size > 10_000
