"""Every page of the shop passes axe-core's accessibility check with no serious or critical violation, at 1280x800
and 390x844. axe-core is the npm package pinned in tests/js (installed by `make test`'s setup step,
scripts/ensure_js.py) and injected into each page: nothing is downloaded while the tests run."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.integration.shop_fixtures import make_product

from .shop_pages import order_for, sign_in, stocked_shop

pytestmark = [pytest.mark.browser, pytest.mark.workers]
AXE = Path(__file__).resolve().parents[1] / "js" / "node_modules" / "axe-core" / "axe.min.js"
SIZES = [pytest.param(1280, 800, id="1280"), pytest.param(390, 844, id="390")]


def violations(page) -> list[str]:
    """The page's serious and critical violations, one line each (rule, impact, the elements)."""
    assert AXE.exists(), f"{AXE} is missing: run `make test` (scripts/ensure_js.py installs it)"
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert len(result["passes"]) > 10, "axe-core did not run its rules"
    found = result["violations"]
    return [
        f"{page.url}: {v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_every_shop_page_has_no_serious_accessibility_violation(live_web, new_page, width, height):
    stocked_shop()
    make_product("CAP", name="Cap", price=900, stock=0)  # a disabled Add button on the catalog
    order_id = order_for("alice")
    found: list[str] = []
    anonymous = new_page(width=width, height=height)
    for path in ("/", "/cart/", "/accounts/login/", "/no-such-page/"):
        anonymous.goto(path)
        found += violations(anonymous)
    page = new_page(width=width, height=height)
    sign_in(page)
    page.goto("/")
    page.locator("li.product[data-sku=MUG]").get_by_role("button", name="Add Mug to cart").click()
    expect(page.get_by_role("status")).to_contain_text("Added Mug to your cart.")
    found += violations(page)  # with a message shown
    for path in ("/cart/", "/orders/", f"/orders/{order_id}/", "/wallet/"):
        page.goto(path)
        found += violations(page)
    assert found == [], "\n".join(found)
