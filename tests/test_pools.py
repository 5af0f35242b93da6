"""The application's own pool: how a worker's figures read on the page, in /health/,
``dbhealth`` and /metrics, and a pool opened before the process forked."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

import psycopg
import pytest
from django.core.management import call_command
from django.db import connections
from django.template.loader import render_to_string
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from dashboard import pools, report, workers
from dashboard.deadline import Deadline
from dashboard.pools import PoolFigures
from tests.conftest import postgres_like
from tests.test_overview import result

STARVED = PoolFigures(
    alias="default", worker="web-1:101", size=2, available=0, requests_waiting=3,
    min_size=1, max_size=2, requests=40, wait_ms=900,
)  # fmt: skip
CALM = PoolFigures(
    alias="default", worker="web-1:102", size=1, available=1, requests_waiting=0,
    min_size=1, max_size=2, requests=12,
)  # fmt: skip


@pytest.fixture
def starved_worker(monkeypatch) -> None:
    # Figures published by two workers whose "default" has a pool; this process's own
    # "default" has none, so nothing here opens or publishes a real pool.
    monkeypatch.setattr(pools, "pooled_aliases", lambda: {"default"})
    # As if this process published already: the test client's requests start no thread.
    monkeypatch.setattr(workers, "_publisher_pid", os.getpid())
    pools.publish([STARVED], worker=STARVED.worker)
    pools.publish([CALM], worker=CALM.worker)


def test_figures_combine_across_workers_and_name_the_starved_one(starved_worker) -> None:
    view = pools.combined()["default"]

    assert (view.size, view.in_use, view.available, view.requests_waiting) == (3, 2, 1, 3)
    assert view.max_size == 4
    assert view.warns
    assert view.problem is not None and "web-1:101" in view.problem
    assert "web-1:102" not in view.problem
    assert view.text == "2 of 4 in use, 1 idle, 3 waiting, over 2 worker(s)"


def test_a_worker_whose_figures_expired_is_said_to_have_stopped(starved_worker) -> None:
    workers.sharedcache.delete(workers._worker_key(STARVED.worker))

    view = pools.combined()["default"]

    assert [f.worker for f in view.workers] == [CALM.worker]
    assert view.stopped == (STARVED.worker,)
    assert "stopped publishing: web-1:101" in view.text
    assert not view.warns


def test_the_page_shows_the_alias_up_but_its_pool_as_a_warning(
    staff_client: Client, starved_worker
) -> None:
    html = staff_client.get("/admin/db-health/").content.decode()

    row = html[html.index('data-alias="default"') :].split("</tr>")[0]
    assert 'data-status="up"' in html[html.index('id="alias-default"') - 1 :][:200]
    assert "dbhealth-badge-warn" in row
    assert "pool exhausted: 3 request(s) waiting for a connection" in row
    assert "2 of 4 in use" in row
    assert 'data-verdict="warn"' in html


def test_health_details_carry_the_pool_and_anonymous_callers_its_status(
    client: Client, settings, starved_worker
) -> None:
    bearer = {"Authorization": f"Bearer {settings.DBHEALTH['TOKEN']}"}

    detailed = client.get("/health/", headers=bearer).json()
    anonymous = client.get("/health/").json()

    (entry,) = detailed["checks"]["default:connections"]
    assert detailed["status"] == "warn"
    assert detailed["checks"]["default:responseTime"][0]["probe"] == "up"
    assert entry["status"] == "warn" and entry["observedValue"] == 2
    assert entry["pool"]["requestsWaiting"] == 3
    assert [w["worker"] for w in entry["pool"]["workers"]] == ["web-1:101", "web-1:102"]
    assert "pool" not in anonymous["checks"]["default:connections"][0]
    assert anonymous["checks"]["default:connections"][0]["status"] == "warn"


def test_dbhealth_warns_about_the_pool(capsys, starved_worker) -> None:
    with pytest.raises(SystemExit) as exited:
        call_command("dbhealth", "--alias", "default")

    out = capsys.readouterr().out
    assert exited.value.code == 1
    assert "default pool: 2 of 4 in use, 1 idle, 3 waiting, over 2 worker(s)" in out
    assert "WARNING: default pool exhausted" in out


def test_metrics_give_the_pool_under_opentelemetry_names(
    client: Client, settings, starved_worker
) -> None:
    bearer = {"Authorization": f"Bearer {settings.DBHEALTH['TOKEN']}"}
    text = client.get("/metrics", headers=bearer).content.decode()

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("db_client_connection_count", (("alias", "default"), ("state", "used")))] == 2
    assert samples[("db_client_connection_count", (("alias", "default"), ("state", "idle")))] == 1
    assert samples[("db_client_connection_pending_requests", (("alias", "default"),))] == 3
    assert samples[("db_client_connection_max", (("alias", "default"),))] == 4
    assert samples[("dbhealth_pool_workers", (("alias", "default"),))] == 2


SLOW = PoolFigures(
    alias="default", worker="web-1:103", size=2, available=2, requests_waiting=0,
    min_size=1, max_size=2, requests=90, wait_ms=5_000, queued=9,
    recent_requests=10, recent_queued=4, recent_wait_ms=3_000, recent_seconds=3.3,
)  # fmt: skip


def test_a_pool_whose_requests_waited_long_warns_with_the_wait(
    client: Client, settings, monkeypatch, capsys
) -> None:
    monkeypatch.setattr(pools, "pooled_aliases", lambda: {"default"})
    monkeypatch.setattr(workers, "_publisher_pid", os.getpid())
    pools.publish([SLOW], worker=SLOW.worker)
    pools.publish([CALM], worker=CALM.worker)
    bearer = {"Authorization": f"Bearer {settings.DBHEALTH['TOKEN']}"}

    view = pools.combined()["default"]
    (entry,) = client.get("/health/", headers=bearer).json()["checks"]["default:connections"]
    with pytest.raises(SystemExit) as exited:
        call_command("dbhealth", "--alias", "default")

    # 3000 ms over 10 requests of the slow worker; the calm one had none in its interval.
    assert view.slow_workers == (SLOW,)
    expected = (
        "default pool slow to lend: requests waited 300 ms on average for a connection over"
        " the last 3.3 s (4 of 10 queued; POOL_WAIT_WARN_MS is 100; worker web-1:103)"
    )
    assert view.problem == expected
    assert entry["status"] == "warn" and entry["output"] == expected
    assert entry["pool"]["averageWaitMs"] == 300
    assert exited.value.code == 1
    assert f"WARNING: {expected}" in capsys.readouterr().out

    settings.DBHEALTH = {**settings.DBHEALTH, "POOL_WAIT_WARN_MS": 300.0}
    assert not pools.combined()["default"].warns  # 300 ms is not longer than 300 ms


def test_the_recent_wait_is_the_difference_of_two_readings() -> None:
    before = PoolFigures("default", "w:1", 2, 0, 0, 1, 2, requests=40, wait_ms=900, queued=3)
    now = PoolFigures("default", "w:1", 2, 1, 0, 1, 2, requests=50, wait_ms=1_900, queued=5)
    replaced = PoolFigures("default", "w:1", 1, 1, 0, 1, 2, requests=4, wait_ms=10, queued=1)

    recent = now.since(before, 3.25)
    after_replacement = replaced.since(now, 3.0)

    assert (recent.recent_requests, recent.recent_queued, recent.recent_wait_ms) == (10, 2, 1000)
    assert recent.average_wait_ms == 100 and recent.recent_seconds == 3.25
    assert (after_replacement.recent_requests, after_replacement.recent_wait_ms) == (4, 10)
    assert now.since(now, 3.0).average_wait_ms is None  # no request: no average, no warning


def test_without_published_figures_no_alias_has_a_pool(client: Client) -> None:
    assert pools.combined() == {}
    assert "default:connections" not in client.get("/health/").json()["checks"]


def test_a_pool_opened_before_fork_is_reported_with_the_fix(add_alias, django_db_blocker) -> None:
    options = {**postgres_like()["OPTIONS"], "pool": {"min_size": 1, "max_size": 1}}
    # The server's own maintenance database: the pool only needs to connect.
    alias = add_alias("pooled", **postgres_like(NAME="postgres", OPTIONS=options))
    django_db_blocker.unblock()
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")
    reading, writing = os.pipe()
    try:
        child = os.fork()
        if child == 0:  # the child reports what it inherited, then leaves at once
            try:
                found = [f.opened_before_fork for f in pools.local_figures() if f.alias == alias]
                os.write(writing, json.dumps(found).encode())
            finally:
                os._exit(0)
        os.close(writing)
        os.waitpid(child, 0)
        with os.fdopen(reading) as pipe:
            inherited = json.loads(pipe.read())
        here = [f for f in pools.local_figures() if f.alias == alias]
    finally:
        connections[alias].close()
        connections[alias].close_pool()
        django_db_blocker.restore()

    assert inherited == [True]
    assert [f.opened_before_fork for f in here] == [False]
    view = pools.PoolView(alias, (PoolFigures(alias, "web-1:7", 1, 1, 0, 1, 1,
                                               opened_before_fork=True),))  # fmt: skip
    assert view.warns
    assert "opened before the process forked" in (view.problem or "")
    assert "close_pool()" in (view.problem or "")


def test_a_borrow_that_finds_the_pool_held_says_fresh_up_and_the_pool_not(
    real_pool: str, client: Client, settings, capsys
) -> None:
    pool = connections[real_pool].pool
    held = pool.getconn()
    try:
        started = time.monotonic()
        row = report.build([real_pool], deadline=Deadline.after(2.0), fresh=True).row(real_pool)
        elapsed = time.monotonic() - started
        bearer = {"Authorization": f"Bearer {settings.DBHEALTH['TOKEN']}"}
        document = client.get(f"/health/?alias={real_pool}", headers=bearer).json()
        with pytest.raises(SystemExit) as exited:
            call_command("dbhealth", "--alias", real_pool)
    finally:
        pool.putconn(held)

    expected = (
        "pooled: fresh connection up, the application's pool is not: no connection free"
        " within 1.5 s (1 of 1 in use) (worker "
    )
    assert row.result.status == "up" and row.verdict == "warn"
    assert row.pool is not None and row.pool.path_status == "exhausted"
    assert (row.pool.problem or "").startswith(expected)
    assert elapsed < 2.0 + 1.5  # the borrow waited within the answer's deadline
    (entry,) = document["checks"]["pooled:connections"]
    assert document["checks"]["pooled:responseTime"][0]["probe"] == "up"
    assert entry["status"] == "warn" and entry["output"].startswith(expected)
    assert entry["pool"]["appPath"] == "exhausted"
    assert exited.value.code == 1
    assert f"WARNING: {expected}" in capsys.readouterr().out
    assert pool.get_stats()["pool_available"] == 1  # nothing of the probe's kept


def test_a_lent_connection_the_server_killed_is_reported_then_replaced(real_pool: str) -> None:
    pool = connections[real_pool].pool
    lent = pool.getconn()
    backend = lent.info.backend_pid
    db = postgres_like()
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"],
        dbname="postgres", autocommit=True,
    ) as killer:  # fmt: skip
        killer.execute("SELECT pg_terminate_backend(%s)", [backend])
        give_up = time.monotonic() + 10
        gone = "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)"
        while not killer.execute(gone, [backend]).fetchone()[0]:
            assert time.monotonic() < give_up, "the backend outlived pg_terminate_backend"
            time.sleep(0.05)
    pool.putconn(lent)  # the pool cannot know yet: it holds the dead connection

    broken = report.build([real_pool], deadline=Deadline.after(2.0), fresh=True).row(real_pool)

    assert broken.result.status == "up" and broken.verdict == "warn"
    problem = broken.pool.problem if broken.pool else ""
    assert "fresh connection up, the application's pool is not: the connection it lent" in problem
    assert "psycopg.AdminShutdown: terminating connection due to administrator command" in problem
    assert "Set CONN_HEALTH_CHECKS = True: the pool then checks each connection" in problem
    give_up = time.monotonic() + 10
    while True:  # the pool replaces what the probe gave back broken
        again = report.build([real_pool], deadline=Deadline.after(2.0), fresh=True).row(real_pool)
        if again.pool is not None and again.pool.path_status == "ok":
            break
        assert time.monotonic() < give_up, again.pool
        time.sleep(0.1)
    assert again.verdict == "pass"
    assert "borrowed and answered in 1 of 1 worker(s)" in again.pool.text


def test_the_alias_page_lists_each_workers_pool_and_last_borrow() -> None:
    held = replace(
        STARVED,
        path_status="exhausted",
        path_text="no connection free within 1.5 s (2 of 2 in use)",
    )
    view = pools.PoolView("default", (held, CALM), fresh_up=True)
    row = report.AliasReport(result=result("default"), verdict="warn", is_critical=True, pool=view)

    html = render_to_string("dashboard/_app_connections.html", {"row": row, "show_details": True})

    assert 'data-worker="web-1:101" data-path-status="exhausted"' in html
    assert "no connection free within 1.5 s (2 of 2 in use)" in html
    assert (
        "default: fresh connection up, the application&#x27;s pool is not: no connection free"
        " within 1.5 s (2 of 2 in use) (worker web-1:101)"
    ) in html
