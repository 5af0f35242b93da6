from __future__ import annotations

from typing import Any

from django.test import override_settings
from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot
from tests.conftest import postgres_like


def test_db_health_lists_every_alias_and_refreshes_without_a_page_load(
    admin_page: Page, live_server: Any
) -> None:
    with override_settings(DBHEALTH={"POLL_INTERVAL": 1.0, "TIMEOUT": 2.0}):
        admin_page.click("nav.dbhealth-nav >> text=Database health")
        expect(admin_page).to_have_url(f"{live_server.url}/admin/db-health/")
        for alias in ("default", "second_db", "local"):
            expect(admin_page.locator(f'tr[data-alias="{alias}"]')).to_have_attribute(
                "data-status", "up"
            )
        admin_page.evaluate("window.__notReloaded = true")
        first = admin_page.locator('tr[data-alias="default"] [data-field="connect_ms"]').inner_text()
        checked = admin_page.locator(".dbhealth-checked")
        before = checked.inner_text()

        # The HTMX poll swaps the table in place: new text, same document.
        expect(checked).not_to_have_text(before, timeout=5_000)
        assert admin_page.evaluate("window.__notReloaded") is True
        assert first  # a number was shown before the swap
        screenshot(admin_page, "db-health")


def test_a_dead_alias_shows_its_error_in_the_browser(
    admin_page: Page, live_server: Any, add_alias: Any, closed_port: int, canary: str
) -> None:
    add_alias("dead", **postgres_like(PORT=str(closed_port), PASSWORD=canary))

    admin_page.goto(f"{live_server.url}/admin/db-health/")

    row = admin_page.locator('tr[data-alias="dead"]')
    expect(row).to_have_attribute("data-status", "down")
    expect(row.locator(".dbhealth-error")).to_contain_text("Connection refused")
    assert canary not in admin_page.content()
    screenshot(admin_page, "db-health-dead-alias")


def test_ping_now_updates_one_row_in_place(admin_page: Page, live_server: Any) -> None:
    admin_page.goto(f"{live_server.url}/admin/db-health/")
    admin_page.evaluate("window.__notReloaded = true")

    admin_page.locator('tr[data-alias="second_db"] button:has-text("Ping now")').click()

    expect(admin_page.locator('tr[data-alias="second_db"]')).to_have_class("dbhealth-pinged")
    assert admin_page.evaluate("window.__notReloaded") is True
