"""Incident snapshots: what the server was doing when an alias turned down or slow."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.test import Client

from dashboard import history, incidents, report, sharedcache
from dashboard.activity import Activity, Session, TreeRow
from dashboard.deadline import Deadline
from dashboard.history import Sample
from dashboard.incidents import Snapshot, turned
from dashboard.probes import ProbeResult
from dashboard.readiness import Readiness
from tests.conftest import postgres_like
from tests.faultproxy import FaultProxy
from tests.pgcluster import wait_until
from tests.test_activity import _pg_connect, _pg_waiting, pg_table  # noqa: F401 (a fixture)

WARN_MS = 100.0
AT = datetime(2026, 12, 1, 1, 2, 3, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _examined_afresh() -> None:
    incidents.forget_local()


def _result(status: str = "up", latency_ms: float = 5.0, at: datetime = AT) -> ProbeResult:
    up = status == "up"
    return ProbeResult(
        alias="default",
        vendor="postgresql",
        engine="django.db.backends.postgresql",
        host="127.0.0.1",
        port=5432,
        name="db",
        status=status,  # type: ignore[arg-type]
        connect_ms=latency_ms - 1 if up else None,
        query_ms=1.0 if up else None,
        error=None if up else "connection refused",
        checked_at=at,
    )


def _turned_down(at: datetime) -> Readiness:
    ts = at.timestamp()
    return Readiness("default", passing=False, since=ts, probes=1, last_ok=False, last_at=ts,
                     run=1, changes=(ts,))  # fmt: skip


# --- seeing a turn (no server) -----------------------------------------------------------------


def test_a_probe_slower_than_warn_ms_after_a_fast_one_turns_the_alias_slow() -> None:
    fast = Sample(AT - timedelta(seconds=5), "up", 10.0)
    slow = Sample(AT - timedelta(seconds=5), "up", 300.0)
    down = Sample(AT - timedelta(seconds=5), "down", None)
    result = _result(latency_ms=300.0)

    assert turned(result, None, fast, warn_ms=WARN_MS) == "slow"
    assert turned(result, None, slow, warn_ms=WARN_MS) is None  # it was slow already
    assert turned(result, None, down, warn_ms=WARN_MS) is None  # coming back is no incident
    assert turned(result, None, None, warn_ms=WARN_MS) is None  # nothing to turn from
    assert turned(_result(latency_ms=50.0), None, fast, warn_ms=WARN_MS) is None


def test_the_probe_that_turns_the_held_verdict_turns_the_alias_down() -> None:
    result = _result("down")
    first = Readiness.first("default", False, AT.timestamp())
    earlier = _turned_down(AT - timedelta(seconds=10))

    assert turned(result, _turned_down(AT), None, warn_ms=WARN_MS) == "down"
    assert turned(_result("timeout"), _turned_down(AT), None, warn_ms=WARN_MS) == "timeout"
    assert turned(result, first, None, warn_ms=WARN_MS) is None  # the first probe ever
    assert turned(result, earlier, None, warn_ms=WARN_MS) is None  # down since before
    held = Readiness("default", passing=True, since=0.0, probes=9, last_ok=False,
                     last_at=AT.timestamp(), run=1)  # fmt: skip
    assert turned(result, held, None, warn_ms=WARN_MS) is None  # FALL not reached yet


# --- keeping them (the cache, no server) -------------------------------------------------------


def _session(ident: int, query: str, *blocked_by: int) -> Session:
    return Session(ident, "app", "web", "10.0.0.1", "db", "active", 1.5, 2.0, "Lock: tuple",
                   query, blocked_by)  # fmt: skip


def _busy_activity(sessions: int) -> Activity:
    running = tuple(_session(i, "SELECT " + "x, " * 95 + "?") for i in range(1, sessions + 1))
    tree = (TreeRow(running[0], 0), *(TreeRow(s, 1) for s in running[1:]))
    return Activity("default", running=running, idle_in_transaction=running, blocking=tree,
                    connections=sessions, max_connections=100)  # fmt: skip


def _take_down(at: datetime, read: Activity | None = None) -> list[Snapshot]:
    already = {"default": read} if read is not None else None
    return incidents.take([_result("down", at=at)], {"default": _turned_down(at)},
                          deadline=Deadline.after(2), already_read=already)  # fmt: skip


def test_a_snapshot_is_bounded_in_sessions_and_bytes() -> None:
    at = datetime.now(UTC)
    (taken,) = _take_down(at, _busy_activity(200))

    (kept,) = incidents.recent(["default"])["default"]
    stored = sharedcache.get(incidents._key("default"))
    assert len(json.dumps(stored)) <= incidents.MAX_BYTES
    assert 0 < len(kept.activity.running) <= incidents.SESSIONS
    assert 0 < len(kept.activity.blocking) <= incidents.TREE_ROWS
    assert kept.turned == "down" and kept.turned_at == at and kept.probe_error
    assert kept.activity.running[0] == taken.activity.running[0]


def test_one_turn_gives_one_snapshot_however_many_processes_see_it() -> None:
    at = datetime.now(UTC)
    assert len(_take_down(at)) == 1
    assert _take_down(at) == []  # the same probe, seen by another answer in this process
    incidents.forget_local()  # ... and by another process
    assert _take_down(at) == []

    (kept,) = incidents.recent(["default"])["default"]
    assert kept.activity.error is not None and "down" in kept.activity.error


def test_an_alias_flapping_takes_one_snapshot_per_cooldown_and_keeps_the_newest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = datetime.now(UTC)
    assert len(_take_down(now - timedelta(seconds=30))) == 1
    assert _take_down(now - timedelta(seconds=20)) == []  # a new turn, within the cooldown

    monkeypatch.setattr(incidents, "COOLDOWN_SECONDS", 0.001)
    for seconds in (10, 5, 1):
        sharedcache.delete(sharedcache.key("incident-cooldown", "default",
                                           incidents.fingerprint("default")))  # fmt: skip
        assert len(_take_down(now - timedelta(seconds=seconds))) == 1

    kept = incidents.recent(["default"])["default"]
    assert [s.turned_at for s in kept] == [now - timedelta(seconds=s) for s in (1, 5, 10)]


def test_old_snapshots_expire() -> None:
    now = datetime.now(UTC)
    _take_down(now)
    stored = sharedcache.get(incidents._key("default"))
    old = {
        **stored[0],
        "turned_at": (now - timedelta(seconds=incidents.KEEP_SECONDS + 1)).isoformat(),
    }
    sharedcache.set(incidents._key("default"), [stored[0], old, {"not": "a snapshot"}], 60)

    (kept,) = incidents.recent(["default"])["default"]
    assert kept.turned_at == now


# --- on a real PostgreSQL server ---------------------------------------------------------------


def _probed_fast(alias: str) -> bool:
    found = report.build([alias], deadline=Deadline.after(5), fresh=True).row(alias).result
    return found.ok and (found.latency_ms or 0) <= WARN_MS


def test_an_alias_turning_slow_keeps_its_blocking_sessions_for_the_alias_page(
    settings: Any,
    add_alias: Any,
    fault_proxy: Any,
    pg_table: str,  # noqa: F811 (the fixture imported above)
    staff_client: Client,
) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "WARN_MS": WARN_MS, "TIMEOUT": 8.0, "CACHE_TTL": 0}
    proxy: FaultProxy = fault_proxy(int(connections.settings["default"]["PORT"]))
    alias = add_alias("behind_proxy", **postgres_like(PORT=str(proxy.port)))
    literal = "literal-" + uuid.uuid4().hex
    # The probe before the turn must have been fast; on a busy machine one may not be.
    wait_until(lambda: _probed_fast(alias), 30, "a probe through the proxy under WARN_MS")
    assert history.flush()

    with _pg_connect() as holder, _pg_connect() as waiter:
        holder.execute("BEGIN")
        holder.execute(f"UPDATE {pg_table} SET v = '{literal}' WHERE id = 1")
        holder_pid, waiter_pid = holder.info.backend_pid, waiter.info.backend_pid
        update = f"UPDATE {pg_table} SET v = '{settings.CANARY_PASSWORD}' WHERE id = 1"
        blocked = threading.Thread(target=lambda: waiter.execute(update), daemon=True)
        blocked.start()
        try:
            wait_until(_pg_waiting(waiter_pid), 10, "the second session waits")
            proxy.set_mode("delay", ms=2 * WARN_MS)
            turning = staff_client.get(f"/admin/db-health/{alias}/")
        finally:
            holder.execute("ROLLBACK")
            blocked.join(10)
    proxy.set_mode("pass")
    afterwards = staff_client.get(f"/admin/db-health/{alias}/")
    out = StringIO()
    try:
        call_command("dbhealth", "--json", "--alias", alias, stdout=out)
    except SystemExit as exit_:  # WARNING when a probe through the proxy was slow again
        assert exit_.code in (0, 1)

    assert turning.status_code == 200 and afterwards.status_code == 200
    body = afterwards.content.decode()
    assert "What the server was doing when behind_proxy turned slow" in body
    section = body[body.index('id="dbhealth-incidents"') :]
    assert f'data-session="{holder_pid}" data-depth="0"' in section
    assert f'data-session="{waiter_pid}" data-depth="1"' in section
    assert f"UPDATE {pg_table} SET v = ? WHERE id = ?" in section
    (entry,) = json.loads(out.getvalue())["checks"][f"{alias}:responseTime"]
    (snapshot,) = entry["incidents"]
    assert snapshot["turned"] == "slow" and snapshot["latency_ms"] > WARN_MS
    tree = [(row["id"], row["depth"]) for row in snapshot["activity"]["blocking"]]
    assert (holder_pid, 0) in tree and (waiter_pid, 1) in tree
    for output in (turning.content.decode(), body, out.getvalue()):
        assert literal not in output and settings.CANARY_PASSWORD not in output


def test_an_alias_turning_down_says_its_server_did_not_answer(
    add_alias: Any, fault_proxy: Any, staff_client: Client
) -> None:
    proxy: FaultProxy = fault_proxy(int(connections.settings["default"]["PORT"]))
    alias = add_alias("refusing", **postgres_like(PORT=str(proxy.port)))
    # The alias page reads its activity while it is up: the snapshot tells what it found.
    assert staff_client.get(f"/admin/db-health/{alias}/").status_code == 200

    proxy.set_mode("refuse")
    started = time.monotonic()
    down = report.build([alias], deadline=Deadline.after(2), fresh=True, incidents_for=[alias])
    took = time.monotonic() - started
    again = report.build([alias], deadline=Deadline.after(2), fresh=True, incidents_for=[alias])
    page = staff_client.get(f"/admin/db-health/{alias}/").content.decode()

    (snapshot,) = down.row(alias).incidents
    assert snapshot.turned == "down" and snapshot.activity.error is not None
    assert snapshot.activity.error.startswith("not read: the probe found the server down")
    assert snapshot.last_known.startswith("The last read of its activity (at most 1 min before)")
    assert "of max_connections in use" in snapshot.last_known
    assert again.row(alias).incidents == (snapshot,)  # still down: no second snapshot
    assert took < 2 + 1.5
    assert "What the server was doing when refusing turned down" in page
    assert "not read: the probe found the server down" in page
    assert snapshot.last_known in page
    assert settings.CANARY_PASSWORD not in page
