"""Settings for ``make bench``: the project's settings with the benchmark's own aliases.

Every alias points at a database the benchmark creates for itself (``dbhealth_bench``)
on the machine's real servers, so server-side session counts see only the benchmark.
The PostgreSQL URL carries a password, as a production URL would; the local server
uses trust authentication, which never asks for it, so neither dbhealth nor the raw
driver pays for SCRAM here (both would pay the same).

Silent listeners (accept TCP, never answer) and a refusing port are set up by the
runner before Django is; their ports arrive in ``DBHEALTH_BENCH_SILENT_PORTS`` and
``DBHEALTH_BENCH_CLOSED_PORT`` so that subprocesses (the peers, gunicorn) see the same
aliases. ``DBHEALTH_BENCH_ALIAS_SET=healthy`` keeps only the three plain aliases.
"""

from __future__ import annotations

import os

from config.env_databases import parse_database_url
from config.settings import *  # noqa: F403
from config.settings import BASE_DIR, DBHEALTH

BENCH_DB = "dbhealth_bench"
POSTGRES_URL = os.environ.get(
    "DBHEALTH_BENCH_POSTGRES_URL",
    f"postgres://postgres:bench-Pw-9fK2@127.0.0.1:5432/{BENCH_DB}",
)
MYSQL_URL = os.environ.get("DBHEALTH_BENCH_MYSQL_URL", f"mysql://root@127.0.0.1:3306/{BENCH_DB}")
REDIS_URL = os.environ.get("DBHEALTH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
SQLITE_PATH = BASE_DIR / "var" / "bench.sqlite3"

# Aliases of each kind for the 16-alias round; the first of each is the plain one.
POSTGRES_ALIASES = ["default", *(f"postgres_{n}" for n in range(2, 7))]
MYSQL_ALIASES = ["mariadb", *(f"mariadb_{n}" for n in range(2, 6))]
SQLITE_ALIASES = ["sqlite", "sqlite_2", "sqlite_3"]
HEALTHY_ALIASES = ["default", "mariadb", "sqlite"]


def _ports(variable: str) -> list[int]:
    return [int(port) for port in os.environ.get(variable, "").split(",") if port.strip()]


def _bench_databases() -> dict[str, dict[str, object]]:
    postgres = parse_database_url("DBHEALTH_BENCH_POSTGRES_URL", POSTGRES_URL)
    mysql = parse_database_url("DBHEALTH_BENCH_MYSQL_URL", MYSQL_URL)
    if os.environ.get("DBHEALTH_BENCH_DRIVER_TIMEOUTS") == "1":
        # What a careful site adds so that its own connections cannot hang forever.
        postgres["OPTIONS"] = {"connect_timeout": 1}
        mysql["OPTIONS"] = {"connect_timeout": 1, "read_timeout": 1, "write_timeout": 1}
    sqlite = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(SQLITE_PATH)}
    if os.environ.get("DBHEALTH_BENCH_ALIAS_SET") == "healthy":
        return {"default": postgres, "mariadb": mysql, "sqlite": sqlite}
    databases: dict[str, dict[str, object]] = {}
    databases.update({alias: dict(postgres) for alias in POSTGRES_ALIASES})
    databases.update({alias: dict(mysql) for alias in MYSQL_ALIASES})
    databases.update({alias: dict(sqlite) for alias in SQLITE_ALIASES})
    # Black-holed servers (accept TCP, never answer) and a port that refuses at once.
    silent = _ports("DBHEALTH_BENCH_SILENT_PORTS")
    for (alias, base), port in zip(
        [("silent_postgres", postgres), ("silent_mariadb", mysql)], silent, strict=False
    ):
        databases[alias] = {**base, "PORT": port}
    refused = _ports("DBHEALTH_BENCH_CLOSED_PORT")
    if refused:
        databases["refused_postgres"] = {**postgres, "PORT": refused[0]}
    return databases


DATABASES = _bench_databases()
DATABASE_ROUTERS: list[str] = []
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
}
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
LOGGING = {"version": 1, "disable_existing_loggers": False}
# No ROUTES: the project's demo pin names second_db, which the benchmark does not have
# (the app refuses to load with a route to an unknown alias).
DBHEALTH = {
    **DBHEALTH,
    "TIMEOUT": 1.0,
    "CACHE_TTL": 2.0,
    "CRITICAL_ALIASES": ["default"],
    "ROUTES": {},
}
