"""Persistent connections (CONN_MAX_AGE=60) under gunicorn with two workers of 4 threads,
against real PostgreSQL: each request thread notes its own connection, the workers
publish, /health/ combines; then the server kills every backend of the site."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gunicornsite import Site, forget_cache_prefix, serve, site_env


@pytest.fixture
def persistent_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    prefix = "wt-persistent-" + secrets.token_hex(4)
    yield site_env(
        tmp_path,
        DJANGO_SETTINGS_MODULE="tests.persistentsite.settings",
        PERSISTENTSITE_KEY_PREFIX=prefix,
        PERSISTENTSITE_APPLICATION_NAME=prefix,
    )
    forget_cache_prefix(prefix)


def admin_session() -> psycopg.Connection[Any]:
    return psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres",
                           autocommit=True)  # fmt: skip


def kept_of(site: Site) -> dict[str, Any]:
    status, body = site.get("/health/")
    assert status == 200, body
    document = json.loads(body)
    (entry,) = document["checks"]["default:connections"]
    return {"document": document, **entry}


def wait_for(site: Site, condition: Callable[[dict[str, Any]], bool], within: float) -> dict:
    give_up = time.monotonic() + within
    while True:
        entry = kept_of(site)
        if condition(entry):
            return entry
        assert time.monotonic() < give_up, json.dumps(entry, indent=1)
        time.sleep(0.1)


def open_ones(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in entry["persistent"]["connections"] if c["open"]]


def test_the_connections_age_then_show_the_kill_and_the_reconnection(persistent_env) -> None:
    name = persistent_env["PERSISTENTSITE_APPLICATION_NAME"]
    with serve(persistent_env, workers=2) as site, ThreadPoolExecutor(8) as clients:

        def touch_all() -> list[int]:
            return [status for status, _ in clients.map(lambda _: site.get("/touch/"), range(8))]

        def both_workers_usable(entry: dict[str, Any]) -> bool:
            touch_all()
            usable = [c for c in open_ones(entry) if c["usable"]]
            return len({c["worker"] for c in usable}) == 2

        young = wait_for(site, both_workers_usable, within=30)
        _, scraped = site.get("/metrics")
        first_oldest = max(c["ageSeconds"] for c in open_ones(young))
        older = wait_for(
            site,
            lambda e: max(c["ageSeconds"] for c in open_ones(e)) >= first_oldest + 1.5,
            within=10,
        )
        with admin_session() as admin:
            killed_at = time.time()
            backends = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                [name],
            ).fetchall()
            give_up = time.monotonic() + 10
            left = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            while admin.execute(left, [name]).fetchone()[0]:  # type: ignore[index]
                assert time.monotonic() < give_up, "backends outlived pg_terminate_backend"
                time.sleep(0.05)
        # Requests that do not use the connection end on the threads that hold one: each
        # re-checks it (at most once per POOL_TTL / 3) and finds it dead.
        dead = wait_for(site, lambda e: any(c["usable"] is False for c in open_ones(e)), 10)

        def reconnected(entry: dict[str, Any]) -> bool:
            touch_all()  # the first query on a dead connection fails; Django then closes it
            fresh = [c for c in open_ones(entry) if c["opened_at"] > killed_at and c["usable"]]
            return bool(fresh) and not any(c["usable"] is False for c in open_ones(entry))

        again = wait_for(site, reconnected, within=30)
        # A thread whose dead connection no request has met yet fails once more, then
        # reconnects: within a few rounds every thread answers again.
        give_up = time.monotonic() + 30
        while set(touch_all()) != {200}:
            assert time.monotonic() < give_up, "threads kept failing after the kill"

    assert young["status"] == "warn"  # CONN_MAX_AGE without CONN_HEALTH_CHECKS
    served = {
        (sample.name, sample.labels.get("usable")): sample.value
        for family in text_string_to_metric_families(scraped)
        for sample in family.samples
        if sample.labels.get("alias") == "default"
    }
    assert served[("dbhealth_persistent_connections", "usable")] >= 2  # one per worker at least
    assert served[("dbhealth_persistent_connection_max_age_seconds", None)] >= 0
    assert (
        "default keeps connections (CONN_MAX_AGE 60 s) without CONN_HEALTH_CHECKS"
        in (young["output"])
    )
    assert young["document"]["checks"]["default:responseTime"][0]["probe"] == "up"
    assert len(open_ones(older)) >= 2 and all(c["usable"] for c in open_ones(older))
    assert backends, "the site had no backend to kill"
    assert "persistent connection(s) not usable" in dead["output"]
    assert "the next request on that thread fails its first query" in dead["output"]
    assert dead["document"]["checks"]["default:responseTime"][0]["probe"] == "up"
    youngest_again = min(c["ageSeconds"] for c in open_ones(again))
    assert youngest_again < max(c["ageSeconds"] for c in open_ones(older))
