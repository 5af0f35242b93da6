"""Server activity read from real servers: blocking trees, idle transactions, counts, bounds;
for SQLite files, the journal mode and whether a write could start now."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from io import StringIO
from pathlib import Path
from typing import Any

import MySQLdb
import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.test import Client

from dashboard import activity
from dashboard.activity import Activity, Count, Figures, Session, blocking_tree, clean_query
from dashboard.deadline import Deadline
from dashboard.vendors import sqlite
from tests.conftest import SLACK_SECONDS, postgres_like
from tests.pgcluster import wait_until

# --- cleaning query text (no server) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "cleaned"),
    [
        ("SELECT * FROM t WHERE a = 'secret' AND b = 42", "SELECT * FROM t WHERE a = ? AND b = ?"),
        ("UPDATE t SET v = 'it''s' WHERE id IN (1, 2.5, -3e4)",
         "UPDATE t SET v = ? WHERE id IN (?, ?, -?)"),
        ("ALTER USER app PASSWORD 'hunter2'", "ALTER USER app PASSWORD ?"),
        ("SELECT $tag$ secret $tag$, E'a\\'b'", "SELECT ?, ?"),
        ("SELECT 'cut off before the end", "SELECT ?"),
        ("SELECT a1, t.col2 FROM table3 /* token=abc */ -- pw 99", "SELECT a1, t.col2 FROM table3"),
        ('SELECT "Name" FROM t', 'SELECT "Name" FROM t'),
    ],
)  # fmt: skip
def test_literals_and_comments_leave_query_text(query: str, cleaned: str) -> None:
    assert clean_query(query) == cleaned


def test_mysql_double_quoted_strings_are_literals_too() -> None:
    text = clean_query('SELECT * FROM t WHERE a = "secret"', double_quotes_are_strings=True)
    assert text == "SELECT * FROM t WHERE a = ?"


def test_long_queries_are_shortened() -> None:
    assert len(clean_query("SELECT " + "a, " * 500 + "b")) == activity.QUERY_LENGTH


def _session(ident: int, *blocked_by: int) -> Session:
    return Session(ident, "u", "", "", "d", "active", 1.0, 1.0, "", "SELECT ?", blocked_by)


def test_a_blocking_tree_lists_root_blockers_first_with_their_waiters_below() -> None:
    tree = blocking_tree([_session(3, 2), _session(2, 1), _session(1), _session(4, 1), _session(9)])

    assert [(row.session.id, row.depth) for row in tree] == [(1, 0), (2, 1), (3, 2), (4, 1)]


def test_a_wait_cycle_and_an_unlisted_blocker_still_show() -> None:
    tree = blocking_tree([_session(1, 2), _session(2, 1), _session(5, 77)])

    assert [(row.session.id, row.depth) for row in tree] == [(77, 0), (5, 1), (1, 0), (2, 1)]
    assert tree[0].session.state == "not listed"


# --- PostgreSQL -----------------------------------------------------------------------------------


def _pg_connect(**extra: Any) -> psycopg.Connection[Any]:
    db = connections.settings["default"]
    return psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        user=db["USER"],
        password=db["PASSWORD"],
        dbname=db["NAME"],
        autocommit=True,
        **extra,
    )


@pytest.fixture
def pg_table() -> Iterator[str]:
    """A one-row table of its own in the test database, dropped after the test."""
    name = f"dbh_activity_{uuid.uuid4().hex[:8]}"
    with _pg_connect() as admin:
        admin.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v text)")
        admin.execute(f"INSERT INTO {name} VALUES (1, 'x')")
        yield name
        admin.execute(f"DROP TABLE IF EXISTS {name}")


def _in_thread(work: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def _pg_waiting(pid: int) -> Callable[[], bool]:
    def check() -> bool:
        with _pg_connect() as observer:
            row = observer.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]
            ).fetchone()
        return row is not None and row[0] == "Lock"

    return check


def read(alias: str) -> Activity:
    found = activity.read(alias, deadline=Deadline.after(5))
    assert found.error is None, found.error
    return found


def test_postgresql_row_lock_shows_a_two_level_blocking_tree(pg_table: str) -> None:
    with _pg_connect(application_name="holder") as holder, _pg_connect() as waiter:
        holder.execute("BEGIN")
        holder.execute(f"UPDATE {pg_table} SET v = 'holder-secret' WHERE id = 1")
        holder_pid, waiter_pid = holder.info.backend_pid, waiter.info.backend_pid
        blocked = _in_thread(
            lambda: waiter.execute(f"UPDATE {pg_table} SET v = 'waiter-secret' WHERE id = 1")
        )
        try:
            wait_until(_pg_waiting(waiter_pid), 10, "the second session waits on the row lock")
            found = read("default")
        finally:
            holder.execute("ROLLBACK")
            blocked.join(10)

    # Other clients of the shared server may block each other too: this pair's subtree.
    ours = [row for row in found.blocking if row.session.id in {holder_pid, waiter_pid}]
    assert [(row.session.id, row.depth) for row in ours] == [(holder_pid, 0), (waiter_pid, 1)]
    assert found.blocking.index(ours[1]) == found.blocking.index(ours[0]) + 1
    root, waiting = (row.session for row in ours)
    assert root.state == "idle in transaction" and root.application == "holder"
    assert root.query == f"UPDATE {pg_table} SET v = ? WHERE id = ?"
    assert waiting.query == root.query and waiting.blocked_by == (root.id,)
    assert waiting.state == "active" and waiting.wait.startswith("Lock")
    assert waiting.query_seconds is not None and root.transaction_seconds is not None
    assert waiting in found.running and root in found.idle_in_transaction
    assert "secret" not in json.dumps(found.as_json())


def test_postgresql_idle_in_transaction_shows_its_age(pg_table: str) -> None:
    with _pg_connect() as idle:
        idle.execute("BEGIN")
        idle.execute(f"SELECT * FROM {pg_table}")
        began = time.monotonic()
        wait_until(lambda: time.monotonic() - began > 0.3, 5, "the transaction ages")
        found = read("default")
        pid = idle.info.backend_pid
        idle.execute("ROLLBACK")

    (session,) = [s for s in found.idle_in_transaction if s.id == pid]
    assert session.state == "idle in transaction"
    assert session.transaction_seconds is not None and session.transaction_seconds >= 0.3
    assert session.transaction_for.endswith(" s")


def test_postgresql_counts_connections_and_leaves_out_its_own_session() -> None:
    found = read("default")

    with _pg_connect() as asking:
        limit = asking.execute("SHOW max_connections").fetchone()
    assert limit is not None and found.max_connections == int(limit[0])
    assert found.connections is not None and 1 <= found.connections <= found.max_connections
    assert sum(count.count for count in found.by_state) == found.connections
    assert all(session.application != "dbhealth-probe" for session in found.running)
    assert any(count.label.startswith("postgres / dbhealth-probe") for count in found.by_user)


def test_the_alias_page_answers_within_one_deadline_while_ddl_holds_a_lock(
    pg_table: str, staff_client: Client
) -> None:
    with _pg_connect() as ddl:
        ddl.execute("BEGIN")
        ddl.execute(f"LOCK TABLE {pg_table} IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        page = staff_client.get("/admin/db-health/default/")
        took = time.monotonic() - started
        ddl.execute("ROLLBACK")

    body = page.content.decode()
    assert page.status_code == 200
    assert took < settings.DBHEALTH["TIMEOUT"] + 1.5
    assert 'data-part="idle"' in body and "LOCK TABLE" in body


def test_activity_is_shown_only_to_users_who_may_see_details(
    django_user_model: Any,
) -> None:
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)

    assert "dbhealth-activity" not in client.get("/admin/db-health/default/").content.decode()


# --- MariaDB ------------------------------------------------------------------------------------


def _mysql_connect() -> Any:
    db = connections.settings["second_db"]
    conn = MySQLdb.connect(
        host=db["HOST"],
        port=int(db["PORT"]),
        user=db["USER"],
        password=db["PASSWORD"],
        database=db["NAME"],
    )
    conn.autocommit(True)
    return conn


@pytest.fixture
def mysql_table() -> Iterator[str]:
    name = f"dbh_activity_{uuid.uuid4().hex[:8]}"
    admin = _mysql_connect()
    try:
        admin.cursor().execute(f"CREATE TABLE {name} (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB")
        admin.cursor().execute(f"INSERT INTO {name} VALUES (1, 'x')")
        yield name
    finally:
        admin.cursor().execute(f"DROP TABLE IF EXISTS {name}")
        admin.close()


def _mysql_waiting(thread_id: int) -> Callable[[], bool]:
    def check() -> bool:
        observer = _mysql_connect()
        try:
            cursor = observer.cursor()
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.INNODB_TRX"
                " WHERE trx_mysql_thread_id = %s AND trx_state = 'LOCK WAIT'",
                [thread_id],
            )
            return bool(cursor.fetchone()[0])
        finally:
            observer.close()

    return check


def test_mariadb_row_lock_shows_a_two_level_blocking_tree(mysql_table: str) -> None:
    holder, waiter = _mysql_connect(), _mysql_connect()
    holder_id, waiter_id = holder.thread_id(), waiter.thread_id()
    try:
        holder.cursor().execute("BEGIN")
        holder.cursor().execute(f"UPDATE {mysql_table} SET v = 'holder-secret' WHERE id = 1")
        waiter.cursor().execute("SET SESSION innodb_lock_wait_timeout = 30")
        blocked = _in_thread(
            lambda: waiter.cursor().execute(
                f"UPDATE {mysql_table} SET v = 'waiter-secret' WHERE id = 1"
            )
        )
        try:
            wait_until(_mysql_waiting(waiter_id), 10, "the second thread waits")
            found = read("second_db")
        finally:
            holder.cursor().execute("ROLLBACK")
            blocked.join(10)
    finally:
        holder.close()
        waiter.close()

    # Other clients of the shared server may block each other too: this pair's subtree.
    ours = [row for row in found.blocking if row.session.id in {holder_id, waiter_id}]
    assert [(row.session.id, row.depth) for row in ours] == [(holder_id, 0), (waiter_id, 1)]
    assert found.blocking.index(ours[1]) == found.blocking.index(ours[0]) + 1
    root, waiting = (row.session for row in ours)
    assert root.state == "idle in transaction" and root.transaction_seconds is not None
    assert waiting.state == "active" and waiting.blocked_by == (root.id,)
    assert waiting.query == f"UPDATE {mysql_table} SET v = ? WHERE id = ?"
    assert waiting.query_seconds is not None
    assert found.max_connections is not None and found.connections is not None
    assert "secret" not in json.dumps(found.as_json())


def test_dbhealth_json_carries_each_alias_activity() -> None:
    out = StringIO()
    try:
        call_command("dbhealth", "--json", "--alias", "default", "--alias", "second_db", stdout=out)
    except SystemExit as exit_:
        assert exit_.code in (0, 1)
    document = json.loads(out.getvalue())

    for alias in ("default", "second_db"):
        (entry,) = document["checks"][f"{alias}:responseTime"]
        assert entry["activity"]["error"] is None
        assert entry["activity"]["max_connections"] > 0
    assert settings.CANARY_PASSWORD not in out.getvalue()


# --- SQLite files -------------------------------------------------------------------------------


def _sqlite_file(path: Path, journal_mode: str = "delete") -> Path:
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA journal_mode={journal_mode}")
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, label TEXT)")
        conn.execute("INSERT INTO item (label) VALUES ('one')")
        conn.commit()
    finally:
        conn.close()
    return path


@contextmanager
def _writing(path: Path, begin: str = "BEGIN IMMEDIATE") -> Iterator[sqlite3.Connection]:
    """Another connection in the middle of a write: it holds the file's write lock."""
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute(begin)
        holder.execute("INSERT INTO item (label) VALUES ('held')")
        yield holder
    finally:
        holder.close()


def _labels(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [label for (label,) in conn.execute("SELECT label FROM item ORDER BY id")]
    finally:
        conn.close()


def _sqlite_alias(add_alias: Any, alias: str, name: str) -> str:
    return str(add_alias(alias, ENGINE="django.db.backends.sqlite3", NAME=name))


def test_a_sqlite_page_says_busy_while_a_write_holds_the_lock_and_writable_after(
    tmp_path: Path, add_alias: Any, staff_client: Client
) -> None:
    path = _sqlite_file(tmp_path / "busy.sqlite3")
    alias = _sqlite_alias(add_alias, "busy_file", str(path))
    with _writing(path) as holder:
        started = time.monotonic()
        busy = staff_client.get(f"/admin/db-health/{alias}/").content.decode()
        took = time.monotonic() - started
        holder.execute("COMMIT")
    free = staff_client.get(f"/admin/db-health/{alias}/").content.decode()

    assert took < settings.DBHEALTH["TIMEOUT"] + SLACK_SECONDS
    assert 'data-write="busy"' in busy
    assert re.search(r"busy: another connection holds the write lock \(waited \d+ ms\)", busy)
    assert 'data-write="writable"' in free and ">writable</td>" in free
    assert '<td data-field="journal-mode">delete</td>' in free
    # The holder's write went through; the probes added nothing of their own.
    assert _labels(path) == ["one", "held"]
    assert sorted(os.listdir(tmp_path)) == ["busy.sqlite3"]


def test_dbhealth_json_says_busy_within_its_deadline_beside_an_exclusive_wal_writer(
    tmp_path: Path, add_alias: Any
) -> None:
    path = _sqlite_file(tmp_path / "wal.sqlite3", journal_mode="wal")
    alias = _sqlite_alias(add_alias, "wal_file", str(path))
    out = StringIO()
    with _writing(path, "BEGIN EXCLUSIVE"):
        started = time.monotonic()
        try:
            call_command("dbhealth", "--json", "--alias", alias, "--timeout", "1", stdout=out)
        except SystemExit as exit_:
            assert exit_.code in (0, 1)
        took = time.monotonic() - started

    (entry,) = json.loads(out.getvalue())["checks"][f"{alias}:responseTime"]
    found = entry["activity"]
    assert took < 1 + SLACK_SECONDS
    assert found["error"] is None and found["file"]["journal_mode"] == "wal"
    assert found["file"]["write"] == "busy" and 0 < found["file"]["waited_ms"] <= 1000
    assert found["file"]["write_text"].startswith("busy: another connection holds the write lock")
    assert _labels(path) == ["one"]


def test_the_write_probe_waits_no_longer_than_the_deadline(tmp_path: Path, add_alias: Any) -> None:
    path = _sqlite_file(tmp_path / "short.sqlite3")
    alias = _sqlite_alias(add_alias, "short_file", str(path))
    with _writing(path):
        started = time.monotonic()
        found = activity.read(alias, deadline=Deadline.after(0.2))
        took = time.monotonic() - started

    assert took < 0.2 + SLACK_SECONDS
    assert found.file is not None and found.file.write == "busy"
    # Half of what was left: the answer still reaches the caller in time.
    assert 0 < found.file.waited_ms <= 100 + SLACK_SECONDS * 1000


def test_a_read_only_sqlite_file_says_read_only_and_is_left_as_it_was(
    tmp_path: Path, add_alias: Any
) -> None:
    path = _sqlite_file(tmp_path / "ro.sqlite3")
    before = path.read_bytes()
    alias = _sqlite_alias(add_alias, "ro_file", f"file:{path}?mode=ro")

    found = read(alias)

    assert found.file is not None and found.file.write == "read-only"
    assert found.file.write_text == "read-only" and found.file.journal_mode == "delete"
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["ro.sqlite3"]


def test_the_write_probe_writes_nothing_and_lets_go_of_the_lock_at_once(tmp_path: Path) -> None:
    path = _sqlite_file(tmp_path / "free.sqlite3")
    before = path.read_bytes()
    probing = sqlite.connect(sqlite.bounded({"database": str(path), "uri": True}, 2.0))
    try:
        state, waited_ms = sqlite.write_probe(probing, Deadline.after(2))
        # The probe's connection is still open: another writer may begin at once.
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        finally:
            other.close()
        site_wait = probing.execute("PRAGMA busy_timeout").fetchone()[0]
        changes = probing.total_changes
        in_transaction = probing.in_transaction
    finally:
        probing.close()

    assert state == "writable" and 0 <= waited_ms < 1000
    assert (changes, in_transaction, site_wait) == (0, False, 2000)
    assert path.read_bytes() == before and _labels(path) == ["one"]


# --- figures for /metrics -----------------------------------------------------------------------


def test_figures_count_states_waiters_and_the_longest_waits() -> None:
    waiter = _session(2, 1)
    holder = Session(1, "u", "", "", "d", "idle in transaction", 9.0, 40.0, "", "UPDATE ?")
    found = Activity(
        "default",
        running=(replace(waiter, query_seconds=7.5),),
        idle_in_transaction=(holder,),
        blocking=blocking_tree([waiter, holder]),
        by_state=(Count("idle", 5), Count("active", 1), Count("idle in transaction", 1),
                  Count("fastpath function call", 2)),
        connections=9,
        max_connections=90,
    )  # fmt: skip

    figures = Figures.of(found)

    assert figures.sessions == {"active": 1, "idle": 5, "idle_in_transaction": 1, "other": 2}
    assert figures.blocked == 1
    assert figures.longest_query_seconds == 7.5
    assert figures.longest_idle_in_transaction_seconds == 40.0
    assert figures.connections_used_ratio == pytest.approx(0.1)
    assert Figures.loaded(figures.stored()) == figures
    assert Figures.loaded({"sessions": "junk"}) is None
    assert Figures.loaded(None) is None


def test_mariadb_idle_sessions_inside_a_transaction_are_counted_as_such() -> None:
    holder = Session(1, "u", "", "", "d", "idle in transaction", 9.0, 40.0, "", "")
    found = Activity("second_db", idle_in_transaction=(holder,), by_state=(Count("idle", 3),))

    assert Figures.of(found).sessions == {
        "active": 0, "idle": 2, "idle_in_transaction": 1, "other": 0
    }  # fmt: skip


def _metric_lines(client: Client, name: str) -> dict[str, float]:
    bearer = {"Authorization": f"Bearer {settings.DBHEALTH['TOKEN']}"}
    text = client.get("/metrics", headers=bearer).content.decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{")
    }


PG_SERVER = "postgresql:{HOST}:{PORT}".format(**settings.DATABASES["default"])


def test_metrics_serve_the_activity_the_alias_page_read_without_reading_again(
    pg_table: str, staff_client: Client
) -> None:
    assert _metric_lines(staff_client, "dbhealth_sessions") == {}  # nothing read yet
    with _pg_connect() as holder, _pg_connect() as waiter:
        holder.execute("BEGIN")
        holder.execute(f"UPDATE {pg_table} SET v = 'a' WHERE id = 1")
        blocked = _in_thread(lambda: waiter.execute(f"UPDATE {pg_table} SET v = 'b' WHERE id = 1"))
        try:
            wait_until(_pg_waiting(waiter.info.backend_pid), 10, "the second session waits")
            assert staff_client.get("/admin/db-health/default/").status_code == 200
        finally:
            holder.execute("ROLLBACK")
            blocked.join(10)

    sessions = _metric_lines(staff_client, "dbhealth_sessions")
    blocked_now = _metric_lines(staff_client, "dbhealth_blocked_sessions")
    longest = _metric_lines(staff_client, "dbhealth_longest_query_seconds")
    used = _metric_lines(staff_client, "dbhealth_connections_used_ratio")
    server = f'server="{PG_SERVER}"'
    assert sessions[f'dbhealth_sessions{{{server},state="idle_in_transaction"}}'] >= 1
    assert sessions[f'dbhealth_sessions{{{server},state="active"}}'] >= 1
    assert not any("mysql" in name for name in sessions)  # MariaDB's activity was not read
    assert blocked_now[f"dbhealth_blocked_sessions{{{server}}}"] >= 1
    assert longest[f"dbhealth_longest_query_seconds{{{server}}}"] > 0
    assert 0 < used[f"dbhealth_connections_used_ratio{{{server}}}"] <= 1


def test_aliases_of_one_server_share_one_set_of_activity_series(
    staff_client: Client, add_alias: Any
) -> None:
    for n in range(3):
        add_alias(f"tenant_{n}", **postgres_like())
    assert staff_client.get("/admin/db-health/tenant_1/").status_code == 200
    # A SQLite file's activity (journal mode, a write probe) lists no sessions: no series.
    assert staff_client.get("/admin/db-health/local/").status_code == 200

    sessions = _metric_lines(staff_client, "dbhealth_sessions")

    # One read through any alias describes the server: one series per state, not per alias.
    assert sorted(sessions) == sorted(
        f'dbhealth_sessions{{server="{PG_SERVER}",state="{state}"}}'
        for state in activity.FIGURE_STATES
    )
