"""Readiness with hysteresis: a verdict changes only after FALL failed or RISE good probes in a
row, on /health/, the db-health page, ``dbhealth`` and /metrics, and across workers."""

from __future__ import annotations

import http.client
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from dashboard.readiness import Readiness, duration
from tests.conftest import mysql_like
from tests.faultproxy import FaultProxy
from tests.gunicornsite import collected_static, serve
from tests.test_command import run
from tests.test_deploy import HOST, production_env
from tests.test_results import REDIS_URL

HYSTERESIS = {"FALL": 3, "RISE": 2, "CACHE_TTL": 0}


# --- the state machine, on literal probes ---------------------------------------------------


def _probed(*outcomes: bool, fall: int = 3, rise: int = 2, window: float = 600) -> Readiness:
    state = Readiness.first("flaky", outcomes[0], 1000.0)
    for step, ok in enumerate(outcomes[1:], start=1):
        state = state.after(ok, 1000.0 + step, fall=fall, rise=rise, window=window)
    return state


def test_two_failed_probes_keep_an_alias_up_and_the_third_turns_it_down() -> None:
    assert _probed(True, False, False).passing
    assert _probed(True, False, False).pending == 2
    turned = _probed(True, False, False, False)
    assert not turned.passing
    assert (turned.since, turned.probes, turned.changes) == (1003.0, 3, (1003.0,))


def test_one_good_probe_does_not_bring_it_back_two_do() -> None:
    assert not _probed(True, False, False, False, True).passing
    back = _probed(True, False, False, False, True, True)
    assert back.passing and back.probes == 2 and back.since == 1005.0


def test_a_good_probe_between_failures_starts_the_count_again() -> None:
    assert _probed(True, False, False, True, False, False).passing


def test_the_first_probe_sets_the_verdict_and_is_no_change() -> None:
    assert not _probed(False).passing and _probed(False).changes == ()


def test_a_probe_older_than_the_last_one_counted_is_ignored() -> None:
    state = _probed(True, False, False)
    assert state.after(False, 999.0, fall=3, rise=2, window=600) == state


def test_only_changes_within_the_window_are_kept() -> None:
    # Four changes one second apart, with a window of 2.5 s: the oldest have fallen out.
    state = _probed(True, False, True, False, True, fall=1, rise=1, window=2.5)
    assert state.changes == (1002.0, 1003.0, 1004.0)


def test_durations_read_like_an_operator_would_say_them() -> None:
    assert [duration(s) for s in (0.4, 4.9, 192, 600, 7500, 93600)] == [
        "0 s",
        "4 s",
        "3 min 12 s",
        "10 min",
        "2 h 5 min",
        "1 d 2 h",
    ]


# --- on real servers, through a proxy that refuses on demand --------------------------------


@pytest.fixture
def flaky(settings: Any, add_alias: Any, fault_proxy: Any) -> FaultProxy:
    """A critical MariaDB alias "flaky" behind a proxy; FALL=3, RISE=2, every request probes."""
    proxy: FaultProxy = fault_proxy(int(connections.settings["second_db"]["PORT"]))
    add_alias("flaky", **mysql_like(PORT=str(proxy.port)))
    settings.DBHEALTH = {
        **settings.DBHEALTH,
        **HYSTERESIS,
        "CRITICAL_ALIASES": ["default", "flaky"],
    }
    return proxy


def _health(client: Client) -> tuple[int, dict[str, Any]]:
    response = client.get("/health/", {"alias": "flaky"})
    (entry,) = response.json()["checks"]["flaky:responseTime"]
    return response.status_code, entry


def test_health_holds_the_verdict_for_fall_probes_and_back_for_rise(
    flaky: FaultProxy, canary: str
) -> None:
    client = Client()
    seen = []
    assert _health(client)[1]["status"] == "pass"
    flaky.set_mode("refuse")
    for _ in range(3):
        code, entry = _health(client)
        seen.append((code, entry["status"], entry["lastProbe"]))
    failing = entry
    flaky.set_mode("pass")
    for _ in range(2):
        code, entry = _health(client)
        seen.append((code, entry["status"], entry["lastProbe"]))

    assert seen == [
        (200, "pass", "fail"),
        (200, "pass", "fail"),
        (503, "fail", "fail"),
        (503, "fail", "pass"),
        (200, "pass", "pass"),
    ]
    assert failing["probesSince"] == 3
    assert failing["output"].startswith("down for ") and "3 failed probes" in failing["output"]
    assert entry["output"].startswith("up for ") and "2 good probes" in entry["output"]
    assert canary not in json.dumps(failing)


def test_the_page_the_command_and_metrics_show_the_held_verdict(
    flaky: FaultProxy, staff_client: Client, settings: Any, canary: str
) -> None:
    run("--alias", "flaky")
    flaky.set_mode("refuse")
    held_status, held_out = run("--alias", "flaky", "--nagios")
    page = staff_client.get("/admin/db-health/").content.decode()
    run("--alias", "flaky")
    down_status, down_out = run("--alias", "flaky")
    bearer = {"Authorization": f"Bearer {settings.DBHEALTH['TOKEN']}"}
    scraped = Client().get("/metrics", headers=bearer).content.decode()

    # The command and the page each probed once more: 2 failures, still held up.
    assert held_status == 0 and held_out.startswith("DBHEALTH OK - flaky held up (up for ")
    assert "last probe failed, 1 of 3 before it turns down" in held_out
    row = page[page.index('<tr id="alias-flaky"') :]
    row = row[: row.index("</tr>")]
    assert 'data-verdict="pass" data-last-probe="fail"' in row
    assert "last probe failed, 2 of 3 before it turns down" in row
    # The third failure turned it down; /metrics probed a fourth time.
    assert down_status == 2
    (line,) = [line for line in down_out.splitlines() if line.startswith("flaky")]
    assert line.split()[1:2] == ["down"] and " fail " in line and "down for " in line
    assert "CRITICAL: flaky down (critical), down for " in down_out
    values = {
        (sample.name, sample.labels.get("alias")): sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
    }
    assert values[("dbhealth_verdict", "flaky")] == 0.0
    assert values[("dbhealth_verdict", "second_db")] == 1.0
    assert values[("dbhealth_flapping", "flaky")] == 0.0
    assert canary not in held_out + page + down_out + scraped


def test_several_changes_within_the_window_are_shown_as_flapping(
    settings: Any, add_alias: Any, fault_proxy: Any, staff_client: Client
) -> None:
    proxy: FaultProxy = fault_proxy(int(connections.settings["second_db"]["PORT"]))
    add_alias("flaky", **mysql_like(PORT=str(proxy.port)))
    settings.DBHEALTH = {**settings.DBHEALTH, "CACHE_TTL": 0, "FLAP_CHANGES": 3}
    client = Client()
    for mode in ("pass", "refuse", "pass", "refuse"):
        proxy.set_mode(mode)
        _, entry = _health(client)
    page = staff_client.get("/admin/db-health/").content.decode()
    bearer = {"Authorization": f"Bearer {settings.DBHEALTH['TOKEN']}"}
    scraped = Client().get("/metrics", headers=bearer).content.decode()

    assert entry["flapping"] is True and "flapping: 3 changes in 10 min" in entry["output"]
    assert "flapping: " in page[page.index('<tr id="alias-flaky"') :].split("</tr>")[0]
    assert 'dbhealth_flapping{alias="flaky"} 1.0' in scraped
    assert 'dbhealth_flapping{alias="second_db"} 0.0' in scraped


# --- two gunicorn workers sharing Redis ------------------------------------------------------


class Worker:
    def __init__(self, port: int) -> None:
        self.port = port

    def health(self) -> tuple[str, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/health/?alias=flaky", headers={"Host": HOST})
            (entry,) = json.loads(conn.getresponse().read())["checks"]["flaky:responseTime"]
            return entry["status"], entry["lastProbe"]
        finally:
            conn.close()


@contextmanager
def _gunicorn(env: dict[str, str]) -> Iterator[Worker]:
    """One gunicorn master with one worker: two of them are two workers we can address."""
    with serve(env, workers=1, threads=None) as site:
        yield Worker(site.port)


def test_the_verdict_is_shared_by_two_gunicorn_workers_through_redis(
    tmp_path: Path, fault_proxy: Any
) -> None:
    mariadb = connections.settings["second_db"]
    proxy: FaultProxy = fault_proxy(int(mariadb["PORT"]))
    prefix = f"wt-readiness-{secrets.token_hex(4)}"
    env = production_env(
        tmp_path,
        DATABASE_URL_FLAKY=f"mysql://{mariadb['USER']}@127.0.0.1:{proxy.port}/{mariadb['NAME']}",
        CACHE_URL=f"{REDIS_URL}?key_prefix={prefix}",
        DBHEALTH_CACHE_TTL="0",
        DBHEALTH_FALL="3",
        DBHEALTH_RISE="2",
        DBHEALTH_CRITICAL_ALIASES="default,flaky",
        STATIC_ROOT=collected_static(),
    )
    seen = []
    with _gunicorn(env) as first, _gunicorn(env) as second:
        seen.append(first.health())
        proxy.set_mode("refuse")
        # Failures alternate between the workers: neither alone has seen three.
        seen += [first.health(), second.health(), first.health(), second.health()]
        proxy.set_mode("pass")
        seen += [second.health(), first.health()]

    assert seen == [
        ("pass", "pass"),
        ("pass", "fail"),
        ("pass", "fail"),
        ("fail", "fail"),
        ("fail", "fail"),
        ("fail", "pass"),
        ("pass", "pass"),
    ]
