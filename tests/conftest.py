"""Fixtures shared by every test: real servers, dead ports, silent listeners, extra aliases."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import MySQLdb
import psycopg
import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.test import Client

from dashboard import readiness
from dashboard.probes import ProbeResult, in_flight, probe_finished, wait_idle
from dashboard.results import forget_local
from tests.faultproxy import FaultProxy
from tests.servers import SilentListener, unused_port

# What a timing assertion allows on top of the bound the product promises: the suite
# runs on two cores shared with other work, where a thread may wait a second for a core.
SLACK_SECONDS = 1.5


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Each test starts with no cached probe results (nor readiness) from the one before."""
    readiness.flush()
    cache.clear()
    forget_local()
    yield
    readiness.flush()
    cache.clear()
    forget_local()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test runs against the test databases (probes read their names from settings)."""
    for item in items:
        if item.get_closest_marker("django_db") is None:
            item.add_marker(pytest.mark.django_db(databases="__all__"))


@pytest.fixture
def canary() -> str:
    return str(settings.CANARY_PASSWORD)


# --- counting probes -------------------------------------------------------------------


class ProbeCounter:
    """Counts the probes that really ran, per alias (``probe_finished`` is sent by each)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, sender: object, result: ProbeResult, **kwargs: object) -> None:
        with self._lock:
            self.counts[result.alias] += 1


@pytest.fixture
def probes() -> Iterator[ProbeCounter]:
    counter = ProbeCounter()
    probe_finished.connect(counter, weak=False)
    try:
        yield counter
    finally:
        probe_finished.disconnect(counter)


# --- addresses that misbehave ----------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused at once."""
    return unused_port()


@pytest.fixture
def silent_listener() -> Iterator[SilentListener]:
    """A loopback listener that accepts TCP connections and never answers."""
    listener = SilentListener()
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture
def silent_port(silent_listener: SilentListener) -> int:
    return silent_listener.port


# --- aliases added for one test ---------------------------------------------------------

AliasAdder = Callable[..., str]


@pytest.fixture
def add_alias() -> Iterator[AliasAdder]:
    """Add an alias to DATABASES for one test: ``add_alias("dead", ENGINE=..., PORT=...)``."""
    added: list[str] = []

    def add(alias: str, **config: Any) -> str:
        configured = connections.configure_settings({"default": {}, alias: config})
        connections.settings[alias] = configured[alias]
        added.append(alias)
        return alias

    yield add
    for alias in added:
        connections.settings.pop(alias, None)
        if hasattr(connections._connections, alias):
            delattr(connections._connections, alias)


def postgres_like(**overrides: Any) -> dict[str, Any]:
    """Settings of the real PostgreSQL alias, with some keys changed."""
    base = {k: v for k, v in settings.DATABASES["default"].items() if k != "TEST"}
    return {**base, "OPTIONS": dict(base.get("OPTIONS", {})), **overrides}


def mysql_like(**overrides: Any) -> dict[str, Any]:
    base = {k: v for k, v in settings.DATABASES["second_db"].items() if k != "TEST"}
    return {**base, "OPTIONS": dict(base.get("OPTIONS", {})), **overrides}


@pytest.fixture
def no_stragglers() -> Iterator[None]:
    """Fails a test that leaves a probe running after it ends (waits a bounded time)."""
    yield
    wait_idle(timeout=10)
    assert in_flight() == []


# --- server-side session counts ---------------------------------------------------------


def postgres_sessions() -> int:
    """Sessions on this run's test database, not counting the one asking."""
    db = settings.DATABASES["default"]
    with psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        user=db["USER"],
        password=db["PASSWORD"],
        dbname="postgres",
    ) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [db["NAME"]]
        ).fetchone()
        return int(row[0]) if row else 0


def mysql_sessions() -> int:
    """Sessions on this run's test database, not counting the one asking."""
    db = settings.DATABASES["second_db"]
    conn = MySQLdb.connect(
        host=db["HOST"], port=int(db["PORT"]), user=db["USER"], password=db["PASSWORD"]
    )
    try:
        cursor = conn.cursor()
        cursor.execute(
            "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = %s", [db["NAME"]]
        )
        return int(cursor.fetchone()[0])
    finally:
        conn.close()


def sessions_settled_to(expected: tuple[int, int], within: float = 10.0) -> tuple[int, int]:
    """(PostgreSQL, MariaDB) sessions of this run's test databases once they are back to
    ``expected``, or as they are after ``within`` seconds. A server lists a closed
    connection's session until its backend has exited, a moment after the client closed
    it (longer on a busy machine); a leaked connection stays listed."""
    give_up = time.monotonic() + within
    while True:
        found = (postgres_sessions(), mysql_sessions())
        if found == expected or time.monotonic() > give_up:
            return found
        time.sleep(0.05)


# --- users ------------------------------------------------------------------------------


@pytest.fixture
def staff_client(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("staff", password="pw-staff", is_staff=True)
    user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def plain_client(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("plain", password="pw-plain")
    client = Client()
    client.force_login(user)
    return client


# --- a proxy that injects faults between a probe and a real server -----------------------


@pytest.fixture
def fault_proxy() -> Iterator[Callable[[int], FaultProxy]]:
    """``fault_proxy(5432)`` -> a FaultProxy on 127.0.0.1 in front of that port; closed after."""
    proxies: list[FaultProxy] = []

    def start(target_port: int) -> FaultProxy:
        proxy = FaultProxy(int(target_port))
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.close()


@pytest.fixture
def real_pool(add_alias, django_db_blocker) -> Iterator[str]:
    """A PostgreSQL alias with Django's pool of one connection, opened in this process."""
    options = {**postgres_like()["OPTIONS"], "pool": {"min_size": 1, "max_size": 1, "timeout": 5}}
    alias = add_alias("pooled", **postgres_like(NAME="postgres", OPTIONS=options))
    django_db_blocker.unblock()
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
        connections[alias].close()  # back to the pool
        yield alias
    finally:
        connections[alias].close()
        connections[alias].close_pool()
        django_db_blocker.restore()
