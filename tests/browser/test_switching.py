"""Switching a model list's database alias in Chromium: the rows, the banner, the admin's own JS."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from dashboard import results
from dashboard.demo.models import Customer
from tests.browser.conftest import screenshot
from tests.conftest import mysql_like

NAMES = {
    "default": "Ada Lovelace (US)",
    "second_db": "Grace Hopper (EU)",
    "local": "Alan Turing (LOCAL)",
}


@pytest.fixture
def customers() -> None:
    for alias, name in NAMES.items():
        Customer.objects.using(alias).create(
            name=name, email=f"{alias}@example.com", region=alias.upper()
        )


def test_switching_the_alias_shows_that_databases_rows(
    admin_page: Page, live_server: Any, customers: None
) -> None:
    admin_page.goto(f"{live_server.url}/admin/demo/customer/")
    expect(admin_page).to_have_url(f"{live_server.url}/admin/demo/customer/?_db=default")
    rows = admin_page.locator("#result_list tbody")
    banner = admin_page.locator(".dbhealth-alias-banner")
    expect(rows).to_contain_text(NAMES["default"])
    expect(banner).to_have_attribute("data-alias", "default")

    admin_page.select_option("#dbhealth-alias", "second_db")

    expect(admin_page).to_have_url(f"{live_server.url}/admin/demo/customer/?_db=second_db")
    expect(rows).to_contain_text(NAMES["second_db"])
    expect(rows).not_to_contain_text(NAMES["default"])
    expect(banner).to_contain_text("Customers on second_db: mysql at 127.0.0.1:3306")
    expect(admin_page.locator("#dbhealth-alias")).to_have_value("second_db")
    # A full page load: the admin's action checkboxes work on the new list.
    admin_page.check("#action-toggle")
    expect(admin_page.locator(".action-counter")).to_contain_text("1 of 1 selected")
    admin_page.uncheck("#action-toggle")
    screenshot(admin_page, "changelist-second-db")

    admin_page.click(f"text={NAMES['second_db']}")

    expect(admin_page.locator("#id_name")).to_have_value(NAMES["second_db"])
    expect(banner).to_have_attribute("data-alias", "second_db")
    screenshot(admin_page, "change-form-second-db")


def test_the_switcher_leads_away_from_a_down_alias(
    admin_page: Page, live_server: Any, customers: None, add_alias: Any, closed_port: int
) -> None:
    add_alias("dead_db", **mysql_like(PORT=str(closed_port)))

    admin_page.goto(f"{live_server.url}/admin/demo/customer/?_db=dead_db")

    expect(admin_page.locator(".messagelist .error")).to_contain_text(
        "Database dead_db is down: (2002) Can't connect"
    )
    expect(admin_page.locator('#dbhealth-alias option[value="dead_db"]')).to_have_attribute(
        "data-status", "down"
    )
    screenshot(admin_page, "changelist-dead-alias")

    admin_page.select_option("#dbhealth-alias", "local")

    expect(admin_page).to_have_url(f"{live_server.url}/admin/demo/customer/?_db=local")
    expect(admin_page.locator("#result_list tbody")).to_contain_text(NAMES["local"])


@pytest.mark.parametrize("width", [1280, 390])
def test_the_switcher_and_banner_read_in_words_and_fit_the_screen(
    admin_page: Page, live_server: Any, customers: None, width: int
) -> None:
    results.latest()
    admin_page.set_viewport_size({"width": width, "height": 900})
    admin_page.goto(f"{live_server.url}/admin/demo/customer/?_db=second_db")

    banner = admin_page.locator(".dbhealth-alias-banner")
    expect(banner.locator(".dbhealth-alias-state")).to_have_text("up")
    expect(banner.locator(".dbhealth-alias-checked")).to_contain_text("checked")
    expect(admin_page.locator('#dbhealth-alias option[value="local"]')).to_contain_text(
        "local — sqlite, up, checked"
    )
    overflow = admin_page.evaluate(
        "() => document.querySelector('.dbhealth-alias-bar').scrollWidth"
        " - document.querySelector('.dbhealth-alias-bar').clientWidth"
    )
    assert overflow <= 0
    screenshot(admin_page, f"changelist-second-db-{width}")
    admin_page.goto(f"{live_server.url}/admin/demo/customer/1/history/?_db=second_db")
    screenshot(admin_page, f"history-second-db-{width}")
