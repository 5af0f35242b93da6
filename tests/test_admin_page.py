from __future__ import annotations

import re
import time

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.conftest import SLACK_SECONDS, postgres_like

PAGE = "/admin/db-health/"
TABLE = "/admin/db-health/table/"


def test_anonymous_is_sent_to_login(client: Client) -> None:
    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/admin/db-health/")


def test_logged_in_non_staff_gets_no_access(plain_client: Client) -> None:
    response = plain_client.get(PAGE)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert b"dbhealth-aliases" not in response.content


def test_staff_sees_every_alias_with_engine_host_and_latency(staff_client: Client) -> None:
    response = staff_client.get(PAGE)

    assert response.status_code == 200
    html = response.content.decode()
    for alias in ("default", "second_db", "local"):
        assert f'data-alias="{alias}"' in html
    assert "postgresql" in html and "mysql" in html and "sqlite" in html
    assert "127.0.0.1:5432" in html and "127.0.0.1:3306" in html
    assert 'data-status="up"' in html
    assert re.search(r"3 aliases on 3 servers:\s*<a [^>]*>3 up</a>", html)
    assert 'hx-get="/admin/db-health/table/"' in html
    assert "dashboard/htmx.min.js" in html


def test_partial_returns_only_the_table(staff_client: Client) -> None:
    response = staff_client.get(TABLE, headers={"HX-Request": "true"})

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="dbhealth-table"')
    assert "<html" not in html and "<body" not in html
    assert 'data-alias="second_db"' in html


def test_dead_alias_shows_its_clean_error_and_the_page_still_answers(
    staff_client: Client, add_alias, closed_port, silent_port, canary, no_stragglers
) -> None:
    add_alias("dead", **postgres_like(PORT=str(closed_port), PASSWORD=canary))
    add_alias("silent", **postgres_like(PORT=str(silent_port), PASSWORD=canary))

    started = time.monotonic()
    response = staff_client.get(PAGE)
    elapsed = time.monotonic() - started

    html = response.content.decode()
    assert response.status_code == 200
    assert elapsed < settings.DBHEALTH["TIMEOUT"] + SLACK_SECONDS  # one deadline for all
    assert 'data-alias="dead" data-status="down"' in html
    assert 'data-alias="silent" data-status="timeout"' in html
    assert "Connection refused" in html
    assert canary not in html
    assert 'data-verdict="warn"' in html  # only non-critical aliases fail


def test_ping_now_requires_post_and_csrf(staff_client: Client) -> None:
    url = reverse("admin:dbhealth_ping", args=["default"])
    assert staff_client.get(url).status_code == 405

    strict = Client(enforce_csrf_checks=True)
    strict.cookies = staff_client.cookies
    assert strict.post(url).status_code == 403


def test_ping_now_without_javascript_redirects_with_a_message(staff_client: Client) -> None:
    response = staff_client.post(reverse("admin:dbhealth_ping", args=["second_db"]), follow=True)

    assert response.status_code == 200
    assert "Pinged second_db: up" in response.content.decode()


def test_ping_now_with_htmx_returns_only_the_row_of_its_alias(staff_client: Client) -> None:
    response = staff_client.post(
        reverse("admin:dbhealth_ping", args=["local"]), headers={"HX-Request": "true"}
    )

    html = response.content.decode()
    assert html.lstrip().startswith('<tr id="alias-local" data-alias="local" data-status="up"')
    assert "dbhealth-pinged" in html
    assert 'id="alias-default"' not in html


def test_ping_of_an_unknown_alias_is_a_message_not_an_error(staff_client: Client) -> None:
    response = staff_client.post(reverse("admin:dbhealth_ping", args=["nope"]), follow=True)

    assert response.status_code == 200
    assert "no database alias named" in response.content.decode()


def test_admin_index_and_header_link_to_the_page(staff_client: Client) -> None:
    html = staff_client.get("/admin/").content.decode()

    assert (
        '<nav class="dbhealth-nav" aria-label="Database health"><a href="/admin/db-health/">'
        in html
    )
    assert '<a href="/admin/db-health/">Database aliases</a>' in html


@pytest.mark.parametrize("url", [PAGE, TABLE])
def test_canary_password_never_appears(staff_client: Client, canary: str, url: str) -> None:
    assert canary not in staff_client.get(url).content.decode()
