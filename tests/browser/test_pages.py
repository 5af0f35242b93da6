"""Every page a person opens renders in the browser with all its assets and no script
error, and leaves a screenshot in ``test-artifacts/screenshots/`` for people to look at."""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from playwright.sync_api import ConsoleMessage, Page

from dashboard.demo.models import Order
from tests.browser.conftest import screenshot

PAGES = [
    ("page-admin-index", "/admin/"),
    ("page-db-health", "/admin/db-health/"),
    ("page-demo-app", "/admin/demo/"),
    ("page-demo-customers", "/admin/demo/customer/"),
    ("page-demo-orders", "/admin/demo/order/"),
    ("page-demo-audit-events", "/admin/demo/auditevent/"),
    ("page-demo-customer-add", "/admin/demo/customer/add/"),
    ("page-password-change", "/admin/password_change/"),
]


def _watch(page: Page) -> list[str]:
    """Collects every failed request and script error the page has from now on."""
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        url = str(message.location.get("url", ""))
        # The browser asks for /favicon.ico on its own; the site does not link one.
        if message.type == "error" and not url.endswith("/favicon.ico"):
            problems.append(f"console: {message.text} ({url})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    return problems


def test_the_login_page_renders_cleanly(page: Page, live_server: Any) -> None:
    problems = _watch(page)

    response = page.goto(f"{live_server.url}/admin/login/")

    assert response is not None and response.status == 200
    assert page.locator("#id_username").is_visible()
    assert problems == []
    screenshot(page, "page-login")


def test_every_admin_page_renders_with_its_assets_and_no_script_error(
    admin_page: Page, live_server: Any
) -> None:
    call_command("seed_demo", verbosity=0)
    order = Order.objects.using("default").order_by("pk").first()
    assert order is not None
    pages = [*PAGES, ("page-demo-order-change", f"/admin/demo/order/{order.pk}/change/")]
    problems = _watch(admin_page)

    for name, path in pages:
        response = admin_page.goto(f"{live_server.url}{path}")
        admin_page.wait_for_load_state("networkidle")

        assert response is not None and response.status == 200, path
        assert admin_page.locator("#content").is_visible(), path
        assert problems == [], path
        screenshot(admin_page, name)
