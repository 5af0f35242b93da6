"""The latency history on the db-health page and the alias page with its server vitals."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

from dashboard import history
from dashboard.probes import probe_all
from tests.browser.conftest import log_in, screenshot
from tests.browser.test_db_health_page import READABLE, contrast
from tests.conftest import mysql_like

ROUNDS = 40


def _history_with_an_outage(add_alias: Any, fault_proxy: Any, tmp_path: Path) -> None:
    """40 probe rounds of every alias; "flaky" (MariaDB behind a proxy) refused for 6 of them."""
    reports = tmp_path / "reports.sqlite3"
    conn = sqlite3.connect(reports)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("CREATE TABLE report (id INTEGER PRIMARY KEY, body TEXT)")
    conn.executemany("INSERT INTO report (body) VALUES (?)", [("x" * 500,)] * 500)
    conn.commit()
    conn.close()
    add_alias("reports", ENGINE="django.db.backends.sqlite3", NAME=str(reports))
    proxy = fault_proxy(int(mysql_like()["PORT"]))
    add_alias("flaky", **mysql_like(PORT=str(proxy.port)))
    for round_number in range(ROUNDS):
        proxy.set_mode("refuse" if 20 <= round_number < 26 else "pass")
        probe_all()
    assert history.flush(10)


def test_the_page_draws_each_alias_s_history_and_links_to_its_vitals(
    admin_page: Page, live_server: Any, add_alias: Any, fault_proxy: Any, tmp_path: Path
) -> None:
    _history_with_an_outage(add_alias, fault_proxy, tmp_path)

    admin_page.goto(f"{live_server.url}/admin/db-health/")

    for alias in ("default", "second_db", "local", "reports", "flaky"):
        row = admin_page.locator(f'tr[data-alias="{alias}"]')
        expect(row.locator("svg.dbhealth-spark title")).to_contain_text(f"Latency of {alias}")
        expect(row.locator('[data-field="latency_window"]')).to_contain_text("p95")
    flaky = admin_page.locator('tr[data-alias="flaky"]')
    expect(flaky.locator("svg .dbhealth-spark-fail")).to_have_count(6)
    expect(flaky.locator('[data-field="since"]')).to_contain_text("up since")
    expect(
        admin_page.locator('tr[data-alias="reports"] [data-field="migrations"]')
    ).to_contain_text("unapplied")
    screenshot(admin_page, "db-health-history")

    admin_page.locator('tr[data-alias="second_db"] th a').click()
    expect(admin_page).to_have_url(f"{live_server.url}/admin/db-health/second_db/")


def test_the_alias_page_of_each_vendor_shows_its_vitals(
    admin_page: Page, live_server: Any, add_alias: Any, fault_proxy: Any, tmp_path: Path
) -> None:
    _history_with_an_outage(add_alias, fault_proxy, tmp_path)

    for alias, vital, shown in (
        ("default", "replication_lag", "not a replica"),
        ("second_db", "connections", " of "),
        ("reports", "journal_mode", "wal"),
        ("local", "quick_check", "ok"),
    ):
        admin_page.goto(f"{live_server.url}/admin/db-health/{alias}/")
        # Loaded by HTMX after the page: the placeholder link is replaced in place.
        expect(admin_page.locator(f'[data-vital="{vital}"] td')).to_contain_text(shown)
        expect(admin_page.locator('a:has-text("Read server vitals")')).to_have_count(0)
        expect(admin_page.locator("svg.dbhealth-spark")).to_be_visible()
        screenshot(admin_page, f"db-health-alias-{alias}")


def _logged_in(browser: Browser, live_server: Any, staff_user: Any, **options: Any) -> Page:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, **options)
    return log_in(context.new_page(), live_server, staff_user)


def test_history_drift_and_vitals_text_is_readable_in_light_and_dark_mode(
    browser: Browser,
    live_server: Any,
    staff_user: Any,
    add_alias: Any,
    fault_proxy: Any,
    tmp_path: Path,
) -> None:
    _history_with_an_outage(add_alias, fault_proxy, tmp_path)
    for scheme in ("light", "dark"):
        page = _logged_in(browser, live_server, staff_user, color_scheme=scheme)
        try:
            page.goto(f"{live_server.url}/admin/db-health/")
            for selector in (
                'tr[data-alias="flaky"] .dbhealth-history-stats',
                'tr[data-alias="flaky"] .dbhealth-since',
                'tr[data-alias="reports"] .dbhealth-drift-behind',
                'tr[data-alias="default"] .dbhealth-drift-current',
                'tr[data-alias="default"] th a',
            ):
                assert contrast(page, selector) >= READABLE, (scheme, selector)
            page.goto(f"{live_server.url}/admin/db-health/reports/")
            expect(page.locator('[data-vital="quick_check"] td')).to_have_text("ok")
            for selector in ('[data-vital="quick_check"] td', ".dbhealth-facts th", "h2"):
                assert contrast(page, selector) >= READABLE, (scheme, selector)
            if scheme == "dark":
                screenshot(page, "db-health-alias-reports-dark")
        finally:
            page.context.close()


def test_without_javascript_the_alias_page_shows_vitals_and_reads_them_again(
    browser: Browser, live_server: Any, staff_user: Any
) -> None:
    page = _logged_in(browser, live_server, staff_user, java_script_enabled=False)
    try:
        page.goto(f"{live_server.url}/admin/db-health/second_db/")
        expect(page.locator('[data-vital="version"] td')).to_contain_text("MariaDB")

        page.click('a:has-text("Read again")')

        expect(page).to_have_url(f"{live_server.url}/admin/db-health/second_db/")
        expect(page.locator('[data-vital="version"] td')).to_contain_text("MariaDB")
    finally:
        page.context.close()
