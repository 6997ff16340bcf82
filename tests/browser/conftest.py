"""Browser fixtures: Debian's headless Chromium driven by Playwright against the live gunicorn server.

Playwright's sync API keeps an event loop on the test thread, which makes Django refuse ORM calls from
it; the tests only touch the database between page actions, so the guard is lifted for this folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _allow_sync_db_beside_playwright(monkeypatch):
    """Playwright's sync API keeps an event loop on the test thread; Django would refuse DB calls there.
    Set for browser tests only, so it never leaks into servers started later (check --deploy refuses it)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """One Chromium per test module: Playwright's sync API runs an event loop on this thread while it is
    open, and Django refuses database calls on a thread with a running loop, so it must not outlive the
    browser tests."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (make test does).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def new_page(browser, live_web):
    """Open a page in a fresh browser context (its own cookies): new_page(javascript=True, width=1100)."""
    contexts = []

    def open_page(*, javascript: bool = True, width: int = 1100, height: int = 800):
        context = browser.new_context(
            base_url=live_web.url, java_script_enabled=javascript, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
