"""A real Chromium (Debian's, driven by Playwright from pip) on the real app served over HTTP.

Skips with the reason when Playwright or a browser cannot be had (`apt-get install chromium`).
"""
from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("DOGBREED_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"no browser at {CHROMIUM}: apt-get install chromium (or set DOGBREED_TEST_CHROMIUM)")
    with sync_playwright() as p:
        try:
            found = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        except Error as exc:
            pytest.skip(f"{CHROMIUM} would not start: {str(exc).splitlines()[0]}")
        yield found
        found.close()


@pytest.fixture
def settings(make_settings, redis_url, queue_name):
    """Auth on, as a real deployment runs: the pages are behind a login."""
    return make_settings(broker_url=redis_url, queue=queue_name, auth_required=True)


@pytest.fixture
def user(settings) -> str:
    from tests.factories import database, make_user

    with database(settings.database_url) as s:
        return make_user(s, "ann", password=PASSWORD).name


@pytest.fixture
def page(browser, live, user):
    """A fresh browser context, logged in with the keyboard only."""
    context = browser.new_context(base_url=live.url)
    found = context.new_page()
    found.set_default_timeout(60_000)
    found.goto("/")
    assert "/login" in found.url
    found.focus("input[name=name]")
    found.keyboard.type(user)
    found.keyboard.press("Tab")
    found.keyboard.type(PASSWORD)
    found.keyboard.press("Enter")
    found.wait_for_url(live.url + "/")
    yield found
    context.close()
