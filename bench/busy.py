"""Row 11: the alias page, with its activity section, on a server holding 50 sessions.

For PostgreSQL and MariaDB in turn, the benchmark opens 50 sessions of its own on the
benchmark's database (``BUSY_SESSIONS``): 40 idle, 5 running a long sleep, 3 idle in a
transaction, and a blocking pair (one holds a row lock in an open transaction, the other's
UPDATE waits on it). A fresh process (``bench.busy_child``) renders that alias's page
(probe, drift, vitals, activity, maintenance, history, incidents; no result cache, so
every render reads everything again) without the sessions and with them, twice each.
The sessions are ended (terminated, killed) and the table dropped whatever happens.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import MySQLdb
import psycopg
from django.conf import settings

from bench.children import run_json, site_env
from bench.report import Line, ms
from tests.pgcluster import wait_until

IDLE, RUNNING, IDLE_IN_TRANSACTION = 40, 5, 3
BUSY_SESSIONS = IDLE + RUNNING + IDLE_IN_TRANSACTION + 2
RENDERS = 15
TARGET = 2.0
CHILD_LIMIT = 180.0
# What the busy sessions run: long enough to outlast the renders, ended by the cleanup.
SLEEP_SECONDS = 600


class _Vendor:
    """How to open, occupy and end sessions on one vendor's server, with its raw driver."""

    name = ""
    alias = ""

    def __init__(self) -> None:
        self.db = {k: v for k, v in settings.DATABASES[self.alias].items() if k != "TEST"}

    def connect(self) -> Any:
        raise NotImplementedError

    def execute(self, connection: Any, statement: str) -> None:
        cursor = connection.cursor()
        try:
            cursor.execute(statement)
        finally:
            cursor.close()

    def ident(self, connection: Any) -> int:
        raise NotImplementedError

    def is_waiting(self, admin: Any, ident: int) -> bool:
        raise NotImplementedError

    def end(self, admin: Any, idents: list[int]) -> None:
        raise NotImplementedError

    sleep = ""
    begin = "BEGIN"
    # Run by the waiting session first, so that its wait outlasts the renders.
    patient = ""


class _PostgreSQL(_Vendor):
    name, alias = "PostgreSQL", "default"
    sleep = f"SELECT pg_sleep({SLEEP_SECONDS})"

    def connect(self) -> Any:
        db = self.db
        return psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"],
                               password=db["PASSWORD"], dbname=db["NAME"], autocommit=True,
                               application_name="dbhealth-bench-busy")  # fmt: skip

    def ident(self, connection: Any) -> int:
        return int(connection.info.backend_pid)

    def is_waiting(self, admin: Any, ident: int) -> bool:
        row = admin.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [ident]
        ).fetchone()
        return row is not None and row[0] == "Lock"

    def end(self, admin: Any, idents: list[int]) -> None:
        admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", [idents])


class _MariaDB(_Vendor):
    name, alias = "MariaDB", "mariadb"
    sleep = f"SELECT SLEEP({SLEEP_SECONDS})"
    patient = f"SET SESSION innodb_lock_wait_timeout = {SLEEP_SECONDS}"

    def connect(self) -> Any:
        db = self.db
        connection = MySQLdb.connect(host=db["HOST"], port=int(db["PORT"]), user=db["USER"],
                                     password=db["PASSWORD"], database=db["NAME"])  # fmt: skip
        connection.autocommit(True)
        return connection

    def ident(self, connection: Any) -> int:
        return int(connection.thread_id())

    def is_waiting(self, admin: Any, ident: int) -> bool:
        cursor = admin.cursor()
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.INNODB_TRX"
            " WHERE trx_mysql_thread_id = %s AND trx_state = 'LOCK WAIT'",
            [ident],
        )
        return bool(cursor.fetchone()[0])

    def end(self, admin: Any, idents: list[int]) -> None:
        for ident in idents:
            with contextlib.suppress(MySQLdb.Error):  # ended already
                self.execute(admin, f"KILL {int(ident)}")


def _quietly(work: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        with contextlib.suppress(Exception):  # its session is ended by the cleanup
            work()

    return run


@contextmanager
def _busy(vendor: _Vendor) -> Iterator[None]:
    """BUSY_SESSIONS sessions of the benchmark's own on ``vendor``'s server, ended after."""
    admin = vendor.connect()
    opened: list[Any] = []
    threads: list[threading.Thread] = []
    try:
        vendor.execute(admin, "DROP TABLE IF EXISTS dbh_bench_busy")
        vendor.execute(admin, "CREATE TABLE dbh_bench_busy (id int PRIMARY KEY, v text)")
        vendor.execute(admin, "INSERT INTO dbh_bench_busy VALUES (1, 'x'), (2, 'y')")
        opened.extend(vendor.connect() for _ in range(BUSY_SESSIONS))
        # The first IDLE sessions stay open doing nothing: that is all they are for.
        rest = opened[IDLE:]
        running, rest = rest[:RUNNING], rest[RUNNING:]
        in_transaction, (holder, waiter) = rest[:IDLE_IN_TRANSACTION], rest[IDLE_IN_TRANSACTION:]
        for connection in in_transaction:
            vendor.execute(connection, vendor.begin)
            vendor.execute(connection, "SELECT v FROM dbh_bench_busy WHERE id = 2")
        if vendor.patient:
            vendor.execute(waiter, vendor.patient)
        vendor.execute(holder, vendor.begin)
        vendor.execute(holder, "UPDATE dbh_bench_busy SET v = 'held' WHERE id = 1")
        works = [lambda c=c: vendor.execute(c, vendor.sleep) for c in running]
        works.append(
            lambda: vendor.execute(waiter, "UPDATE dbh_bench_busy SET v = 'w' WHERE id = 1")
        )
        for work in works:
            threads.append(threading.Thread(target=_quietly(work), daemon=True))
            threads[-1].start()
        wait_until(lambda: vendor.is_waiting(admin, vendor.ident(waiter)), 20, "the waiter waits")
        yield
    finally:
        vendor.end(admin, [vendor.ident(connection) for connection in opened])
        for thread in threads:
            thread.join(20)
        for connection in opened:
            with contextlib.suppress(Exception):
                connection.close()
        vendor.execute(admin, "DROP TABLE IF EXISTS dbh_bench_busy")
        admin.close()


def _render(vendor: _Vendor) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dbhealth-bench-busy-") as directory:
        site = Path(directory) / "site.db"
        databases = {
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(site)},
            "watched": vendor.db,
        }
        env = site_env(Path(directory), databases, {"CACHE_TTL": 0.0, "TIMEOUT": 2.0})
        answer = run_json("bench.busy_child", ["watched", str(RENDERS)], CHILD_LIMIT, env)
    return answer.data if answer.data is not None else {"problem": answer.problem}


def _measure(vendor: _Vendor) -> dict[str, Any]:
    """Both sides, in the order baseline, busy, busy, baseline (a machine shared with other
    work drifts), each side's renders pooled."""
    first = _render(vendor)
    with _busy(vendor):
        busy = [_render(vendor), _render(vendor)]
    baseline = [first, _render(vendor)]
    return {"baseline": _pooled(baseline), "busy": _pooled(busy)}


def _pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    problems = [run["problem"] for run in runs if "problem" in run]
    if problems:
        return {"problem": problems[0]}
    times = [seconds for run in runs for seconds in run["render_s"]]
    return {
        "runs": runs,
        "statuses": [code for run in runs for code in run["statuses"]],
        "median_render_s": statistics.median(times),
        "page_bytes": runs[-1]["page_bytes"],
        "listed": runs[-1]["listed"],
    }


def run() -> list[Line]:
    lines = []
    for vendor in (_PostgreSQL(), _MariaDB()):
        found = _measure(vendor)
        baseline, busy = found["baseline"], found["busy"]
        benchmark = (
            f"alias page with activity, {vendor.name}: median of 2 × {RENDERS} uncached renders"
            f" with {BUSY_SESSIONS} sessions open ({IDLE} idle, {RUNNING} running,"
            f" {IDLE_IN_TRANSACTION} idle in transaction, a blocking pair)"
        )
        problems = [f"{k}: {v['problem']}" for k, v in found.items() if "problem" in v]
        if problems:
            lines.append(Line("11", benchmark, "", "", "not available: " + "; ".join(problems),
                              "", None, found))  # fmt: skip
            continue
        ratio = busy["median_render_s"] / baseline["median_render_s"]
        seen = busy["listed"]
        complete = seen["running"] >= RUNNING + 1 and seen["blocking"] >= 2
        failed = any(code != 200 for code in [*baseline["statuses"], *busy["statuses"]])
        note = "" if complete else f"; listed only {seen}"
        lines.append(
            Line(
                row="11",
                benchmark=benchmark,
                dbhealth=f"{ms(busy['median_render_s'] * 1000)}"
                f" (page {busy['page_bytes'] / 1024:.1f} KiB; listed: {seen['running']} running,"
                f" {seen['idle']} idle in transaction, {seen['blocking']} in the blocking tree)",
                reference=f"same page, no extra sessions: {ms(baseline['median_render_s'] * 1000)}",
                result=f"{ratio:.2f}×{note}" + ("; not 200" if failed else ""),
                target=f"< {TARGET:g}×",
                holds=ratio < TARGET and complete and not failed,
                data=found,
            )
        )
    return lines
