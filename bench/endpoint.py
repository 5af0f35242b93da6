"""Row 4: the cached ``/health/`` under load, served by gunicorn (2 workers, Redis cache).

gunicorn runs this project with the benchmark's settings and its three plain aliases
(PostgreSQL, MariaDB, SQLite). Load phases alternate between ``/health/live/`` (no
database, no cache) and ``/health/``, so both see the same machine. Pings are counted
on the server side: PostgreSQL's ``pg_stat_database.sessions`` for the benchmark's own
database, and for MariaDB (whose counters are server-wide, shared with every other
client) a counting relay in front of the server that only gunicorn's alias goes through.
SQLite has no server to count on.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.load import get_status, hammer
from bench.report import Line
from bench.servers import CountingProxy, SessionCounter
from tests.servers import unused_port

ROOT = Path(__file__).resolve().parent.parent
RATE_TARGET = 0.8


def _start_gunicorn(port: int, mysql_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DBHEALTH_BENCH_ALIAS_SET": "healthy",
        "DBHEALTH_BENCH_MYSQL_URL": mysql_url,
    }
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application",
        "--workers", "2", "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def stop_gunicorn(server: subprocess.Popen[bytes], wait: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not gone within ``wait`` seconds."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def serving(port: int, limit: float = 20.0) -> bool:
    """Whether the server on ``port`` answers ``/health/live/`` within ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if get_status(port, "/health/live/", timeout=1) == 200:
            return True
        time.sleep(0.1)
    return False


def _not_available(reason: str) -> list[Line]:
    return [Line("4", "cached `/health/` under load (gunicorn, 2 workers, Redis)", "", "",
                 f"not available: {reason}", "", None)]  # fmt: skip


def run(count: SessionCounter, settings: Any, budget: float) -> list[Line]:
    from django.core.cache import caches
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("dashboard:health")
    except NoReverseMatch:
        return _not_available("this project has no /health/ endpoint yet")
    caches["default"].clear()
    mysql = urlsplit(settings.MYSQL_URL)
    relay = CountingProxy(mysql.port or 3306)
    relayed = mysql._replace(netloc=mysql.netloc.replace(f":{mysql.port}", f":{relay.port}"))
    port = unused_port()
    server = _start_gunicorn(port, urlunsplit(relayed))
    try:
        if not serving(port):
            return _not_available("gunicorn did not start")
        return _measure(port, count, relay, settings, phase=max(2.0, budget / 5))
    finally:
        stop_gunicorn(server)
        relay.close()


def _pings(
    port: int, count: SessionCounter, relay: CountingProxy, seconds: float, ttl: float
) -> tuple[int, int, float]:
    """Pings (PostgreSQL, MariaDB) during ``seconds`` of continuous load on ``/health/``.

    The window starts just after a refresh (the relay sees MariaDB being pinged), so it
    holds whole TTL periods: a cache that works pings each alias once per TTL, at most.
    """
    seen = relay.accepted
    deadline = time.monotonic() + 2 * ttl + 5
    while relay.accepted == seen and time.monotonic() < deadline:
        get_status(port, "/health/")
    time.sleep(0.2)  # the refresh's PostgreSQL backend reports its session when it exits
    pg_before, maria_before = count.postgres_sessions_started(), relay.accepted
    _, elapsed = hammer(port, "/health/", seconds)
    time.sleep(0.5)
    pg_pings = count.postgres_sessions_started() - pg_before
    return pg_pings, relay.accepted - maria_before, elapsed


def _measure(
    port: int, count: SessionCounter, relay: CountingProxy, settings: Any, phase: float
) -> list[Line]:
    ttl = float(settings.DBHEALTH["CACHE_TTL"])
    aliases = 3  # the plain PostgreSQL, MariaDB and SQLite aliases gunicorn serves
    for path in ("/health/live/", "/health/"):
        hammer(port, path, 1.0)  # warm both workers, imports and the cache
    rates: dict[str, list[float]] = {"/health/live/": [], "/health/": []}
    failures: dict[str, int] = {}
    for _ in range(3):
        for path in rates:
            statuses, seconds = hammer(port, path, phase)
            rates[path].append(statuses[200] / seconds)
            failures[path] = failures.get(path, 0) + sum(n for s, n in statuses.items() if s != 200)
    pg_pings, maria_pings, window = _pings(port, count, relay, 5 * ttl, ttl)
    live = statistics.median(rates["/health/live/"])
    health = statistics.median(rates["/health/"])
    ratio = health / live
    pg_rate, maria_rate = pg_pings / window, maria_pings / window
    per_alias_limit = 1 / ttl
    data = {
        "rates_per_s": rates,
        "non_200": failures,
        "ping_window_s": round(window, 2),
        "postgres_pings": pg_pings,
        "mariadb_pings": maria_pings,
        "ttl_s": ttl,
    }
    return [
        Line(
            row="4",
            benchmark="cached `/health/` under load (gunicorn, 2 workers, Redis, 8 clients): "
            "requests/s",
            dbhealth=f"/health/ {health:.0f}/s",
            reference=f"/health/live/ {live:.0f}/s",
            result=f"{ratio:.2f}× (non-200: {sum(failures.values())})",
            target=f"≥ {RATE_TARGET}×",
            holds=ratio >= RATE_TARGET and not any(failures.values()),
            data=data,
        ),
        Line(
            row="4",
            benchmark=f"database pings/s under continuous `/health/` load ({aliases} aliases, "
            f"TTL {ttl:g} s, {window:.0f} s window)",
            dbhealth=f"PostgreSQL {pg_rate:.2f}/s ({pg_pings} pings)",
            reference=f"MariaDB {maria_rate:.2f}/s ({maria_pings} pings)",
            result=f"≈ {(pg_rate + maria_rate) / 2 * aliases:.2f}/s for {aliases} aliases",
            target=f"≤ {aliases / ttl:g}/s ({per_alias_limit:g}/s per alias)",
            holds=max(pg_rate, maria_rate) <= per_alias_limit,
            data=data,
        ),
    ]
