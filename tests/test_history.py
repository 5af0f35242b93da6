"""Latency history: every probe that ran is kept in the cache, shared, and shown on the page."""

from __future__ import annotations

import io
import logging
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from django.core.cache import cache, caches
from django.core.management import call_command
from django.test import Client, override_settings

from dashboard import history
from dashboard.history import Sample, Window
from dashboard.probes import probe, probe_all
from dashboard.templatetags.dbhealth_history import draw
from tests.conftest import mysql_like
from tests.processes import run_together
from tests.redisserver import RedisServer
from tests.servers import SilentListener
from tests.test_command import servers_env
from tests.test_results import REDIS_URL

PAGE = "/admin/db-health/"


@pytest.fixture(autouse=True)
def _no_samples_from_earlier_tests() -> Iterator[None]:
    # The writer thread may still hold samples of an earlier test's probes.
    assert history.flush(10)
    cache.clear()
    yield
    assert history.flush(10)


def _window(alias: str) -> Window:
    assert history.flush(10)
    return history.window(alias)


def _sample(seconds: int, status: str = "up", latency_ms: float | None = 1.0) -> Sample:
    at = datetime(2025, 1, 1, 10, 0, tzinfo=UTC) + timedelta(seconds=seconds)
    return Sample(at=at, status=status, latency_ms=latency_ms if status == "up" else None)


# --- what gets recorded -------------------------------------------------------------------


def test_every_probe_that_ran_is_recorded_from_page_health_endpoint_and_command(
    staff_client: Client, settings: Any
) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "CACHE_TTL": 0}  # every request probes
    probe("second_db")
    staff_client.get(PAGE)
    staff_client.get("/health/")
    call_command("dbhealth", "--alias", "second_db", stdout=io.StringIO())

    window = _window("second_db")

    # probe(), the page's round, /health/'s round, the command's round.
    assert len(window.samples) == 4
    assert [sample.status for sample in window.samples] == ["up"] * 4
    assert all(sample.latency_ms and sample.latency_ms > 0 for sample in window.samples)
    assert [s.at for s in window.samples] == sorted(s.at for s in window.samples)


def test_a_cached_result_served_again_adds_no_sample(staff_client: Client) -> None:
    for _ in range(5):
        staff_client.get("/health/")

    assert len(_window("default").samples) == 1


def test_the_ring_keeps_only_the_newest_history_length_probes(settings: Any) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "HISTORY_LENGTH": 5}
    probed = [probe("local") for _ in range(8)]

    window = _window("local")

    assert [s.at for s in window.samples] == [r.checked_at for r in probed[-5:]]


def test_failed_probes_are_recorded_with_their_status_and_no_latency(
    add_alias: Any, closed_port: int
) -> None:
    add_alias("refusing", **mysql_like(PORT=str(closed_port)))
    probe("refusing")
    probe("refusing")

    window = _window("refusing")

    assert [(s.status, s.latency_ms) for s in window.samples] == [("down", None)] * 2
    assert window.max is None and window.failures == 2


def test_a_probe_never_waits_for_the_history_lock_and_its_sample_is_kept(
    settings: Any,
) -> None:
    """A writer holding the lock (another worker, say) delays the sample, not the probe."""
    cache.add(history.LOCK_KEY, True, 30)
    result = probe("local")

    assert result.ok
    assert not history.flush(0.3)  # the writer is waiting for the lock
    assert history.window("local").samples == ()
    cache.delete(history.LOCK_KEY)
    assert [s.at for s in _window("local").samples] == [result.checked_at]


def test_an_unreachable_cache_costs_the_history_not_the_probe(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    redis = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{closed_port}/0",
    }
    with override_settings(CACHES={"default": redis}), caplog.at_level(logging.WARNING):
        result = probe("second_db")
        assert history.flush(10)
        assert history.window("second_db").samples == ()

    assert result.ok
    assert "cache 'default' failed (ConnectionError); working without it for 5 s" in caplog.text


def test_a_cache_that_never_answers_costs_one_socket_timeout_not_one_per_batch(
    silent_listener: SilentListener, caplog: pytest.LogCaptureFixture
) -> None:
    redis = _redis(f"redis://127.0.0.1:{silent_listener.port}/0")
    with override_settings(CACHES={"default": redis}), caplog.at_level(logging.WARNING):
        started = time.monotonic()
        results = [probe("local") for _ in range(3)]
        assert history.flush(10)
        results += [probe("local") for _ in range(3)]
        assert history.flush(10)
        history.windows(["local"])
        elapsed = time.monotonic() - started

    assert all(result.ok for result in results)
    assert elapsed < 1.5  # one 0.25 s socket timeout, then the back-off skips the cache
    assert caplog.text.count("working without it") == 1


def _redis(location: str) -> dict[str, Any]:
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": location,
        "KEY_PREFIX": f"dbhealth-test-{uuid.uuid4().hex}",
        "OPTIONS": {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
    }


class CountingConnection(redis.Connection):
    """A real redis-py connection that counts what it sends: each send is one round trip
    (a pipeline sends all its commands at once, then reads their replies)."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sent += 1
        super().send_packed_command(command, check_health)


def test_a_batch_costs_as_many_redis_round_trips_for_250_aliases_as_for_10() -> None:
    """One lock, one read and one write for every alias of the batch, not four per alias."""
    with RedisServer() as server:
        counted = _redis(server.url)
        counted["OPTIONS"]["connection_class"] = CountingConnection
        with override_settings(CACHES={"default": counted}):
            history._append({"warm-up": [(time.time(), "up", 1.0)]})  # the connection's setup
            trips = {}
            for count in (10, 250):
                before = CountingConnection.sent
                history._append({f"tenant{i}": [(time.time(), "up", 1.0)] for i in range(count)})
                trips[count] = CountingConnection.sent - before
            stored = history.windows([f"tenant{i}" for i in range(250)])

    assert trips == {10: 4, 250: 4}
    assert [len(stored[f"tenant{i}"].samples) for i in (0, 9, 10, 249)] == [2, 2, 1, 1]


# --- shared by processes through Redis ------------------------------------------------------

APPEND_SCRIPT = """
import json, os, sys
import django

django.setup()
from django.conf import settings
from django.test.utils import override_settings

from dashboard import history
from dashboard.probes import probe

redis = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": os.environ["REDIS_URL"],
    "KEY_PREFIX": os.environ["KEY_PREFIX"],
}
with override_settings(
    CACHES={"default": redis}, DBHEALTH={**settings.DBHEALTH, "HISTORY_LENGTH": 1000}
):
    print("ready", flush=True)
    sys.stdin.readline()
    results = [probe("second_db") for _ in range(int(os.environ["PROBES"]))]
    flushed = history.flush(30)
print(json.dumps({"flushed": flushed, "times": [r.checked_at.timestamp() for r in results]}))
"""


def test_three_processes_appending_through_redis_lose_no_sample(settings: Any) -> None:
    prefix = f"dbhealth-test-{uuid.uuid4().hex}"
    env = {**servers_env(), "REDIS_URL": REDIS_URL, "KEY_PREFIX": prefix, "PROBES": "150"}
    probed: list[float] = []
    for report in run_together(APPEND_SCRIPT, env, count=3, timeout=120):
        assert report["flushed"] is True
        probed += report["times"]
    redis = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": prefix,
    }
    longer = {**settings.DBHEALTH, "HISTORY_LENGTH": 1000}
    with override_settings(CACHES={"default": redis}, DBHEALTH=longer):
        stored = history.window("second_db").samples
        caches["default"].delete(history._key("second_db"))

    assert len(probed) == 450
    assert sorted(s.at.timestamp() for s in stored) == sorted(probed)


# --- what the numbers say ---------------------------------------------------------------------


def test_percentiles_use_the_nearest_rank_of_the_up_probes_only() -> None:
    latencies = [float(n) for n in range(1, 21)]  # 1..20 ms
    samples = [_sample(i, latency_ms=ms) for i, ms in enumerate(latencies)]
    samples.insert(5, _sample(100, status="down"))
    window = Window("x", tuple(samples))

    assert (window.p50, window.p95, window.max) == (10.0, 19.0, 20.0)
    assert window.failures == 1


def test_since_is_the_first_probe_of_the_current_status() -> None:
    statuses = ["up", "up", "down", "timeout", "down", "down"]
    window = Window("x", tuple(_sample(i, s) for i, s in enumerate(statuses)))

    assert window.status == "down"
    assert window.since == _sample(4).at
    assert window.changed


def test_a_window_without_a_change_says_since_its_first_probe() -> None:
    window = Window("x", tuple(_sample(i) for i in range(3)))

    assert window.since == _sample(0).at
    assert not window.changed


def test_the_sparkline_breaks_the_line_at_a_failure_and_marks_it() -> None:
    samples = [_sample(0, latency_ms=2), _sample(1, latency_ms=4), _sample(2, "down")]
    samples += [_sample(3, latency_ms=1)]
    drawing = draw(Window("x", tuple(samples)), width=106, height=24, slots=4)

    # Slots 34 px apart from x=2; 4 ms (the maximum) at the top (y=2), 0 ms at y=22.
    assert drawing.lines == ["2.0,12.0 36.0,2.0"]
    assert drawing.failures == ["70.0"]
    assert drawing.dots == [("104.0", "17.0")]
    assert drawing.title == (
        "Latency of x, last 4 probes: p50 2.0 ms, p95 4.0 ms, max 4.0 ms; 1 failed"
    )


# --- on the page ---------------------------------------------------------------------------


def test_the_page_shows_a_titled_sparkline_and_the_numbers_as_text(
    staff_client: Client,
) -> None:
    for _ in range(3):
        probe("default")
    assert history.flush(10)

    html = staff_client.get(PAGE).content.decode()

    row = re.search(r'<tr id="alias-default".*?</tr>', html, re.S)
    assert row is not None
    cell = row.group(0)
    assert '<svg class="dbhealth-spark"' in cell and 'role="img"' in cell
    assert re.search(r"<title[^>]*>Latency of default, last 4 probes: p50 [\d.]+ ms", cell)
    assert "<polyline" in cell
    assert re.search(r"p50 [\d.]+ · p95 [\d.]+ · max [\d.]+ ms", cell)
    assert "up in all 4 probes" in cell
    assert "Last 120 probes" in html


def test_the_page_says_since_when_an_alias_is_down(
    staff_client: Client, add_alias: Any, fault_proxy: Any
) -> None:
    proxy = fault_proxy(int(mysql_like()["PORT"]))
    add_alias("flaky", **mysql_like(PORT=str(proxy.port)))
    probe_all(["flaky"])
    proxy.set_mode("refuse")
    first_down = probe("flaky")
    probe("flaky")
    assert history.flush(10)

    html = staff_client.get(PAGE).content.decode()

    row = re.search(r'<tr id="alias-flaky".*?</tr>', html, re.S)
    assert row is not None
    since = first_down.checked_at.strftime("%H:%M:%S")  # TIME_ZONE is UTC
    assert f"down since {since}" in row.group(0)
    assert "in all" not in row.group(0)
    # Up once, down twice, and down again for the page's own round.
    assert "last 4 probes" in row.group(0) and "; 3 failed" in row.group(0)
