"""Server vitals read from the real servers, a streaming replica, and SQLite files."""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import MySQLdb
import pytest
from django.conf import settings
from django.test import Client

from dashboard import vitals
from dashboard.probes import probe
from dashboard.vitals import Vitals
from tests.conftest import mysql_like, postgres_like
from tests.pgcluster import PrimaryAndReplica, running, wait_until


def texts(read: Vitals) -> dict[str, str]:
    assert read.error is None, read.error
    return {vital.key: vital.reading.text for vital in read.readings}


def values(read: Vitals) -> dict[str, Any]:
    return {vital.key: vital.reading.value for vital in read.readings}


# --- PostgreSQL and MariaDB primaries -------------------------------------------------------


def test_postgresql_vitals_of_a_primary() -> None:
    read = vitals.read("default")

    shown, raw = texts(read), values(read)
    assert shown["version"] == probe("default").server_version
    assert raw["uptime"] > 0 and re.fullmatch(r"[\d.]+ s|\d+ \w+( \d+ \w+)?", shown["uptime"])
    assert 1 <= raw["connections"]["used"] <= raw["connections"]["max"]
    assert re.fullmatch(r"\d+ of \d+ \(\d+%\)", shown["connections"])
    assert raw["size"] > 1_000_000 and shown["size"].endswith("MiB")
    assert shown["read_only"] == "read-write"
    assert shown["replication_lag"] == "not a replica" and raw["replication_lag"] is None


def test_mariadb_vitals_of_a_primary() -> None:
    read = vitals.read("second_db")

    shown, raw = texts(read), values(read)
    assert shown["version"] == probe("second_db").server_version
    assert raw["uptime"] > 0
    assert 1 <= raw["connections"]["used"] <= raw["connections"]["max"]
    assert raw["size"] > 0  # the test database has the project's tables
    assert shown["read_only"] == "read-write"
    assert shown["replication_lag"] == "not a replica"


@pytest.fixture
def low_privilege_mysql_user() -> Iterator[str]:
    """A MariaDB account that may use the test database and nothing else."""
    name = f"dbh_vitals_{uuid.uuid4().hex[:8]}"
    db = settings.DATABASES["second_db"]
    admin = MySQLdb.connect(host=db["HOST"], port=int(db["PORT"]), user=db["USER"])
    try:
        cursor = admin.cursor()
        cursor.execute(f"CREATE USER '{name}'@'%'")
        cursor.execute(f"GRANT SELECT ON `{db['NAME']}`.* TO '{name}'@'%'")
        yield name
    finally:
        admin.cursor().execute(f"DROP USER IF EXISTS '{name}'@'%'")
        admin.close()


def test_a_vital_the_account_may_not_read_is_unavailable_and_the_alias_stays_up(
    add_alias: Any, low_privilege_mysql_user: str
) -> None:
    alias = add_alias("monitor", **mysql_like(USER=low_privilege_mysql_user, PASSWORD=""))

    read = vitals.read(alias)

    lag = {vital.key: vital.reading for vital in read.readings}["replication_lag"]
    assert not lag.available
    assert lag.text.startswith("unavailable: (1227) Access denied")
    assert texts(read)["read_only"] == "read-write"  # the other vitals are still read
    assert probe(alias).status == "up"


# --- a streaming replica ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def replicated() -> Iterator[PrimaryAndReplica]:
    with running(PrimaryAndReplica(), "a PostgreSQL replica") as cluster:
        yield cluster


def _lag(alias: str) -> tuple[str, Any]:
    reading = {vital.key: vital.reading for vital in vitals.read(alias).readings}["replication_lag"]
    return reading.text, reading.value


def test_a_streaming_replica_is_in_recovery_and_its_lag_is_measured(
    replicated: PrimaryAndReplica, add_alias: Any
) -> None:
    primary = add_alias("primary", **replicated.primary.alias_settings())
    replica = add_alias("replica", **replicated.replica.alias_settings())
    with replicated.primary.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS beat (at timestamptz)")
        conn.execute("INSERT INTO beat VALUES (now())")
    wait_until(
        lambda: replicated.replica.one("SELECT pg_last_xact_replay_timestamp()") is not None,
        what="the replica replays the first transaction",
    )

    # Replay paused, a write on the primary: the replica receives it and falls behind.
    replicated.replica.one("SELECT pg_wal_replay_pause()")
    with replicated.primary.connect() as conn:
        conn.execute("INSERT INTO beat VALUES (now())")
    wait_until(
        lambda: replicated.replica.one(
            "SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()"
        ),
        what="the replica receives WAL it has not replayed",
    )
    behind_text, behind = _lag(replica)

    replicated.replica.one("SELECT pg_wal_replay_resume()")
    wait_until(
        lambda: replicated.replica.one(
            "SELECT pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()"
        ),
        what="the replica catches up",
    )
    caught_up_text, caught_up = _lag(replica)
    replica_read = texts(vitals.read(replica))

    assert behind > 0
    assert re.fullmatch(r"[\d.]+ s behind; replay paused", behind_text)
    assert caught_up == 0.0
    assert caught_up_text.startswith("0 s (caught up; last transaction replayed")
    assert replica_read["read_only"] == "in recovery (a read-only standby)"
    assert texts(vitals.read(primary))["replication_lag"] == "not a replica"
    assert texts(vitals.read(primary))["read_only"] == "read-write"
    assert probe(replica).status == "up"


# --- SQLite files --------------------------------------------------------------------------


def _sqlite_file(path: Path, journal_mode: str, rows: int = 2000) -> Path:
    with closing_sqlite(path) as conn:
        conn.execute(f"PRAGMA journal_mode={journal_mode}")
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, label TEXT)")
        conn.executemany(
            "INSERT INTO item (label) VALUES (?)", [(f"item {n:06d}" * 4,) for n in range(rows)]
        )
        conn.commit()
    return path


class closing_sqlite:  # noqa: N801 (used like contextlib.closing)
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def test_sqlite_vitals_are_file_size_journal_mode_and_quick_check(
    tmp_path: Path, add_alias: Any
) -> None:
    rollback = _sqlite_file(tmp_path / "rollback.sqlite3", "delete")
    wal = _sqlite_file(tmp_path / "wal.sqlite3", "wal")
    add_alias("rollback", ENGINE="django.db.backends.sqlite3", NAME=str(rollback))
    add_alias("wal", ENGINE="django.db.backends.sqlite3", NAME=str(wal))

    plain, logged = vitals.read("rollback"), vitals.read("wal")

    assert values(plain)["size"] == rollback.stat().st_size
    assert texts(plain)["journal_mode"] == "delete"
    assert texts(logged)["journal_mode"] == "wal"
    assert texts(plain)["quick_check"] == "ok" == texts(logged)["quick_check"]
    assert texts(plain)["version"] == sqlite3.sqlite_version


def test_a_damaged_sqlite_file_fails_its_quick_check_but_the_alias_stays_up(
    tmp_path: Path, add_alias: Any
) -> None:
    damaged = _sqlite_file(tmp_path / "damaged.sqlite3", "delete")
    with damaged.open("r+b") as file:  # the header's count of free pages, at byte 36
        file.seek(36)
        file.write((5).to_bytes(4, "big"))
    add_alias("damaged", ENGINE="django.db.backends.sqlite3", NAME=str(damaged))

    check = {vital.key: vital.reading for vital in vitals.read("damaged").readings}["quick_check"]

    assert check.value == 1
    assert check.text == "1 problem(s): Main freelist: size is 0 but should be 5"
    assert probe("damaged").status == "up"


# --- servers that do not answer ------------------------------------------------------------


def test_vitals_of_a_silent_server_give_up_at_the_deadline(
    add_alias: Any, silent_port: int, canary: str, no_stragglers: None
) -> None:
    alias = add_alias("silent", **postgres_like(PORT=str(silent_port), PASSWORD=canary))
    started = time.monotonic()

    read = vitals.read(alias, timeout=1.0)

    # The caller stops waiting at its deadline; libpq's own connect_timeout (at least
    # 2 s) only ends the straggling connection soon after.
    assert time.monotonic() - started < 1.0 + 1.5
    assert read.readings == () and read.error == "not read within 1 s"
    assert canary not in read.error


def test_sizes_and_durations_read_as_an_operator_would_write_them() -> None:
    assert vitals.size_text(1536) == "1.5 KiB" and vitals.duration_text(93784) == "1 d 2 h"


# --- the alias page -------------------------------------------------------------------------


def test_the_alias_page_shows_its_vitals_and_reads_them_again_with_htmx(
    staff_client: Client,
) -> None:
    html = staff_client.get("/admin/db-health/default/").content.decode()

    assert 'data-vital="version"' in html  # read within the page's own deadline
    assert 'hx-get="/admin/db-health/default/vitals/"' in html  # "Read again"
    assert 'href="/admin/db-health/default/"' in html  # the same without JavaScript
    assert "Last 120 probes" in html and '<svg class="dbhealth-spark"' in html
    assert 'data-field="migrations"' in html


def test_the_vitals_partial_is_only_the_vitals_block(staff_client: Client) -> None:
    html = staff_client.get("/admin/db-health/second_db/vitals/").content.decode()

    assert html.lstrip().startswith('<div id="dbhealth-vitals"')
    assert "<html" not in html
    assert re.search(r'data-vital="connections"><th scope="row">Connections in use</th>'
                     r"<td>\d+ of \d+", html)  # fmt: skip
    assert "not a replica" in html


def test_the_page_of_a_sqlite_alias_shows_its_quick_check(staff_client: Client) -> None:
    html = staff_client.get("/admin/db-health/local/").content.decode()

    assert "<html" in html and 'data-vital="quick_check"' in html
    assert re.search(r"Quick check</th><td>ok</td>", html)


def test_a_down_alias_is_not_asked_for_vitals(
    staff_client: Client, add_alias: Any, closed_port: int, canary: str
) -> None:
    add_alias("dead", **postgres_like(PORT=str(closed_port), PASSWORD=canary))

    html = staff_client.get("/admin/db-health/dead/vitals/").content.decode()
    page = staff_client.get("/admin/db-health/dead/").content.decode()

    assert "not read: the alias is down" in html
    assert "Connection refused" in page and canary not in page + html


def test_the_alias_page_is_for_staff_only(plain_client: Client, client: Client) -> None:
    for visitor in (plain_client, client):
        for url in ("/admin/db-health/default/", "/admin/db-health/default/vitals/"):
            response = visitor.get(url)
            assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_an_unknown_alias_goes_back_to_the_list_with_a_message(staff_client: Client) -> None:
    response = staff_client.get("/admin/db-health/nope/", follow=True)

    assert response.redirect_chain == [("/admin/db-health/", 302)]
    assert "There is no database alias named “nope”." in response.content.decode()
    assert staff_client.get("/admin/db-health/nope/vitals/").status_code == 404


def test_the_list_links_each_alias_to_its_page(staff_client: Client) -> None:
    html = staff_client.get("/admin/db-health/").content.decode()

    for alias in ("default", "second_db", "local"):
        assert f'<a href="/admin/db-health/{alias}/"' in html
