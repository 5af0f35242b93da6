"""The alias page's activity section in a browser, light and dark, with a real blocking pair."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import log_in, screenshot, too_wide
from tests.pgcluster import wait_until
from tests.test_activity import _pg_connect, _pg_waiting

SLEEPERS = 20


@pytest.fixture
def busy_server() -> Iterator[str]:
    """A row lock with a waiter on it, and SLEEPERS sessions running a query."""
    table = f"dbh_browser_{uuid.uuid4().hex[:8]}"
    with _pg_connect() as admin:
        admin.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v text)")
        admin.execute(f"INSERT INTO {table} VALUES (1, 'x')")
    holder, waiter = _pg_connect(application_name="billing-worker"), _pg_connect()
    sleepers = [_pg_connect(application_name=f"report-{n}") for n in range(SLEEPERS)]
    threads = []
    try:
        holder.execute("BEGIN")
        holder.execute(f"UPDATE {table} SET v = 'paid: card 4111111111111111' WHERE id = 1")
        for work in [
            lambda: waiter.execute(f"UPDATE {table} SET v = 'refund' WHERE id = 1"),
            *[lambda s=s: s.execute("SELECT pg_sleep(60)") for s in sleepers],
        ]:
            threads.append(threading.Thread(target=_quietly(work), daemon=True))
            threads[-1].start()
        wait_until(_pg_waiting(waiter.info.backend_pid), 10, "the waiter waits")
        yield table
    finally:
        with _pg_connect() as admin:
            pids = [c.info.backend_pid for c in (holder, waiter, *sleepers)]
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", [pids])
            admin.execute(f"DROP TABLE IF EXISTS {table}")
        for thread in threads:
            thread.join(10)
        for connection in (holder, waiter, *sleepers):
            connection.close()


def _quietly(work: Any) -> Any:
    def run() -> None:
        try:
            work()
        except Exception:  # terminated at the end of the test
            return

    return run


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_activity_section_shows_the_blocking_tree_and_running_queries(
    browser: Browser, live_server: Any, staff_user: Any, busy_server: str, scheme: str
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    page: Page = context.new_page()
    try:
        log_in(page, live_server, staff_user)
        started = time.monotonic()
        page.goto(f"{live_server.url}/admin/db-health/default/")
        took = time.monotonic() - started

        section = page.locator("#dbhealth-activity")
        # Other clients of the shared server may show too: this fixture's rows are counted.
        tree = section.locator('table[data-part="blocking"] tbody tr', has_text=busy_server)
        expect(tree).to_have_count(2)
        expect(tree.nth(0)).to_contain_text("idle in transaction")
        expect(tree.nth(1)).to_contain_text(f"UPDATE {busy_server} SET v = ? WHERE id = ?")
        running = section.locator('table[data-part="running"] tbody tr')
        expect(running.filter(has_text="report-")).to_have_count(SLEEPERS)
        expect(running.filter(has_text=busy_server)).to_have_count(1)
        expect(section).not_to_contain_text("4111")
        assert too_wide(page) == []
        assert took < 5, took
        screenshot(page, f"alias-activity-{scheme}")
        print(f"alias page with {SLEEPERS} running sessions ({scheme}): {took * 1000:.0f} ms")
    finally:
        context.close()
