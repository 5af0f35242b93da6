"""The db-health page with many aliases and long errors: it fits every width, and filters.

Seven aliases of the real PostgreSQL server fail with a 400-character error (an unknown
server setting named in their options), beside the three that are up.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connections
from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot, too_wide
from tests.conftest import postgres_like
from tests.pgcluster import wait_until

WIDTHS = (1280, 1024, 768, 390)
BROKEN = [f"tenant_{n}" for n in range(7)]


@pytest.fixture
def long_errors(add_alias) -> list[str]:
    for alias in BROKEN:
        add_alias(alias, **postgres_like(OPTIONS={"options": f"-c {'x' * 380}{alias}=1"}))
    return BROKEN


@pytest.fixture
def long_query() -> Iterator[str]:
    """A session of the PostgreSQL alias running a query with long unbroken names, so
    the alias page's activity lists it while the test looks."""
    settings = connections.settings["default"]
    conn = psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], user=settings["USER"],
        dbname=settings["NAME"], autocommit=True,
    )  # fmt: skip
    name = f"unbroken_{secrets.token_hex(4)}_{'w' * 40}"  # wider than a phone, no space
    running = threading.Thread(
        target=lambda: _until_cancelled(conn, f'SELECT pg_sleep(60), 1 AS "{name}"')
    )
    running.start()
    try:
        wait_until(lambda: postgres_running(f"%{name}%") > 0)
        yield name
    finally:
        conn.cancel()
        running.join(timeout=10)
        conn.close()


def _until_cancelled(conn: Any, statement: str) -> None:
    with contextlib.suppress(psycopg.errors.QueryCanceled):
        conn.execute(statement)


def postgres_running(pattern: str) -> int:
    settings = connections.settings["default"]
    with psycopg.connect(
        host=settings["HOST"], port=settings["PORT"], user=settings["USER"], dbname="postgres"
    ) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
            (pattern,),
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("width", WIDTHS)
def test_the_page_and_the_alias_page_fit_the_window(
    admin_page: Page, live_server: Any, long_errors: list[str], long_query: str, width: int
) -> None:
    admin_page.set_viewport_size({"width": width, "height": 900})

    admin_page.goto(f"{live_server.url}/admin/db-health/")
    expect(admin_page.locator('tr[data-alias="tenant_0"]')).to_have_attribute("data-status", "down")
    assert too_wide(admin_page) == [], f"db-health page wider than {width} px"
    # Errors are shortened; the whole text is one click away.
    error = admin_page.locator('tr[data-alias="tenant_0"] .dbhealth-error details')
    expect(error).to_have_count(1)
    for scheme in ("light", "dark"):
        admin_page.emulate_media(color_scheme=scheme)
        screenshot(admin_page, f"many-aliases-{width}-{scheme}")

    for alias in ("tenant_0", "default"):
        admin_page.goto(f"{live_server.url}/admin/db-health/{alias}/")
        expect(admin_page.locator("#content-main")).to_be_visible()
        assert too_wide(admin_page) == [], f"alias page of {alias} wider than {width} px"
    # The running query is listed; its table scrolls on its own in a narrow window.
    expect(admin_page.locator('[data-part="running"] code', has_text=long_query)).to_have_count(1)
    screenshot(admin_page, f"alias-page-{width}")


def test_filtering_to_down_shows_exactly_the_down_aliases_and_keeps_it_in_the_url(
    admin_page: Page, live_server: Any, long_errors: list[str]
) -> None:
    admin_page.goto(f"{live_server.url}/admin/db-health/")
    expect(admin_page.locator("tr[data-alias]")).to_have_count(10)

    admin_page.select_option('#dbhealth-filter select[name="status"]', "down")

    expect(admin_page.locator("tr[data-alias]")).to_have_count(len(BROKEN))
    shown = admin_page.locator("tr[data-alias]").evaluate_all(
        "rows => rows.map(row => row.dataset.alias)"
    )
    assert sorted(shown) == sorted(BROKEN)
    expect(admin_page).to_have_url(f"{live_server.url}/admin/db-health/?status=down")

    # The same link opened afresh, without JavaScript's help, shows the same aliases.
    admin_page.goto(f"{live_server.url}/admin/db-health/?status=down&q=tenant_3")
    expect(admin_page.locator("tr[data-alias]")).to_have_count(1)
    expect(admin_page.locator('tr[data-alias="tenant_3"]')).to_be_visible()


def test_the_summary_lists_what_needs_attention_first(
    admin_page: Page, live_server: Any, long_errors: list[str]
) -> None:
    admin_page.goto(f"{live_server.url}/admin/db-health/")

    summary = admin_page.locator(".dbhealth-summary")
    expect(summary).to_contain_text("10 aliases on")
    expect(summary.locator('[data-condition="down"]')).to_have_text("7 down")
    attention = admin_page.locator(".dbhealth-attention li[data-alias]")
    expect(attention).to_have_count(7)
