"""The alias page's incident snapshot in a browser: wide and narrow, light and dark."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from django.db import connections
from django.test import Client
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import log_in, screenshot, too_wide
from tests.conftest import postgres_like
from tests.pgcluster import wait_until
from tests.test_activity import _pg_connect, _pg_waiting
from tests.test_incidents import WARN_MS, _probed_fast


def test_the_snapshot_of_a_turn_reads_at_every_width_and_scheme(
    browser: Browser,
    live_server: Any,
    staff_user: Any,
    settings: Any,
    add_alias: Any,
    fault_proxy: Any,
) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "WARN_MS": WARN_MS, "TIMEOUT": 8.0, "CACHE_TTL": 0}
    proxy = fault_proxy(int(connections.settings["default"]["PORT"]))
    alias = add_alias("replica_eu", **postgres_like(PORT=str(proxy.port)))
    table = f"dbh_browser_{uuid.uuid4().hex[:8]}"
    wait_until(lambda: _probed_fast(alias), 30, "a probe through the proxy under WARN_MS")
    client = Client()
    client.force_login(staff_user)
    with _pg_connect() as admin:
        admin.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v text)")
        admin.execute(f"INSERT INTO {table} VALUES (1, 'x')")
    try:
        with _pg_connect(application_name="billing-worker") as holder, _pg_connect() as waiter:
            holder.execute("BEGIN")
            holder.execute(f"UPDATE {table} SET v = 'card 4111111111111111' WHERE id = 1")
            update = f"UPDATE {table} SET v = 'refund' WHERE id = 1"
            blocked = threading.Thread(target=lambda: waiter.execute(update), daemon=True)
            pids = (holder.info.backend_pid, waiter.info.backend_pid)
            blocked.start()
            try:
                wait_until(_pg_waiting(waiter.info.backend_pid), 10, "the waiter waits")
                proxy.set_mode("delay", ms=2 * WARN_MS)
                assert client.get(f"/admin/db-health/{alias}/").status_code == 200
            finally:
                holder.execute("ROLLBACK")
                blocked.join(10)
        proxy.set_mode("pass")

        for width, scheme in [(1280, "light"), (1280, "dark"), (420, "light"), (420, "dark")]:
            context = browser.new_context(
                viewport={"width": width, "height": 900}, color_scheme=scheme
            )
            page: Page = context.new_page()
            try:
                log_in(page, live_server, staff_user)
                page.goto(f"{live_server.url}/admin/db-health/{alias}/")
                snapshot = page.locator(".dbhealth-incident")
                expect(snapshot).to_have_count(1)
                expect(snapshot.locator("h3")).to_contain_text(f"when {alias} turned slow")
                tree = snapshot.locator('table[data-part="incident-blocking"]')
                for pid, depth in zip(pids, (0, 1), strict=True):
                    row = tree.locator(f'tr[data-session="{pid}"][data-depth="{depth}"]')
                    expect(row).to_have_count(1)
                expect(snapshot).not_to_contain_text("4111")
                assert too_wide(page) == []
                screenshot(page, f"alias-incident-{width}-{scheme}")
                snapshot.screenshot(path=f"/tmp/wtS-incident-{width}-{scheme}.png")
            finally:
                context.close()
    finally:
        with _pg_connect() as admin:
            admin.execute(f"DROP TABLE IF EXISTS {table}")
