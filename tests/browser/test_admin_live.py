"""The admin's live pages in headless Chromium: the instance page shows a key's change made elsewhere (a call, an
operator's edit) within 2 s without a reload, for a type without a shared handler too; the overview shows a new
waiting invocation within its refresh period, and pauses while its tab is hidden."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from django.contrib.auth.models import Permission, User
from playwright.sync_api import expect
from rest_framework.authtoken.models import Token

import objects
from objects.admin.instances import OVERVIEW_REFRESH_SECONDS
from objects.models import Instance
from objects.services import state_edit

pytestmark = [pytest.mark.browser, pytest.mark.workers]


def signed_in(new_page, username: str, *, superuser: bool = False):
    if superuser:
        User.objects.create_superuser(username, f"{username}@example.com", "pw-live")
    else:  # staff who may only view instances: what the instance page, and its watch, need
        user = User.objects.create_user(username, password="pw-live", is_staff=True)
        user.user_permissions.add(Permission.objects.get(codename="view_instance", content_type__app_label="objects"))
    page = new_page(width=1280, height=800)
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-live")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#user-tools")).to_contain_text(username)
    return page


def add_item(base: str, token: str, key: str, item: str) -> None:
    response = httpx.post(
        f"{base}/ingress/HistoryCart/{key}/add_item", json=item, headers={"Authorization": f"Token {token}"}, timeout=30
    )
    assert response.status_code == 200, response.text


def test_the_instance_page_follows_its_key_live(live_web, new_page):
    shopper = Token.objects.create(user=User.objects.create_user("shopper")).key
    add_item(live_web.url, shopper, "live-1", "first-item")
    instance = Instance.objects.get(type_name="HistoryCart", key="live-1")  # a type without a shared handler
    page = signed_in(new_page, "viewer")
    page.goto(f"/admin/objects/instance/{instance.pk}/change/")
    expect(page.locator("#vo-live")).to_have_text("Following this key live.")
    page.evaluate("window.notReloaded = true")

    started = time.monotonic()
    add_item(live_web.url, shopper, "live-1", "second-item")
    expect(page.locator("#state-entries")).to_contain_text("second-item", timeout=2_000)
    assert time.monotonic() - started < 2.5
    expect(page.locator("#state-history h2")).to_contain_text("2 versions")  # the history panel too
    expect(page.locator("#recent-invocations tbody tr")).to_have_count(2)
    expect(page.locator("#vo-live")).to_have_text(re.compile(r"^Updated live at \d\d:\d\d:\d\d UTC \(version 2\)\.$"))

    operator = signed_in(new_page, "operator", superuser=True)  # an operator's edit in another browser
    operator.goto(f"/admin/objects/instance/{instance.pk}/state/edit/?name=items")
    operator.get_by_label("Value (JSON):").fill('["edited-by-operator"]')
    operator.get_by_role("button", name="Save").click()
    expect(operator.locator(".messagelist")).to_contain_text("version 3")
    expect(page.locator("#state-entries")).to_contain_text("edited-by-operator", timeout=2_000)
    expect(page.locator("#state-entries")).not_to_contain_text("second-item")
    assert page.evaluate("window.notReloaded") is True  # updated in place, never reloaded


def test_the_instance_page_without_javascript_is_as_loaded(live_web, new_page):
    state_edit(type_name="HistoryCart", key="live-2", expected_version=None, set_entries={"items": ["a"]})
    instance = Instance.objects.get(type_name="HistoryCart", key="live-2")
    User.objects.create_superuser("operator", "operator@example.com", "pw-live")
    page = new_page(javascript=False, width=1280)
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill("pw-live")
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/admin/objects/instance/{instance.pk}/change/")
    live = page.locator("#vo-live")
    expect(live).to_have_count(1)  # the watch URL is on the page; without JavaScript nothing follows it
    assert live.get_attribute("data-watch") == "/ingress/HistoryCart/live-2/watch"
    expect(live).to_be_hidden()
    expect(page.locator("#state-entries")).to_contain_text('"a"')


def waiting(page) -> int:
    return int(page.locator('#overview tr[data-type="Recorder"] td.waiting').inner_text())


def test_the_overview_shows_a_new_waiting_invocation_within_its_refresh_period(live_web, live, new_page):
    live.stop()  # no worker runs it: a sent invocation waits (they start again below, and drain it)
    try:
        page = signed_in(new_page, "operator", superuser=True)
        page.goto("/admin/objects/instance/overview/")
        expect(page.locator("#vo-overview-live")).to_be_visible()
        before, as_of = waiting(page), page.locator(".vo-as-of time").inner_text()
        page.evaluate("window.notReloaded = true")
        objects.send("Recorder", "ov", "append", {"value": 1})
        started = time.monotonic()
        cell = page.locator('#overview tr[data-type="Recorder"] td.waiting')
        expect(cell).to_have_text(str(before + 1), timeout=(OVERVIEW_REFRESH_SECONDS + 2) * 1000)
        assert time.monotonic() - started < OVERVIEW_REFRESH_SECONDS + 2
        assert page.locator(".vo-as-of time").inner_text() != as_of
        assert page.evaluate("window.notReloaded") is True

        # A hidden tab reads nothing; shown again, it reads the counts at once.
        page.evaluate("""() => {
            window.hiddenNow = true;
            Object.defineProperty(document, "hidden", { configurable: true, get: () => window.hiddenNow });
            document.dispatchEvent(new Event("visibilitychange"));
        }""")
        hidden_at = page.locator(".vo-as-of time").inner_text()
        objects.send("Recorder", "ov", "append", {"value": 2})
        time.sleep(OVERVIEW_REFRESH_SECONDS + 1.5)
        assert page.locator(".vo-as-of time").inner_text() == hidden_at and waiting(page) == before + 1
        page.evaluate('() => { window.hiddenNow = false; document.dispatchEvent(new Event("visibilitychange")); }')
        expect(cell).to_have_text(str(before + 2), timeout=1_500)
        expect(page.locator(".vo-as-of time")).not_to_have_text(hidden_at)
    finally:
        live.start()
