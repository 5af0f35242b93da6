"""The installed app reads the site's own psycopg pool and borrows from it, on every Django line.

A pooled alias is added for each test, on the server's maintenance database (the pool only
needs to connect), and its pool closed after. Django 6.1 lets a site give the pool its own
``check``; 5.2 and 6.0 refuse it (``TypeError`` when the pool is made) and take only
``CONN_HEALTH_CHECKS``: both behaviours run, on the line that has them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import django
import psycopg
import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from psycopg_pool import ConnectionPool

from dashboard import pools, report
from dashboard.deadline import Deadline

TOKEN = {"Authorization": "Bearer adoption-metrics-token"}
CHECK_IN_OPTIONS = django.VERSION >= (6, 1)

AliasMaker = Callable[..., str]


def server_session() -> psycopg.Connection[Any]:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"],
        dbname="postgres", autocommit=True,
    )  # fmt: skip


@pytest.fixture
def pooled_alias(django_db_blocker: Any) -> Iterator[AliasMaker]:
    """``pooled_alias("name", CONN_HEALTH_CHECKS=True, check=...)``: a PostgreSQL alias
    with Django's pool of one connection; every one made is closed and removed after."""
    made: list[str] = []

    def make(alias: str, *, check: Any = None, **extra: Any) -> str:
        base = {k: v for k, v in settings.DATABASES["default"].items() if k != "TEST"}
        pool: dict[str, Any] = {"min_size": 1, "max_size": 1, "timeout": 5}
        if check is not None:
            pool["check"] = check
        options = {**base.get("OPTIONS", {}), "pool": pool}
        configured = connections.configure_settings(
            {"default": {}, alias: {**base, "NAME": "postgres", "OPTIONS": options, **extra}}
        )
        connections.settings[alias] = configured[alias]
        made.append(alias)
        return alias

    django_db_blocker.unblock()
    try:
        yield make
    finally:
        for alias in made:
            connections[alias].close()
            if alias in type(connections[alias])._connection_pools:
                connections[alias].close_pool()
            connections.settings.pop(alias, None)
            if hasattr(connections._connections, alias):
                delattr(connections._connections, alias)
        django_db_blocker.restore()


def open_pool(alias: str) -> ConnectionPool:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")
    connections[alias].close()  # back to the pool
    pool = connections[alias].pool
    assert isinstance(pool, ConnectionPool)
    return pool


def answer(alias: str) -> report.AliasReport:
    return report.build([alias], deadline=Deadline.after(2.0), fresh=True).row(alias)


def lend_a_killed_connection(pool: ConnectionPool) -> None:
    """Leaves in the pool a connection whose backend the server has terminated."""
    lent = pool.getconn()
    backend = lent.info.backend_pid
    with server_session() as server:
        server.execute("SELECT pg_terminate_backend(%s)", [backend])
        gone = "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)"
        give_up = time.monotonic() + 10
        while not server.execute(gone, [backend]).fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < give_up, "the backend outlived pg_terminate_backend"
            time.sleep(0.05)
    pool.putconn(lent)


def test_the_pools_figures_and_a_borrow_are_read_by_the_installed_app(
    pooled_alias: AliasMaker, client: Client
) -> None:
    alias = pooled_alias("pooled")
    open_pool(alias)

    row = answer(alias)
    document = client.get(f"/health/?alias={alias}", headers=TOKEN).json()

    assert row.result.status == "up" and row.verdict == "pass"
    assert row.pool is not None and (row.pool.size, row.pool.max_size) == (1, 1)
    assert row.pool.path_status == "ok"
    (entry,) = document["checks"][f"{alias}:connections"]
    assert entry["status"] == "pass" and entry["pool"]["appPath"] == "ok"
    assert [f.alias for f in pools.local_figures()] == [alias]


def test_a_held_pool_is_exhausted_while_the_fresh_probe_is_up(pooled_alias: AliasMaker) -> None:
    pool = open_pool(pooled_alias("held"))
    connection = pool.getconn()
    try:
        row = answer("held")
    finally:
        pool.putconn(connection)

    assert row.result.status == "up" and row.verdict == "warn"
    assert (row.pool.problem if row.pool else "").startswith(
        "held: fresh connection up, the application's pool is not: no connection free within"
        " 1.5 s (1 of 1 in use)"
    )


def test_without_a_check_the_killed_connection_fails_the_borrow_with_this_djangos_fix(
    pooled_alias: AliasMaker,
) -> None:
    pool = open_pool(pooled_alias("unchecked"))
    lend_a_killed_connection(pool)

    problem = (answer("unchecked").pool or pools.PoolView("", ())).problem or ""

    assert "the connection it lent failed: psycopg." in problem
    if CHECK_IN_OPTIONS:
        assert 'OPTIONS["pool"]["check"] = ConnectionPool.check_connection' in problem
    else:
        assert "Set CONN_HEALTH_CHECKS = True" in problem and "refuses a" in problem


def test_with_conn_health_checks_the_pool_replaces_the_killed_connection_unseen(
    pooled_alias: AliasMaker,
) -> None:
    pool = open_pool(pooled_alias("health_checked", CONN_HEALTH_CHECKS=True))
    lend_a_killed_connection(pool)

    row = answer("health_checked")

    assert row.pool is not None and row.pool.path_status == "ok", row.pool
    assert pool.get_stats()["connections_lost"] >= 1  # the check found it, the pool replaced it
    assert pools.check_fix("health_checked") == ""


@pytest.mark.skipif(not CHECK_IN_OPTIONS, reason="Django 6.1 takes a check in OPTIONS['pool']")
def test_a_check_in_the_pool_options_replaces_the_killed_connection(
    pooled_alias: AliasMaker,
) -> None:
    checked: list[int] = []

    def check(connection: psycopg.Connection[Any]) -> None:
        checked.append(connection.info.backend_pid)
        ConnectionPool.check_connection(connection)

    pool = open_pool(pooled_alias("option_checked", check=check))
    lend_a_killed_connection(pool)

    row = answer("option_checked")

    assert row.pool is not None and row.pool.path_status == "ok", row.pool
    assert len(checked) >= 2  # the killed connection, then the one that replaced it
    assert pools.check_fix("option_checked") == ""


@pytest.mark.skipif(CHECK_IN_OPTIONS, reason="before 6.1, Django refuses a check in OPTIONS")
def test_before_django_6_1_a_check_in_the_pool_options_is_refused(
    pooled_alias: AliasMaker,
) -> None:
    alias = pooled_alias("refused", check=ConnectionPool.check_connection)

    with pytest.raises(TypeError, match="check"):
        connections[alias].pool  # noqa: B018
