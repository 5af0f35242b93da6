from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import STAFF_PASSWORD, log_in, screenshot
from tests.conftest import postgres_like

# WCAG 2 AA: the least contrast ratio for normal-size text.
READABLE = 4.5


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
        first = admin_page.locator(
            'tr[data-alias="default"] [data-field="connect_ms"]'
        ).inner_text()
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


# --- the keyboard alone -----------------------------------------------------------------

FOCUSED = """() => {
    const e = document.activeElement;
    if (!e || e === document.body) return "(no element: focus fell back to the page)";
    return (e.getAttribute("aria-label") || e.textContent || "").trim();
}"""


def tab_to(page: Page, label: str, presses: int = 60) -> None:
    """Press Tab until the focused element's label (or text) is ``label``."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate(FOCUSED) == label:
            return
    raise AssertionError(f"{label!r} cannot be reached with Tab")


def test_the_keyboard_alone_logs_in_opens_db_health_and_pings_a_row(
    page: Page, live_server: Any, staff_user: Any
) -> None:
    with override_settings(DBHEALTH={**settings.DBHEALTH, "POLL_INTERVAL": 60.0}):
        page.goto(f"{live_server.url}/admin/login/")
        page.keyboard.type(staff_user.username)  # the login form focuses its first field
        page.keyboard.press("Tab")
        page.keyboard.type(STAFF_PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{live_server.url}/admin/")

        tab_to(page, "Database health")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{live_server.url}/admin/db-health/")
        page.evaluate("window.__notReloaded = true")
        tab_to(page, "Ping second_db now")
        focus_ring = page.evaluate(
            "getComputedStyle(document.activeElement).outlineStyle"
            " + ' ' + document.activeElement.matches(':focus-visible')"
        )
        page.keyboard.press("Enter")

        expect(page.locator('tr[data-alias="second_db"]')).to_have_class("dbhealth-pinged")
        assert page.evaluate("window.__notReloaded") is True
        assert focus_ring in {"auto true", "solid true"}
        # The table was replaced; the keyboard user must still be on the row they pinged.
        assert page.evaluate(FOCUSED) == "Ping second_db now"


def test_keyboard_focus_survives_the_polling_refresh(admin_page: Page, live_server: Any) -> None:
    with override_settings(DBHEALTH={**settings.DBHEALTH, "POLL_INTERVAL": 1.0}):
        admin_page.goto(f"{live_server.url}/admin/db-health/")
        tab_to(admin_page, "Ping local now")
        admin_page.evaluate("window.__table = document.getElementById('dbhealth-table')")

        admin_page.wait_for_function(
            "document.getElementById('dbhealth-table') !== window.__table", timeout=10_000
        )

        assert admin_page.evaluate(FOCUSED) == "Ping local now"


# --- dark mode --------------------------------------------------------------------------

COLORS = """(element) => {
    const background = (e) => {
        for (; e; e = e.parentElement) {
            const color = getComputedStyle(e).backgroundColor;
            if (color !== "rgba(0, 0, 0, 0)" && color !== "transparent") return color;
        }
        return "rgb(255, 255, 255)";
    };
    return [getComputedStyle(element).color, background(element)];
}"""


def _luminance(css_color: str) -> float:
    red, green, blue = (int(part) / 255 for part in re.findall(r"\d+", css_color)[:3])

    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.03928 else ((channel + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def contrast(page: Page, selector: str) -> float:
    foreground, background = page.locator(selector).first.evaluate(COLORS)
    lighter, darker = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _db_health_in(browser: Browser, live_server: Any, username: str, scheme: str) -> Page:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/db-health/")
    page.fill("#id_username", username)
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/db-health/")
    expect(page.locator('tr[data-alias="dead"]')).to_have_attribute("data-status", "down")
    return page


def test_dark_mode_changes_the_page_and_every_text_stays_readable(
    browser: Browser,
    live_server: Any,
    staff_user: Any,
    add_alias: Any,
    closed_port: int,
) -> None:
    add_alias("dead", **postgres_like(PORT=str(closed_port)))
    light = _db_health_in(browser, live_server, staff_user.username, "light")
    dark = _db_health_in(browser, live_server, staff_user.username, "dark")
    try:
        light_background = light.evaluate("getComputedStyle(document.body).backgroundColor")
        dark_background = dark.evaluate("getComputedStyle(document.body).backgroundColor")
        assert dark_background != light_background
        assert _luminance(dark_background) < 0.1 < _luminance(light_background)
        for selector in (
            "#content h1",
            ".dbhealth-intro",
            ".dbhealth-summary",
            'tr[data-alias="default"] td',
            'tr[data-alias="default"] .dbhealth-badge',
            'tr[data-alias="dead"] .dbhealth-badge',
            'tr[data-alias="dead"] .dbhealth-error',
            ".dbhealth-table th",
            "button.button",
            ".dbhealth-nav a",
        ):
            assert contrast(dark, selector) >= READABLE, selector
            assert contrast(light, selector) >= READABLE, selector
        screenshot(dark, "db-health-dark")
    finally:
        light.context.close()
        dark.context.close()


# --- a page that cannot refresh says so -------------------------------------------------


def test_a_logout_in_another_tab_sends_the_page_to_the_login_page(
    admin_page: Page, live_server: Any
) -> None:
    with override_settings(DBHEALTH={**settings.DBHEALTH, "POLL_INTERVAL": 1.0}):
        admin_page.goto(f"{live_server.url}/admin/db-health/")
        other_tab = admin_page.context.new_page()
        other_tab.goto(f"{live_server.url}/admin/")
        other_tab.click("#logout-form button")
        expect(other_tab).to_have_url(re.compile(r"/admin/logout/$"))

        # The next poll reloads the page; the login page sends it back here afterwards.
        expect(admin_page).to_have_url(
            f"{live_server.url}/admin/login/?next=/admin/db-health/", timeout=10_000
        )
        expect(admin_page.locator("#dbhealth-table")).to_have_count(0)


@pytest.mark.parametrize(
    ("scheme", "failure", "reason"),
    [
        ("light", "abort", "the server did not answer"),
        ("dark", 502, "the server answered HTTP 502"),
    ],
    ids=["light, server gone", "dark, proxy error"],
)
def test_a_table_that_cannot_refresh_says_so_with_its_age(
    browser: Browser,
    live_server: Any,
    staff_user: Any,
    scheme: str,
    failure: str | int,
    reason: str,
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    page = log_in(context.new_page(), live_server, staff_user)
    poll = f"{live_server.url}/admin/db-health/table/"
    try:
        with override_settings(DBHEALTH={**settings.DBHEALTH, "POLL_INTERVAL": 1.0}):
            page.goto(f"{live_server.url}/admin/db-health/")
            note = page.locator("[data-stale-note]")
            expect(note).to_be_hidden()

            if failure == "abort":
                page.route(poll, lambda route: route.abort())
            else:
                page.route(
                    poll, lambda route: route.fulfill(status=int(failure), body="Bad gateway")
                )

            expect(note).to_be_visible()
            expect(note).to_have_text(re.compile(rf"^Not refreshed for \d+ s — {reason}$"))
            expect(page.locator("#dbhealth-table")).to_have_class(re.compile("dbhealth-stale"))
            # The age counts up while the server stays away.
            expect(note).to_have_text(re.compile(r"for ([3-9]|\d\d+) s"), timeout=10_000)
            assert contrast(page, "[data-stale-note]") >= READABLE
            screenshot(page, f"db-health-stale-{scheme}")

            page.unroute(poll)
            expect(note).to_be_hidden(timeout=10_000)  # the next poll that gets through
            expect(page.locator("#dbhealth-table")).not_to_have_class(re.compile("dbhealth-stale"))
    finally:
        context.close()


def test_a_poll_that_is_never_answered_marks_the_table_stale(
    admin_page: Page, live_server: Any
) -> None:
    with override_settings(DBHEALTH={**settings.DBHEALTH, "POLL_INTERVAL": 1.0, "TIMEOUT": 1.0}):
        admin_page.goto(f"{live_server.url}/admin/db-health/")
        # The handler never answers: the request hangs like one to a stuck server.
        admin_page.route(f"{live_server.url}/admin/db-health/table/", lambda route: None)

        note = admin_page.locator("[data-stale-note]")
        # Given up after the probe timeout plus 5 s.
        expect(note).to_have_text(
            re.compile(r"^Not refreshed for \d+ s — the server did not answer within 6 s$"),
            timeout=15_000,
        )


# --- what each role sees ------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("role", ["staff", "superuser"])
def test_staff_without_permissions_see_statuses_only(
    browser: Browser,
    live_server: Any,
    django_user_model: Any,
    role: str,
    width: int,
    scheme: str,
) -> None:
    user = django_user_model.objects.create_user(
        f"{role}-{width}-{scheme}",
        password=STAFF_PASSWORD,
        is_staff=True,
        is_superuser=role == "superuser",
    )
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    try:
        page = log_in(context.new_page(), live_server, user)
        page.goto(f"{live_server.url}/admin/db-health/")
        row = page.locator('tr[data-alias="default"]')
        expect(row).to_have_attribute("data-status", "up")

        details = role == "superuser"
        expect(row.locator(".dbhealth-database")).to_have_count(1 if details else 0)
        expect(row.locator("button:has-text('Ping now')")).to_have_count(1 if details else 0)
        expect(page.locator('[data-field="details-hidden"]')).to_have_count(0 if details else 1)
        assert ("127.0.0.1" in page.content()) is details
        screenshot(page, f"db-health-{role}-{width}-{scheme}")
    finally:
        context.close()
