"""The admin's instance page and invocation list fit a 1280×800 window: no sideways scrolling, the history's
"by" and restore columns and the invocation status badges on screen."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

from objects.models import Instance, Invocation, Status
from objects.services import state_edit

pytestmark = [pytest.mark.browser, pytest.mark.workers]
WIDTH = 1280


@pytest.fixture
def operator_page(live_web, new_page):
    User.objects.create_superuser("operator", "operator@example.com", "pw-layout")
    page = new_page(width=WIDTH, height=800)
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill("pw-layout")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("link", name="Log out").or_(page.get_by_role("button", name="Log out"))).to_be_visible()
    return page


def wide_instance() -> Instance:
    """A cart-like key with 30 versions of long values: a long unbroken string and lines of dicts."""
    version = None
    for n in range(30):
        lines = [{"sku": f"SKU-{i}", "name": "Poster " * 8, "quantity": n + i} for i in range(4)]
        version = state_edit(
            type_name="Recorder",
            key="wide-key-" + "x" * 60,
            expected_version=version,
            set_entries={"lines": lines, "note": "n" * 400, "status": "open"},
        )
    return Instance.objects.get(type_name="Recorder", key__startswith="wide-key-")


def right_edge(page, selector: str) -> float:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box["x"] + box["width"]


def test_the_instance_page_fits_1280_with_history_by_and_restore_on_screen(operator_page):
    page = operator_page
    instance = wide_instance()
    page.goto(f"/admin/objects/instance/{instance.pk}/change/")
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    assert right_edge(page, "#state-history th:text('by')") <= WIDTH
    assert right_edge(page, "#state-history input[type=submit]") <= WIDTH
    expect(page.locator("#state-history tbody.vo-version")).to_have_count(20)
    page.locator(".vo-pages a", has_text="2").click()
    expect(page.locator("#state-history tbody.vo-version")).to_have_count(10)  # the next page, once it is loaded


def test_the_invocation_list_shows_status_badges_at_1280(operator_page):
    page = operator_page
    instance = wide_instance()
    for status in (Status.PENDING, Status.FAILED, Status.SUCCEEDED):
        Invocation.objects.create(
            instance=instance,
            type_name=instance.type_name,
            key=instance.key,
            handler="append_with_a_long_handler_name",
            kind="exclusive",
            input={"value": 1},
            status=status,
        )
    page.goto("/admin/objects/invocation/")
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    badges = page.locator("#result_list .vo-badge")
    expect(badges).to_have_count(3)
    for index in range(3):
        box = badges.nth(index).bounding_box()
        assert box is not None and box["x"] + box["width"] <= WIDTH
        colour = badges.nth(index).evaluate("e => getComputedStyle(e).backgroundColor")
        assert colour not in ("rgba(0, 0, 0, 0)", "transparent"), colour  # the app's stylesheet is on the page
