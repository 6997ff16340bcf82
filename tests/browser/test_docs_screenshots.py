"""Screenshots for docs/operations.md: the admin overview, instance list, one instance and the invocation list.

They are taken from a live server with the demo data and a few shop calls, so the docs show the admin as it
is; each page is checked for what the docs say it shows before it is captured. They go to var/screenshots/ on
every test run (so a test run leaves the work tree clean) and to docs/images/ with `make screenshots`
(OBJECTS_DOCS_SCREENSHOTS=1).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

import objects
from catalog.demo import ADMIN_PASSWORD, ADMIN_USERNAME
from objects.models import Instance

pytestmark = [pytest.mark.browser, pytest.mark.workers]
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
    page.screenshot(path=str(IMAGES / f"admin-{name}.png"), full_page=name == "instance")


def test_admin_pages_for_the_operations_guide(demo, new_page):
    page = new_page(width=1280, height=800)
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(ADMIN_USERNAME)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.goto("/admin/objects/instance/overview/")
    expect(page.locator("#content")).to_contain_text("ShoppingCart")
    capture(page, "overview")

    page.goto("/admin/objects/instance/")
    expect(page.locator("#result_list")).to_contain_text("acme/visits")
    capture(page, "instances")

    cart = Instance.objects.get(type_name="ShoppingCart", key="alice")
    page.goto(f"/admin/objects/instance/{cart.pk}/change/")
    expect(page.locator("#content")).to_contain_text("checked_out")
    capture(page, "instance")

    page.goto("/admin/objects/invocation/")
    expect(page.locator("#result_list")).to_contain_text("checkout")
    expect(page.locator("#result_list")).to_contain_text("refused (")  # the handler's 4xx, not a fault
    capture(page, "invocations")

    for name in ("overview", "instances", "instance", "invocations"):
        assert (IMAGES / f"admin-{name}.png").stat().st_size > 10_000
