"""Faults between the probes and real servers: added latency, a black hole, a cut
connection, a refused port, and a PostgreSQL server killed with SIGKILL and started again.

The faults come from ``tests/faultproxy.py`` (a TCP proxy in front of the real server) and
from a PostgreSQL server the test starts and kills itself (``tests/pgcluster.py``). Every
test ends with no probe thread, proxy link or server session left over.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import InterfaceError, OperationalError, connections
from django.test import Client

from dashboard.conf import get_settings
from dashboard.probes import ProbeResult, probe, probe_all, wait_idle
from tests.conftest import (
    SLACK_SECONDS,
    mysql_like,
    mysql_sessions,
    postgres_like,
    postgres_sessions,
)
from tests.faultproxy import FaultProxy
from tests.pgcluster import Cluster, ClusterError, Server

# Long enough that half of it covers the scheduling stalls of a busy two-core machine.
DELAY_MS = 100.0
SAMPLES = 5
# The black-hole round's deadline: long enough that one deadline plus the slack stays
# below two deadlines, so the test still tells one from two.
TIMEOUT = 2.0
# Time the test thread has to switch to "cut" while a reply is held back in the proxy.
HOLD_MS = 500.0
VENDORS = [pytest.param(postgres_like, id="postgresql"), pytest.param(mysql_like, id="mariadb")]


def _port_of(like: Callable[..., dict[str, Any]]) -> int:
    return int(like()["PORT"])


def _least(results: list[ProbeResult], field: str) -> float:
    # On a shared machine noise only ever adds time: the least sample is the true cost.
    return min(float(getattr(result, field)) for result in results)


def settled_threads(timeout: float = 10.0) -> list[str]:
    """Names of the live threads other than the probe pool's, once no probe is in flight.

    The pool's workers are reused across rounds and bounded by MAX_PROBES.
    """
    assert wait_idle(timeout)
    names = [thread.name for thread in threading.enumerate()]
    assert names.count("dbhealth-probe") <= get_settings().max_probes
    return sorted(name for name in names if name != "dbhealth-probe")


def eventually(read: Callable[[], Any], expected: Any, timeout: float = 10.0) -> Any:
    """Poll ``read()`` until it returns ``expected`` or the deadline passes; the last value."""
    deadline = time.monotonic() + timeout
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def assert_clean_message(result: ProbeResult, canary: str) -> None:
    assert result.error, result
    assert "\n" not in result.error and "Traceback" not in result.error
    assert canary not in result.error
    assert len(result.error) <= 500


# --- delay ---------------------------------------------------------------------------------


@pytest.mark.parametrize("like", VENDORS)
def test_an_injected_delay_is_reported_once_per_round_trip(
    like: Callable[..., dict[str, Any]], add_alias: Any, fault_proxy: Any
) -> None:
    proxy: FaultProxy = fault_proxy(_port_of(like))
    alias = add_alias("delayed", **like(PORT=str(proxy.port)))

    # Baseline through the same proxy, so the only difference is the delay.
    direct = [probe(alias, timeout=5) for _ in range(SAMPLES)]
    proxy.set_mode("delay", ms=DELAY_MS)
    delayed = [probe(alias, timeout=5) for _ in range(SAMPLES)]

    assert {result.status for result in direct + delayed} == {"up"}
    assert proxy.wait_for(lambda p: len(p.links) == 2 * SAMPLES and not p.open_links())
    # The protocol makes the same round trips every time: the handshake's, then the query's.
    (round_trips,) = {link.replies for link in proxy.links}
    handshake_trips = round_trips - 1
    connect_added = _least(delayed, "connect_ms") - _least(direct, "connect_ms")
    query_added = _least(delayed, "query_ms") - _least(direct, "query_ms")
    latency_added = _least(delayed, "latency_ms") - _least(direct, "latency_ms")
    # Each is a whole number of delays. On a busy machine a scheduling stall can land in
    # either the direct or the delayed samples, so each may be off by up to half a delay:
    # never enough to count one round trip more or fewer.
    assert query_added == pytest.approx(DELAY_MS, abs=DELAY_MS / 2)
    assert connect_added == pytest.approx(handshake_trips * DELAY_MS, abs=DELAY_MS / 2)
    assert latency_added == pytest.approx(round_trips * DELAY_MS, abs=DELAY_MS / 2)


# --- black hole ----------------------------------------------------------------------------


def test_black_holed_servers_time_out_while_the_other_aliases_answer_with_true_latency(
    add_alias: Any, fault_proxy: Any, no_stragglers: None
) -> None:
    healthy = ["default", "second_db", "local"]
    proxies: dict[str, FaultProxy] = {}
    for like in (postgres_like, mysql_like):
        proxy = fault_proxy(_port_of(like))
        proxies[add_alias(f"{like.__name__}_blackholed", **like(PORT=str(proxy.port)))] = proxy
    pg_before, maria_before = postgres_sessions(), mysql_sessions()
    rounds = [probe_all(healthy) for _ in range(SAMPLES)]
    threads = settled_threads()  # after a round: the process's own workers have started
    slowest = {
        alias: max(r.latency_ms or 0 for rnd in rounds for r in rnd if r.alias == alias)
        for alias in healthy
    }
    for proxy in proxies.values():
        proxy.set_mode("blackhole")

    started = time.monotonic()
    results = {result.alias: result for result in probe_all(timeout=TIMEOUT)}
    elapsed = time.monotonic() - started

    # Two black holes cost one deadline, not two (the slack stays below a second deadline).
    assert TIMEOUT - 0.1 <= elapsed < TIMEOUT + SLACK_SECONDS < 2 * TIMEOUT
    for alias in proxies:
        assert results[alias].status == "timeout"
        # The driver's own bound (mysqlclient's whole seconds, psycopg's connect_timeout)
        # may fire right at the deadline on a busy machine: the same words, its own beside.
        error = results[alias].error or ""
        assert error.startswith("no answer within 2 s"), error
    for alias in healthy:
        assert results[alias].status == "up", results[alias].error
        measured = results[alias].latency_ms or 0.0
        # Against the slowest of the rounds just before, which carry the machine's load.
        assert measured <= 2 * slowest[alias] + 25, (alias, measured, slowest[alias])

    # The stragglers end by their driver timeouts; the black hole never reached a server,
    # so no session was opened anywhere. Then the aliases recover on their own.
    assert settled_threads() == threads
    assert eventually(postgres_sessions, pg_before) == pg_before
    assert eventually(mysql_sessions, maria_before) == maria_before
    for proxy in proxies.values():
        assert proxy.links and all(link.upstream is None for link in proxy.links)
        proxy.set_mode("pass")
    assert {result.status for result in probe_all()} == {"up"}
    # Each straggler closed its socket when it ended, not at some later garbage collection.
    for proxy in proxies.values():
        assert proxy.wait_for(lambda p: p.links[0].closed), proxy.target


# --- cut -----------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["handshake", "query"])
@pytest.mark.parametrize("like", VENDORS)
def test_a_connection_cut_mid_probe_is_down_and_the_next_probe_recovers(
    like: Callable[..., dict[str, Any]], phase: str, add_alias: Any, fault_proxy: Any, canary: str
) -> None:
    proxy: FaultProxy = fault_proxy(_port_of(like))
    alias = add_alias("cut", **like(PORT=str(proxy.port)))
    session_count = postgres_sessions if like is postgres_like else mysql_sessions
    sessions_before = session_count()
    assert probe(alias).status == "up"
    assert proxy.wait_for(lambda p: not p.open_links())
    # The query is the client's last message that gets an answer (the one after says goodbye).
    cut_at = 1 if phase == "handshake" else proxy.links[0].requests - 1

    # Hold every reply back, and cut while the probe waits for the one to message `cut_at`.
    proxy.set_mode("delay", ms=HOLD_MS)
    outcome: list[ProbeResult] = []
    prober = threading.Thread(target=lambda: outcome.append(probe(alias, timeout=10)))
    prober.start()
    assert proxy.wait_for(lambda p: len(p.links) == 2 and p.links[1].requests >= cut_at)
    proxy.set_mode("cut")
    prober.join(10)
    proxy.set_mode("pass")
    recovered = probe(alias)

    (result,) = outcome
    assert_clean_message(result, canary)
    assert re.search(r"closed|lost connection", result.error or "", re.IGNORECASE)
    if phase == "query":
        assert result.connect_ms is not None  # it failed after connecting, as intended
    assert result.status == "down", (result.status, result.error)
    assert recovered.status == "up"
    assert eventually(session_count, sessions_before) == sessions_before


# --- refused -------------------------------------------------------------------------------


@pytest.mark.parametrize("like", VENDORS)
def test_a_refused_port_is_down_at_once_and_up_again_when_it_listens(
    like: Callable[..., dict[str, Any]], add_alias: Any, fault_proxy: Any, canary: str
) -> None:
    proxy: FaultProxy = fault_proxy(_port_of(like))
    alias = add_alias("refusing", **like(PORT=str(proxy.port)))

    proxy.set_mode("refuse")
    refused = probe(alias)
    proxy.set_mode("pass")
    recovered = probe(alias)

    assert refused.status == "down"
    assert (refused.total_ms or 0) < 1000
    assert re.search(r"refused|can't connect", refused.error or "", re.IGNORECASE)
    assert_clean_message(refused, canary)
    assert recovered.status == "up"


# --- a PostgreSQL server killed with SIGKILL and started again -----------------------------


@pytest.fixture
def scratch_postgres() -> Iterator[Server]:
    try:
        cluster = Cluster("dbhealth-scratch-pg-")
    except ClusterError:
        pytest.fail(
            "The fault tests need PostgreSQL's server binaries (apt-get install postgresql)."
        )
    try:
        server = cluster.server("data")
        server.initdb()
        server.start()
        yield server
    finally:
        cluster.stop()


def _page_status(client: Client, alias: str) -> str:
    response = client.get("/admin/db-health/")
    assert response.status_code == 200
    match = re.search(rf'data-alias="{alias}" data-status="(\w+)"', response.content.decode())
    return match.group(1) if match else "missing"


def _health_status(client: Client, alias: str) -> str:
    """What ``/health/`` tells a bearer-token caller about the alias's probe."""
    token = str(settings.DBHEALTH["TOKEN"])
    response = client.get(
        "/health/", {"alias": alias}, headers={"Authorization": f"Bearer {token}"}
    )
    (entry,) = response.json()["checks"][f"{alias}:responseTime"]
    return str(entry["probe"])


def _command_status(alias: str) -> str:
    """What ``manage.py dbhealth --json --alias`` says about the alias."""
    out = io.StringIO()
    with contextlib.suppress(SystemExit):  # exit 1 (WARNING) while it is down
        call_command("dbhealth", "--json", "--alias", alias, stdout=out)
    (entry,) = json.loads(out.getvalue())["checks"][f"{alias}:responseTime"]
    return str(entry["probe"])


def _backend_pid(alias: str) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def test_a_killed_postgresql_is_reported_down_then_up_and_the_site_reconnects(
    scratch_postgres: Server,
    add_alias: Any,
    staff_client: Client,
    canary: str,
    django_db_blocker: Any,
) -> None:
    server = scratch_postgres
    # The site's own persistent connections: one with Django's health checks, one without.
    checked = add_alias(
        "scratch", **server.alias_settings(CONN_MAX_AGE=600, CONN_HEALTH_CHECKS=True)
    )
    unchecked = add_alias("scratch_unchecked", **server.alias_settings(CONN_MAX_AGE=600))
    pg_before, maria_before = postgres_sessions(), mysql_sessions()
    # Django's test case refuses connections to aliases it did not know when the test began;
    # unblock() lets this test's own aliases connect the way a site's would.
    with django_db_blocker.unblock():
        try:
            first_pid = _backend_pid(checked)
            _backend_pid(unchecked)
            for alias in (checked, unchecked):
                connections[alias].close_if_unusable_or_obsolete()  # request_finished: kept open
            assert server.client_sessions() == 2
            assert probe(checked).status == "up"
            assert _page_status(staff_client, checked) == "up"
            assert _health_status(staff_client, checked) == "up"
            assert _command_status(checked) == "up"
            threads = settled_threads()  # every interface has run once: the steady state

            server.kill()

            down = probe(checked)
            assert down.status == "down"
            assert_clean_message(down, canary)
            assert "refused" in (down.error or "")
            # The page is served from results at most CACHE_TTL old: down shortly, never a 500.
            assert eventually(lambda: _page_status(staff_client, checked), "down") == "down"
            assert eventually(lambda: _health_status(staff_client, checked), "down") == "down"
            assert _command_status(checked) == "down"  # the command never reads the cache

            server.start()

            assert probe(checked).status == "up"
            assert eventually(lambda: _page_status(staff_client, checked), "up") == "up"
            assert eventually(lambda: _health_status(staff_client, checked), "up") == "up"
            assert _command_status(checked) == "up"
            # The next request: with CONN_HEALTH_CHECKS the stale connection is replaced unseen ...
            connections[checked].close_if_unusable_or_obsolete()
            assert _backend_pid(checked) != first_pid
            # ... without them the first query on it fails, and only the request after recovers.
            connections[unchecked].close_if_unusable_or_obsolete()
            with pytest.raises((OperationalError, InterfaceError)):
                _backend_pid(unchecked)
            connections[unchecked].close_if_unusable_or_obsolete()
            _backend_pid(unchecked)
            assert server.client_sessions() == 2
        finally:
            for alias in (checked, unchecked):
                connections[alias].close()
    assert eventually(server.client_sessions, 0) == 0
    assert settled_threads() == threads
    assert postgres_sessions() == pg_before
    assert mysql_sessions() == maria_before
