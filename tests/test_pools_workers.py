"""The application's own pool under gunicorn with two workers, against real PostgreSQL.

``tests/poolsite`` gives ``default`` Django's pool (min 1, max 2 per worker) and a view
that holds a pool connection in ``pg_sleep``; the workers share a Redis cache.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gunicornsite import ROOT, Site, forget_cache_prefix, serve, site_env

POOL_TTL = 3.0


@pytest.fixture
def pool_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    prefix = "wt-pools-" + secrets.token_hex(4)
    yield site_env(
        tmp_path,
        DJANGO_SETTINGS_MODULE="tests.poolsite.settings",
        POOLSITE_KEY_PREFIX=prefix,
        POOLSITE_POOL_TTL=str(POOL_TTL),
    )
    forget_cache_prefix(prefix)


def health(site: Site) -> dict[str, Any]:
    status, body = site.get("/health/")
    assert status == 200, body
    return dict(json.loads(body))


def pool_of(document: dict[str, Any]) -> dict[str, Any] | None:
    entries = document["checks"].get("default:connections")
    return entries[0] if entries else None


def wait_for(site: Site, condition: Callable[[dict[str, Any]], bool], within: float) -> dict:
    """Poll /health/ until ``condition`` holds of its pool entry (bounded)."""
    give_up = time.monotonic() + within
    while True:
        document = health(site)
        entry = pool_of(document)
        if entry is not None and condition(entry):
            return document
        assert time.monotonic() < give_up, json.dumps(document, indent=1)
        time.sleep(0.1)


def both_workers_use_their_pool(site: Site) -> dict[str, Any]:
    def workers(entry: dict[str, Any]) -> bool:
        # Published twice at least (a window of readings), not only the serving worker's
        # own figures that it adds to its answer before it first publishes them.
        listed = entry["pool"]["workers"]
        return len(listed) == 2 and all(w["recent_seconds"] > 0 for w in listed)

    give_up = time.monotonic() + 30
    with ThreadPoolExecutor(6) as requests:
        while True:
            # Requests at once reach both workers; each opens its pool on first use.
            list(requests.map(lambda _: site.get("/hold/?seconds=0.2"), range(6)))
            entry = pool_of(health(site))
            if entry is not None and workers(entry):
                return entry
            assert time.monotonic() < give_up, entry


def test_a_pool_held_in_slow_queries_warns_while_the_fresh_probe_stays_up(pool_env) -> None:
    # 8 threads a worker: even if every holder lands on one worker, /health/ finds a thread.
    with serve(pool_env, workers=2, threads=8) as site:
        both_workers_use_their_pool(site)
        # The warm-up's own requests may have queued: wait until both workers republish
        # (their wait may stay in the last minute's average: only "exhausted" must go).
        idle = pool_of(
            wait_for(site, lambda e: "exhausted" not in e.get("output", ""), POOL_TTL + 5)
        )
        assert idle is not None
        assert idle["pool"]["maxSize"] == 4  # 2 per worker, summed
        assert idle["pool"]["requestsWaiting"] == 0

        with ThreadPoolExecutor(5) as holders:
            # More holders than the 4 connections of both pools: 3 at least share a worker
            # and one of them must wait. Long enough that the command, started once a wait
            # shows, still sees it; if all 5 share a worker, the last is served after 2
            # holds (12 s), within the pool's 20 s timeout and the client's own 40 s.
            hold = functools.partial(site.get, "/hold/?seconds=6", timeout=40)
            held = [holders.submit(hold) for _ in range(5)]
            starved = wait_for(site, lambda e: e["pool"]["requestsWaiting"] > 0, within=6)
            command = subprocess.run(
                [sys.executable, "manage.py", "dbhealth", "--json"],
                cwd=ROOT,
                env=pool_env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert [future.result()[0] for future in held] == [200] * 5
        # The queued holders waited seconds for a connection: the next readings say so.
        slow = wait_for(site, lambda e: "slow to lend" in e.get("output", ""), POOL_TTL + 5)

    entry = pool_of(starved)
    assert starved["status"] == "warn"
    assert starved["checks"]["default:responseTime"][0]["probe"] == "up"
    assert entry["status"] == "warn"
    assert "pool exhausted" in entry["output"] and "waiting for a connection" in entry["output"]
    assert entry["pool"]["inUse"] >= 2
    assert any("pool exhausted" in note for note in starved["notes"])

    assert command.returncode == 1, command.stderr  # WARNING
    document = json.loads(command.stdout)
    assert document["checks"]["default:responseTime"][0]["probe"] == "up"
    assert document["checks"]["default:connections"][0]["status"] == "warn"

    waited = pool_of(slow)
    assert slow["status"] == "warn" and waited["status"] == "warn"
    assert (
        "requests waited" in waited["output"] and "on average for a connection" in waited["output"]
    )
    assert waited["pool"]["averageWaitMs"] > 100


def test_a_worker_that_exits_drops_out_within_its_ttl(pool_env) -> None:
    with serve(pool_env, workers=2) as site:
        entry = both_workers_use_their_pool(site)
        gone = entry["pool"]["workers"][0]["worker"]
        pid = int(gone.rsplit(":", 1)[1])
        assert pid != site.server.pid and pid != os.getpid()
        os.kill(pid, signal.SIGTERM)
        stopped_at = time.monotonic()

        after = wait_for(
            site, lambda e: gone in e["pool"]["stoppedPublishing"], within=POOL_TTL + 5
        )
        elapsed = time.monotonic() - stopped_at

    stayed = entry["pool"]["workers"][1]["worker"]
    remaining = pool_of(after)["pool"]
    assert [w["worker"] for w in remaining["workers"]] == [stayed]
    assert remaining["maxSize"] == 2  # the sum is the live worker's alone
    assert elapsed < POOL_TTL + 5


def test_a_worker_whose_pool_is_held_says_the_fresh_probe_is_up_and_its_pool_not(
    pool_env,
) -> None:
    with serve(pool_env, workers=2) as site:
        both_workers_use_their_pool(site)
        wait_for(site, lambda e: e["pool"]["appPath"] == "ok", POOL_TTL + 5)

        with ThreadPoolExecutor(4) as holders:
            # 4 holders over 2 workers: one worker at least has both of its 2 held, and no
            # holder queues behind another for longer than one hold.
            held = [holders.submit(site.get, "/hold/?seconds=8") for _ in range(4)]
            starved = wait_for(site, lambda e: e["pool"]["appPath"] == "exhausted", within=6)
            _, scraped = site.get("/metrics")
            command = subprocess.run(
                [sys.executable, "manage.py", "dbhealth", "--alias", "default"],
                cwd=ROOT, env=pool_env, capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert [future.result()[0] for future in held] == [200] * 4

    entry = pool_of(starved)
    words = "default: fresh connection up, the application's pool is not: no connection free"
    assert starved["checks"]["default:responseTime"][0]["probe"] == "up"
    assert starved["status"] == "warn" and entry["status"] == "warn"
    assert words in entry["output"] and "(2 of 2 in use)" in entry["output"]
    held_workers = [w for w in entry["pool"]["workers"] if w["path_status"] == "exhausted"]
    assert held_workers and all(w["inUse"] == 2 for w in held_workers)
    assert command.returncode == 1, command.stderr
    assert words in command.stdout
    path = {
        sample.labels["status"]: sample.value
        for family in text_string_to_metric_families(scraped)
        if family.name == "dbhealth_pool_path_workers"
        for sample in family.samples
        if sample.labels["alias"] == "default"
    }
    assert path["exhausted"] >= 1 and set(path) == {"ok", "exhausted", "failed"}
