"""The probe scheduler against real servers: per-server and total limits, shared across
processes through Redis, a silent server dialled once, and work that cannot start in time.

Connections are counted where a server would see them: at a loopback proxy in front of
the real PostgreSQL (``tests/faultproxy.py``) or at a listener that never answers.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from dashboard.probes import probe_all, wait_idle
from tests.conftest import mysql_like, postgres_like
from tests.processes import run_together
from tests.servers import SilentListener
from tests.test_command import servers_env
from tests.test_results import REDIS_URL


def _tenants(add_alias: Any, port: int, count: int, prefix: str = "tenant") -> list[str]:
    """``count`` aliases of the real PostgreSQL test database, all behind ``port``."""
    return [
        add_alias(f"{prefix}{n:03d}", **postgres_like(HOST="127.0.0.1", PORT=str(port)))
        for n in range(count)
    ]


def test_a_server_never_gets_more_probe_connections_than_its_budget(
    add_alias, fault_proxy, settings, no_stragglers
) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "MAX_PROBES_PER_SERVER": 3, "MAX_PROBES": 16}
    proxy = fault_proxy(settings.DATABASES["default"]["PORT"])
    proxy.set_mode("delay", ms=20)  # probes overlap: a burst would open them all at once
    tenants = _tenants(add_alias, proxy.port, 24)

    results = probe_all(tenants, timeout=10)

    assert {result.status for result in results} == {"up"}
    assert proxy.accepted == 24
    assert proxy.peak_open <= 3


def test_one_process_opens_at_most_max_probes_connections_in_all(
    add_alias, fault_proxy, settings, no_stragglers
) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "MAX_PROBES_PER_SERVER": 8, "MAX_PROBES": 4}
    proxies = [fault_proxy(settings.DATABASES["default"]["PORT"]) for _ in range(4)]
    aliases = []
    for index, proxy in enumerate(proxies):
        proxy.set_mode("delay", ms=20)
        aliases += _tenants(add_alias, proxy.port, 6, prefix=f"server{index}_")

    results = probe_all(aliases, timeout=10)

    assert {result.status for result in results} == {"up"}
    workers = [t for t in threading.enumerate() if t.name == "dbhealth-probe"]
    assert len(workers) <= 4
    assert sum(proxy.accepted for proxy in proxies) == 24


def test_a_silent_server_is_dialled_once_however_many_aliases_it_holds(
    add_alias, settings, no_stragglers
) -> None:
    listener = SilentListener()
    try:
        aliases = _tenants(add_alias, listener.port, 10, prefix="silent")
        # Both rounds end before the first connect gives up (psycopg waits at least 2 s).
        first = probe_all(aliases, timeout=0.5)
        second = probe_all(aliases, timeout=0.5)
        assert wait_idle(timeout=10)
        dialled = len(listener.accepted)
    finally:
        listener.close()

    assert {result.status for result in first + second} == {"timeout"}
    assert dialled == 1  # the first alias's connect; the second round joined it
    errors = [result.error or "" for result in first]
    assert errors[0] == "no answer within 0.5 s"
    assert all("not dialled: the server has not answered" in error for error in errors[1:])


def test_work_that_cannot_start_by_the_deadline_is_never_started_and_says_queued(
    add_alias, fault_proxy, settings, no_stragglers
) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "MAX_PROBES_PER_SERVER": 1}
    proxy = fault_proxy(settings.DATABASES["default"]["PORT"])
    proxy.set_mode("delay", ms=150)  # one probe takes about half a second
    tenants = _tenants(add_alias, proxy.port, 6, prefix="slow")

    results = probe_all(tenants, timeout=1.0)
    assert wait_idle(timeout=10)

    statuses = [result.status for result in results]
    assert statuses.count("up") >= 1
    queued = [r for r in results if r.status == "timeout" and "queued" in (r.error or "")]
    assert queued, [r.error for r in results]
    # Nothing was dialled after the deadline: at most the probes that had started by then.
    assert proxy.accepted == len(tenants) - len(queued)


def test_mariadb_and_postgresql_budgets_are_separate(
    add_alias, fault_proxy, settings, no_stragglers
) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "MAX_PROBES_PER_SERVER": 2}
    pg = fault_proxy(settings.DATABASES["default"]["PORT"])
    maria = fault_proxy(settings.DATABASES["second_db"]["PORT"])
    for proxy in (pg, maria):
        proxy.set_mode("delay", ms=20)
    aliases = _tenants(add_alias, pg.port, 8, prefix="pg") + [
        add_alias(f"maria{n}", **mysql_like(HOST="127.0.0.1", PORT=str(maria.port)))
        for n in range(8)
    ]

    results = probe_all(aliases, timeout=10)

    assert {result.status for result in results} == {"up"}
    assert pg.peak_open <= 2 and maria.peak_open <= 2
    assert pg.accepted == maria.accepted == 8


SHARED_BUDGET_SCRIPT = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
import django

django.setup()
from django.db import connections
from django.test.utils import override_settings

from dashboard.probes import probe_all

base = {k: v for k, v in connections.settings["default"].items() if k != "TEST"}
aliases = []
for n in range(20):
    alias = f"tenant{n:02d}"
    connections.settings[alias] = {**base, "PORT": os.environ["PROXY_PORT"],
                                   "NAME": os.environ["DB_NAME"]}
    aliases.append(alias)
redis = {
    "BACKEND": "django.core.cache.backends.redis.RedisCache",
    "LOCATION": os.environ["REDIS_URL"],
    "KEY_PREFIX": os.environ["KEY_PREFIX"],
}
dbhealth = {**__import__("django.conf").conf.settings.DBHEALTH, "MAX_PROBES_PER_SERVER": 4}
with override_settings(CACHES={"default": redis}, DBHEALTH=dbhealth):
    print("ready", flush=True)
    sys.stdin.readline()
    results = probe_all(aliases, timeout=20)
print(json.dumps({"statuses": sorted({r.status for r in results}), "count": len(results)}))
"""


def test_processes_sharing_redis_share_one_budget_per_server(fault_proxy, settings) -> None:
    proxy = fault_proxy(settings.DATABASES["default"]["PORT"])
    proxy.set_mode("delay", ms=20)
    env = {
        **servers_env(),
        "REDIS_URL": REDIS_URL,
        "KEY_PREFIX": f"dbhealth-test-{uuid.uuid4().hex}",
        "PROXY_PORT": str(proxy.port),
        "DB_NAME": settings.DATABASES["default"]["NAME"],
    }

    reports = run_together(SHARED_BUDGET_SCRIPT, env, count=3, timeout=60)

    assert [report["statuses"] for report in reports] == [["up"]] * 3
    assert proxy.accepted == 60
    assert proxy.peak_open <= 4  # three processes, one budget of 4, not 12
