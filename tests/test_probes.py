from __future__ import annotations

import time

import pytest

from dashboard.probes import ProbeResult, probe, probe_all, probe_finished, wait_idle
from tests.conftest import (
    SLACK_SECONDS,
    mysql_like,
    mysql_sessions,
    postgres_like,
    postgres_sessions,
    sessions_settled_to,
)


def test_every_vendor_reports_up_with_version_and_latency() -> None:
    results = {result.alias: result for result in probe_all()}

    assert set(results) == {"default", "second_db", "local"}
    for alias, vendor in [("default", "postgresql"), ("second_db", "mysql"), ("local", "sqlite")]:
        result = results[alias]
        assert result.status == "up", result.error
        assert result.ok
        assert result.vendor == vendor
        assert result.server_version
        assert result.connect_ms is not None and result.connect_ms > 0
        assert result.query_ms is not None and result.query_ms > 0
        assert result.error is None
    assert results["default"].host == "127.0.0.1"
    assert results["default"].port == 5432
    assert (
        "MariaDB" in (results["second_db"].server_version or "")
        or results["second_db"].server_version
    )


def test_probe_all_keeps_settings_order_and_filters() -> None:
    assert [r.alias for r in probe_all(["local", "default"])] == ["default", "local"]


def test_unknown_alias_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="nope"):
        probe("nope")
    with pytest.raises(KeyError):
        probe_all(["default", "nope"])


@pytest.mark.parametrize("like", [postgres_like, mysql_like])
def test_closed_port_is_down_quickly_with_a_clean_error(
    like, add_alias, closed_port, canary
) -> None:
    alias = add_alias("refused", **like(PORT=str(closed_port), PASSWORD=canary))

    started = time.monotonic()
    result = probe(alias, timeout=6)

    assert time.monotonic() - started < 6 / 2  # refused at once, not after the timeout
    assert result.status == "down"
    assert result.error_type and "OperationalError" in result.error_type
    assert result.error and canary not in result.error
    assert "refused" in result.error.lower() or "can't connect" in result.error.lower()


@pytest.mark.parametrize("like", [postgres_like, mysql_like])
def test_silent_server_is_a_timeout_within_the_deadline(
    like, add_alias, silent_port, no_stragglers
) -> None:
    alias = add_alias(f"silent_{like.__name__}", **like(PORT=str(silent_port)))

    started = time.monotonic()
    (result,) = probe_all([alias], timeout=1.0)
    elapsed = time.monotonic() - started

    assert result.status == "timeout"
    assert 0.9 <= elapsed < 1.0 + SLACK_SECONDS
    # mysqlclient's own whole-second bound (1 s here) may fire right at the deadline on a
    # busy machine: the same words, the driver's beside them.
    error = result.error or ""
    assert error.startswith("no answer within 1 s"), error


def test_seven_aliases_with_one_silent_cost_about_one_timeout(
    add_alias, silent_port, no_stragglers
) -> None:
    for index in range(3):
        add_alias(f"pg_{index}", **postgres_like())
    add_alias("maria_extra", **mysql_like())
    add_alias("blackholed", **postgres_like(PORT=str(silent_port)))

    started = time.monotonic()
    results = probe_all(timeout=1.0)
    elapsed = time.monotonic() - started

    assert len(results) == 8
    statuses = {r.alias: r.status for r in results}
    assert statuses.pop("blackholed") == "timeout"
    assert set(statuses.values()) == {"up"}
    assert elapsed < 1.0 + SLACK_SECONDS  # one deadline for the whole round


def test_a_new_round_joins_the_straggler_instead_of_reconnecting(add_alias, silent_port) -> None:
    alias = add_alias("sick", **postgres_like(PORT=str(silent_port)))
    started_probes: list[ProbeResult] = []

    def count(sender: object, result: ProbeResult, **kwargs: object) -> None:
        if result.alias == alias:
            started_probes.append(result)

    probe_finished.connect(count)
    try:
        first = probe_all([alias], timeout=0.3)
        second = probe_all([alias], timeout=0.3)
        assert wait_idle(timeout=10)
    finally:
        probe_finished.disconnect(count)

    assert first[0].status == second[0].status == "timeout"
    assert len(started_probes) == 1  # one connection attempt for both rounds


def test_unknown_database_and_bad_credentials_are_down_with_server_message(
    add_alias, canary
) -> None:
    add_alias("no_such_db", **postgres_like(NAME="no_such_database_here"))
    add_alias("bad_login", **mysql_like(USER="nobody", PASSWORD=canary))

    results = {r.alias: r for r in probe_all(["no_such_db", "bad_login"])}

    assert results["no_such_db"].status == "down"
    assert 'database "no_such_database_here" does not exist' in (results["no_such_db"].error or "")
    assert results["bad_login"].status == "down"
    assert "Access denied" in (results["bad_login"].error or "")
    assert canary not in repr(results)


def test_missing_sqlite_file_is_down_and_not_created(add_alias, tmp_path) -> None:
    missing = tmp_path / "nowhere.sqlite3"
    add_alias("gone", ENGINE="django.db.backends.sqlite3", NAME=str(missing))

    result = probe("gone")

    assert result.status == "down"
    assert not missing.exists()


def test_a_file_that_is_not_a_database_is_down(add_alias, tmp_path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database file" * 100)
    add_alias("junk", ENGINE="django.db.backends.sqlite3", NAME=str(junk))

    result = probe("junk")

    assert result.status == "down"
    assert "not a database" in (result.error or "")


def test_broken_engine_is_down_not_a_crash(add_alias) -> None:
    add_alias("broken", ENGINE="django.db.backends.nonexistent", NAME="x")

    result = probe("broken")

    assert result.status == "down"
    assert result.error


def test_probes_leave_no_server_sessions_behind() -> None:
    before = (postgres_sessions(), mysql_sessions())

    for _ in range(200):
        probe_all(["default", "second_db"])

    assert sessions_settled_to(before) == before


def test_probes_never_touch_the_applications_connections() -> None:
    from django.db import connections

    aliases = ("default", "second_db", "local")
    before = {alias: connections[alias].connection for alias in aliases}
    probe_all()
    assert {alias: connections[alias].connection for alias in aliases} == before
