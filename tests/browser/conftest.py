"""Playwright driving Debian's Chromium against the live test server.

Every browser test logs in as a staff user on ``live_server`` and may write a
screenshot to ``test-artifacts/screenshots/`` (git-ignored) for people to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
STAFF_PASSWORD = "pw-browser-staff"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.django_db(transaction=True, databases="__all__"))


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Chromium for the tests of this package only.

    Between its calls Playwright's sync API leaves its event loop marked as running in
    this thread, so Django takes the thread for an async context: it refuses ORM calls
    unless DJANGO_ALLOW_ASYNC_UNSAFE is set, and keeps this thread's database
    connections in a separate per-context store. Connections opened in that state are
    invisible once Playwright stops, so it lives for this package alone, and closes
    them before it stops; otherwise one stays open and the test database cannot be
    dropped at the end of the run.
    """
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)."
        )
    with pytest.MonkeyPatch.context() as env, sync_playwright() as playwright:
        # The ORM calls the tests make between browser steps are ordinary synchronous calls.
        env.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()
        connections.close_all()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


@pytest.fixture
def staff_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser(
        "browser", "browser@example.com", STAFF_PASSWORD
    )


def log_in(page: Page, live_server: Any, user: Any) -> Page:
    """Log ``page`` in to the admin as ``user`` (whose password is STAFF_PASSWORD)."""
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    return page


@pytest.fixture
def admin_page(page: Page, live_server: Any, staff_user: Any) -> Page:
    """A page logged in to the admin as a superuser."""
    return log_in(page, live_server, staff_user)


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# The innermost elements that reach past the window's right edge, outside any box that
# scrolls on its own: what makes a page wider than its window.
_TOO_WIDE = """() => {
  const width = window.innerWidth;
  const scrolls = (e) => e.closest('.dbhealth-scroll') !== null;
  return [...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > width + 0.5 && !scrolls(e))
    .filter((e) => ![...e.children].some((c) => c.getBoundingClientRect().right > width + 0.5))
    .slice(0, 5)
    .map((e) => `${e.tagName.toLowerCase()}.${e.className} "${e.textContent.trim().slice(0, 60)}"`);
}"""


def too_wide(page: Page) -> list[str]:
    """Empty when the page fits its window; else what sticks out (for the failure message)."""
    if page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"):
        return []
    return list(page.evaluate(_TOO_WIDE)) or ["(the document is wider than the window)"]
