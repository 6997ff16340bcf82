"""The API docs pages work offline: with every request to another origin refused, ReDoc and Swagger UI still
render the schema, and they ask for nothing from another origin."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.workers]


@pytest.fixture
def offline_page(live_web, new_page):
    User.objects.create_user("docs-reader", password="pw-docs", is_staff=True)
    page = new_page(width=1280, height=800)
    origin = urlsplit(live_web.url).netloc
    elsewhere: list[str] = []

    def route(route):
        if urlsplit(route.request.url).netloc in (origin, "") or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.context.route("**/*", route)
    page.goto("/api/redoc/")  # not signed in: the admin's sign-in page, then back
    assert "/admin/login/" in page.url and "next=/api/redoc/" in page.url
    page.get_by_label("Username").fill("docs-reader")
    page.get_by_label("Password").fill("pw-docs")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/api/redoc/")
    page.elsewhere = elsewhere
    return page


def test_redoc_and_swagger_render_with_no_other_origin(offline_page):
    page = offline_page
    expect(page.locator("#redoc-container h1").first).to_contain_text("Django Virtual Objects API", timeout=30_000)
    expect(page.locator("#redoc-container")).to_contain_text("/api/instances/")
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Django Virtual Objects API", timeout=30_000)
    assert page.elsewhere == []
