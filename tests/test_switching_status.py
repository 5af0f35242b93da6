"""The switcher and the banner show the last known status at once, with its age, in words."""

from __future__ import annotations

import re
import time
from typing import Any

from django.conf import settings
from django.test import Client

from dashboard import results
from tests.conftest import mysql_like
from tests.test_switching import LIST, html

TIMEOUT = settings.DBHEALTH["TIMEOUT"]


def options(page: str) -> dict[str, str]:
    return dict(re.findall(r'<option value="([^"]+)"[^>]*>([^<]*)</option>', page))


def timed_list(client: Client, alias: str) -> tuple[float, str]:
    started = time.monotonic()
    response = client.get(LIST, {"_db": alias})
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    return elapsed, html(response)


def test_a_silent_alias_never_probed_does_not_hold_up_a_list_on_default(
    staff_client: Client, add_alias: Any, silent_port: int, no_stragglers: None
) -> None:
    add_alias("silent_db", **mysql_like(PORT=str(silent_port)))

    elapsed, page = timed_list(staff_client, "default")

    assert elapsed < TIMEOUT  # a probe round with silent_db would take the whole timeout
    assert options(page)["silent_db"] == "silent_db — mysql, not checked yet"
    assert options(page)["default"].startswith("default — postgresql, up, checked ")


def test_the_last_known_result_is_shown_with_its_age(
    staff_client: Client, add_alias: Any, silent_port: int, no_stragglers: None
) -> None:
    add_alias("silent_db", **mysql_like(PORT=str(silent_port)))
    results.fresh(["silent_db"])  # an earlier probe found it silent
    results.fresh(["default", "second_db", "local"])

    elapsed, page = timed_list(staff_client, "default")

    assert elapsed < TIMEOUT
    found = options(page)
    assert re.fullmatch(r"silent_db — mysql, did not answer, checked \d+ s ago", found["silent_db"])
    assert re.fullmatch(r"second_db — mysql, up, checked \d+ s ago", found["second_db"])
    assert re.fullmatch(r"local — sqlite, up, checked \d+ s ago", found["local"])
    banner = re.search(r'<p class="dbhealth-alias-banner".*?</p>', page, re.S)
    assert banner is not None
    assert re.search(
        r">up</span> <span class=\"dbhealth-alias-checked\">checked \d+ s ago<", banner[0]
    )


def test_statuses_are_words_not_a_dot(staff_client: Client) -> None:
    results.latest()

    page = html(staff_client.get(LIST, {"_db": "second_db"}))

    assert "●" not in page
    assert options(page)["second_db"].startswith("second_db — mysql, up, checked ")
