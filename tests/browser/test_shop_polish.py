"""The shop's finish, in headless Chromium at 1280x800 and 390x844: styled error pages that keep the navigation, a
favicon, a focus ring of 3:1 or more, focus kept after an in-place Add or Remove, the sign-in page's cart count,
and a 36-character order id that wraps on a phone."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from django.views.defaults import server_error
from playwright.sync_api import expect

from .shop_pages import no_sideways_scroll, order_for, sign_in, stocked_shop

pytestmark = [pytest.mark.browser, pytest.mark.workers]
SIZES = [pytest.param(1280, 800, id="1280"), pytest.param(390, 844, id="390")]


@pytest.fixture
def shop(live_web):
    stocked_shop()


def contrast(rgb: str, background: tuple[int, int, int] = (255, 255, 255)) -> float:
    def luminance(channels) -> float:
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (x / 255 for x in channels)]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    ring = [int(part) for part in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    high, low = sorted((luminance(ring), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_a_missing_page_is_the_shops_own_with_its_navigation(shop, new_page, width, height):
    page = new_page(width=width, height=height)
    answer = page.goto("/no-such-page/")
    assert answer.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Catalog")).to_be_visible()
    expect(nav.get_by_role("link", name="Sign in")).to_be_visible()
    no_sideways_scroll(page)


def test_the_server_error_page_keeps_the_navigation_without_a_request_context(shop):
    broken = RequestFactory().get("/")  # no session, no user: the page must not need them
    answer = server_error(broken)
    text = answer.content.decode()
    assert answer.status_code == 500
    assert "Something went wrong" in text and 'aria-label="Main"' in text and 'href="/cart/"' in text


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_favicon_is_served_and_no_page_asks_for_a_missing_file(shop, new_page, width, height):
    page = new_page(width=width, height=height)
    missing = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto("/")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(icon).status == 200
    assert page.request.get("/favicon.ico").status == 200  # redirected to the same icon
    sign_in(page)
    for path in ("/", "/cart/", "/orders/", "/wallet/"):
        page.goto(path)
    assert missing == []


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_focus_ring_has_three_to_one_contrast(shop, new_page, width, height):
    page = new_page(width=width, height=height)
    page.goto("/")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Tab")
    style = page.evaluate("getComputedStyle(document.activeElement)")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineColor")
    assert style is not None and contrast(outline) >= 3, outline
    assert contrast(outline, (247, 248, 250)) >= 3  # the page's background


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_focus_stays_on_the_control_after_an_in_place_add_or_remove(shop, new_page, width, height):
    page = new_page(width=width, height=height)
    page.goto("/")
    for sku, name in (("TEE", "Tee"), ("MUG", "Mug")):
        add = page.locator(f"li.product[data-sku={sku}]").get_by_role("button", name=f"Add {name} to cart")
        add.focus()
        page.keyboard.press("Enter")
        expect(page.get_by_role("status")).to_contain_text(f"Added {name} to your cart.")
        expect(add).to_be_focused()
    page.goto("/cart/")
    first = page.get_by_role("button", name="Remove Tee")
    first.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Removed Tee.")
    expect(page.get_by_role("button", name="Remove Mug")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Removed Mug.")
    expect(page.get_by_text("Your cart is empty.")).to_be_focused()


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_sign_in_page_counts_the_anonymous_carts_items(shop, new_page, width, height):
    page = new_page(javascript=False, width=width, height=height)
    page.goto("/")
    page.locator("li.product[data-sku=MUG]").get_by_label("Quantity").fill("3")
    page.locator("li.product[data-sku=MUG]").get_by_role("button", name="Add Mug to cart").click()
    page.goto("/accounts/login/")
    expect(page.locator("#cart-count")).to_have_text("3")


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_a_long_order_id_wraps_on_a_phone(shop, new_page, width, height):
    order_id = order_for("alice")
    assert len(order_id) == 36
    page = new_page(width=width, height=height)
    sign_in(page)
    page.goto("/orders/")
    expect(page.get_by_role("link", name=order_id)).to_be_visible()
    no_sideways_scroll(page)
    page.goto(f"/orders/{order_id}/")
    expect(page.get_by_role("heading", name=f"Order {order_id}")).to_be_visible()
    no_sideways_scroll(page)
