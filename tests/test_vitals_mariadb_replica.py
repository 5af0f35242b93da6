"""Server vitals of a real MariaDB replica following a real primary (both started here)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from dashboard import vitals
from dashboard.probes import probe
from dashboard.vitals import Reading
from tests.mariadbcluster import PrimaryAndReplica
from tests.pgcluster import running, wait_until


@pytest.fixture(scope="module")
def replicated() -> Iterator[PrimaryAndReplica]:
    with running(PrimaryAndReplica(), "a MariaDB replica") as cluster:
        yield cluster


def _readings(alias: str) -> dict[str, Reading]:
    read = vitals.read(alias)
    assert read.error is None, read.error
    return {vital.key: vital.reading for vital in read.readings}


def test_a_mariadb_replica_is_read_only_and_its_lag_is_measured(
    replicated: PrimaryAndReplica, add_alias: Any
) -> None:
    primary = add_alias("mariadb_primary", **replicated.primary.alias_settings())
    replica = add_alias("mariadb_replica", **replicated.replica.alias_settings())
    replicated.primary.run(
        "CREATE DATABASE IF NOT EXISTS beat",
        "CREATE TABLE IF NOT EXISTS beat.beat (at DATETIME(6))",
        "INSERT INTO beat.beat VALUES (NOW(6))",
    )
    wait_until(replicated.caught_up, what="the replica applies the first write")
    in_step = _readings(replica)

    # The SQL thread stopped, a write on the primary: the replica receives it, applies nothing.
    replicated.replica.run("STOP SLAVE SQL_THREAD")
    replicated.primary.run("INSERT INTO beat.beat VALUES (NOW(6))")
    written = replicated.primary.run("SELECT @@gtid_binlog_pos")
    wait_until(
        lambda: replicated.replica.replica_status().get("Gtid_IO_Pos") == written,
        what="the replica receives the write",
    )
    stopped = _readings(replica)["replication_lag"]

    # Applying restarts but waits on a table a session of the replica holds locked:
    # the replica falls behind by the write's age.
    holder = replicated.replica.connect()
    try:
        holder.cursor().execute("LOCK TABLES beat.beat WRITE")
        replicated.replica.run("START SLAVE SQL_THREAD")
        wait_until(
            lambda: (_readings(replica)["replication_lag"].value or 0) >= 2,
            what="the vitals show the replica behind",
        )
        behind = _readings(replica)["replication_lag"]
        cursor = holder.cursor()
        cursor.execute("SELECT COUNT(*) FROM beat.beat")
        applied_while_behind = cursor.fetchone()[0]
    finally:
        holder.close()  # ends the lock
    wait_until(replicated.caught_up, what="the replica catches up")
    caught_up = _readings(replica)["replication_lag"]
    on_primary = _readings(primary)

    assert in_step["read_only"].text == "read-only" and in_step["read_only"].value is True
    assert in_step["replication_lag"].value == 0
    assert in_step["replication_lag"].text == "0.0 s behind"
    assert stopped.text == "replication stopped (IO thread: Yes, SQL thread: No)"
    assert stopped.value is None and stopped.available
    assert isinstance(behind.value, int) and behind.value >= 2
    assert applied_while_behind == 1  # the second write is not applied yet
    assert re.fullmatch(r"[\d.]+ s behind", str(behind.text))
    assert caught_up.value == 0 and caught_up.text == "0.0 s behind"
    assert on_primary["replication_lag"].text == "not a replica"
    assert on_primary["replication_lag"].value is None
    assert on_primary["read_only"].text == "read-write"
    assert probe(replica).status == "up" and probe(primary).status == "up"
