"""The alias page's "application's connections" section in a browser, with a real pool held."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connections
from playwright.sync_api import Page, expect

from tests.browser.conftest import screenshot, too_wide


@pytest.mark.parametrize("width", [1280, 390])
def test_a_held_pool_shows_the_fresh_probe_up_and_the_pool_not(
    admin_page: Page,
    live_server: Any,
    real_pool: str,
    width: int,
) -> None:
    pool = connections[real_pool].pool
    held = pool.getconn()  # its only connection: the page's borrow finds none free
    try:
        admin_page.set_viewport_size({"width": width, "height": 900})
        words = (
            f"{real_pool}: fresh connection up, the application's pool is not: no connection free"
        )
        # A borrow that began before the connection was held (the worker's publisher makes
        # one a round) may still be what the first answer joins: the next answers are not.
        give_up = time.monotonic() + 20
        while True:
            admin_page.goto(f"{live_server.url}/admin/db-health/{real_pool}/")
            if words in admin_page.locator("#content-main").inner_text():
                break
            assert time.monotonic() < give_up, admin_page.locator("#content-main").inner_text()
        expect(admin_page.locator('tr[data-path-status="exhausted"]')).to_have_count(1)
        assert too_wide(admin_page) == []
        for scheme in ("light", "dark"):
            admin_page.emulate_media(color_scheme=scheme)
            screenshot(admin_page, f"alias-pool-{width}-{scheme}")
    finally:
        pool.putconn(held)
