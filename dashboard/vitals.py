"""Server vitals: what state a database server is in, read over one bounded connection.

``read(alias)`` connects the way a probe does (fresh, with the probe's time bounds,
from the probe scheduler, so vitals share each server's connection budget), runs the
vendor's statements from ``VITALS``, and closes. Each statement is bounded by the probe
timeout, none starts after the answer's deadline, and what was not read by then says
so. A statement that fails makes only its own vital "unavailable"; vitals
never change an alias's probe status.

``VITALS`` is the one table of vendor queries. A vital's ``sql`` may list
alternatives: the first one the server accepts is used (MariaDB and MySQL, or old
and new versions, name the same thing differently).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dashboard import probes, sharedcache
from dashboard.conf import get_settings
from dashboard.connect import fingerprint
from dashboard.deadline import Deadline
from dashboard.vendors import Vendor

Value = str | int | float | bool | dict[str, int] | None


@dataclass(frozen=True)
class Answer:
    """The rows a statement returned, with its column names."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]

    @property
    def first(self) -> tuple[Any, ...]:
        if not self.rows:
            raise LookupError("the server returned no row")
        return self.rows[0]

    def named(self) -> dict[str, Any]:
        return dict(zip(self.columns, self.first, strict=True))


@dataclass(frozen=True)
class Reading:
    """A vital as text for people and as ``value`` for scripts (bytes, seconds, counts)."""

    text: str
    value: Value = None
    available: bool = True


@dataclass(frozen=True)
class Vital:
    key: str
    label: str
    sql: tuple[str, ...]
    read: Callable[[Answer], Reading]


@dataclass(frozen=True)
class VitalReading:
    key: str
    label: str
    reading: Reading

    def as_json(self) -> dict[str, Value]:
        return {
            "key": self.key,
            "label": self.label,
            "text": self.reading.text,
            "value": self.reading.value,
            "available": self.reading.available,
        }


@dataclass(frozen=True)
class Vitals:
    alias: str
    readings: tuple[VitalReading, ...] = ()
    # Why nothing could be read at all (no connection, an unsupported backend).
    error: str | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_json(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "time": self.checked_at.isoformat(),
            "readings": [reading.as_json() for reading in self.readings],
        }


# --- how values are shown ---------------------------------------------------------------


def size_text(size: float) -> str:
    units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    unit = 0
    while size >= 1024 and unit < len(units) - 1:
        size /= 1024
        unit += 1
    return f"{size:.0f} {units[unit]}" if unit == 0 else f"{size:.1f} {units[unit]}"


def duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    parts = []
    whole = int(seconds)
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if whole >= length:
            parts.append(f"{whole // length} {unit}")
            whole %= length
    return " ".join(parts[:2])


def _single(show: Callable[[Any], Reading]) -> Callable[[Answer], Reading]:
    """A reader of the first column of the first row."""
    return lambda answer: show(answer.first[0])


def _text(value: Any) -> Reading:
    return Reading(str(value), str(value))


def _size(value: Any) -> Reading:
    return Reading(size_text(float(value)), int(value))


def _uptime(value: Any) -> Reading:
    return Reading(duration_text(float(value)), round(float(value), 1))


def _connections(answer: Answer) -> Reading:
    used, limit = (int(value) for value in answer.first)
    share = f" ({used / limit:.0%})" if limit else ""
    return Reading(f"{used} of {limit}{share}", {"used": used, "max": limit})


# --- PostgreSQL ---------------------------------------------------------------------------


def _postgresql_read_only(answer: Answer) -> Reading:
    in_recovery, read_only = answer.first
    if in_recovery:
        return Reading("in recovery (a read-only standby)", True)
    if read_only == "on":
        return Reading("read-only (default_transaction_read_only)", True)
    return Reading("read-write", False)


def _postgresql_lag(answer: Answer) -> Reading:
    in_recovery, caught_up, seconds, paused = answer.first
    if not in_recovery:
        return Reading("not a replica", None)
    if seconds is None:
        return Reading("replica; no transaction replayed since it started", None)
    note = "; replay paused" if paused else ""
    if caught_up:
        # An idle primary sends nothing to replay: the last replay may be long ago
        # while the replica has everything it received.
        return Reading(
            f"0 s (caught up; last transaction replayed {duration_text(float(seconds))} ago)"
            + note,
            0.0,
        )
    return Reading(f"{duration_text(float(seconds))} behind{note}", round(float(seconds), 3))


# --- MariaDB / MySQL ------------------------------------------------------------------------


def _mysql_uptime(answer: Answer) -> Reading:
    return _uptime(answer.first[1])


def _mysql_read_only(answer: Answer) -> Reading:
    read_only = bool(int(answer.first[0]))
    return Reading("read-only" if read_only else "read-write", read_only)


def _mysql_lag(answer: Answer) -> Reading:
    if not answer.rows:
        return Reading("not a replica", None)
    status = answer.named()
    seconds = status.get("Seconds_Behind_Master", status.get("Seconds_Behind_Source"))
    if seconds is None:
        io = status.get("Slave_IO_Running", status.get("Replica_IO_Running"))
        sql = status.get("Slave_SQL_Running", status.get("Replica_SQL_Running"))
        return Reading(f"replication stopped (IO thread: {io}, SQL thread: {sql})", None)
    return Reading(f"{duration_text(float(seconds))} behind", int(seconds))


# --- SQLite ---------------------------------------------------------------------------------


def _quick_check(answer: Answer) -> Reading:
    # One row per problem, some spanning lines under a "*** in database main ***" heading.
    problems = [
        line
        for row in answer.rows
        for line in str(row[0]).splitlines()
        if line.strip() and not line.startswith("***")
    ]
    if problems == ["ok"]:
        return Reading("ok", "ok")
    shown = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
    return Reading(f"{len(problems)} problem(s): {shown}", len(problems))


def _vital(key: str, label: str, read: Callable[[Answer], Reading], *sql: str) -> Vital:
    return Vital(key=key, label=label, sql=sql, read=read)


VITALS: dict[str, tuple[Vital, ...]] = {
    "postgresql": (
        _vital("version", "Server version", _single(_text),
               "SELECT current_setting('server_version')"),
        _vital("uptime", "Uptime", _single(_uptime),
               "SELECT EXTRACT(EPOCH FROM now() - pg_postmaster_start_time())"),
        _vital("connections", "Connections in use", _connections,
               "SELECT count(*) FILTER (WHERE backend_type = 'client backend'),"
               " current_setting('max_connections')::int FROM pg_stat_activity"),
        _vital("size", "Database size", _single(_size),
               "SELECT pg_database_size(current_database())"),
        _vital("read_only", "Read-only / recovery", _postgresql_read_only,
               "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')"),
        _vital("replication_lag", "Replication lag", _postgresql_lag,
               "SELECT pg_is_in_recovery(),"
               " pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn(),"
               " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()),"
               " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END"),
    ),
    "mysql": (
        _vital("version", "Server version", _single(_text), "SELECT VERSION()"),
        _vital("uptime", "Uptime", _mysql_uptime, "SHOW GLOBAL STATUS LIKE 'Uptime'"),
        _vital("connections", "Connections in use", _connections,
               "SELECT VARIABLE_VALUE, @@max_connections FROM information_schema.GLOBAL_STATUS"
               " WHERE VARIABLE_NAME = 'THREADS_CONNECTED'",
               "SELECT VARIABLE_VALUE, @@max_connections FROM performance_schema.global_status"
               " WHERE VARIABLE_NAME = 'Threads_connected'"),
        _vital("size", "Database size", _single(_size),
               "SELECT COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) FROM information_schema.TABLES"
               " WHERE TABLE_SCHEMA = DATABASE()"),
        _vital("read_only", "Read-only", _mysql_read_only, "SELECT @@GLOBAL.read_only"),
        # SHOW REPLICA STATUS: MariaDB 10.5.1+, MySQL 8.0.22+; SHOW SLAVE STATUS before.
        _vital("replication_lag", "Replication lag", _mysql_lag,
               "SHOW REPLICA STATUS", "SHOW SLAVE STATUS"),
    ),
    "sqlite": (
        _vital("version", "SQLite version", _single(_text), "SELECT sqlite_version()"),
        _vital("size", "File size", _single(_size),
               "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"),
        _vital("journal_mode", "Journal mode", _single(_text), "PRAGMA journal_mode"),
        _vital("quick_check", "Quick check", _quick_check, "PRAGMA quick_check"),
    ),
}  # fmt: skip


# --- reading them ---------------------------------------------------------------------------


def _run(connection: Any, statement: str) -> Answer:
    cursor = connection.cursor()
    try:
        cursor.execute(statement)
        columns = tuple(column[0] for column in cursor.description or ())
        return Answer(columns, tuple(tuple(row) for row in cursor.fetchall()))
    finally:
        cursor.close()


def _ask(connection: Any, statements: Sequence[str]) -> Answer:
    """The answer to the first statement the server accepts (the last one's error if none)."""
    for statement in statements[:-1]:
        with contextlib.suppress(Exception):  # named differently here: try the next one
            return _run(connection, statement)
    return _run(connection, statements[-1])


def _bound_sqlite(connection: Any, deadline: Deadline) -> None:
    # sqlite3 has no statement timeout: a quick_check of a big file is interrupted
    # by the progress handler once the deadline has passed.
    if isinstance(connection, sqlite3.Connection):
        connection.set_progress_handler(lambda: int(deadline.expired), 10_000)


def extra(alias: str, vendor: Vendor, connection: Any, deadline: Deadline) -> Vitals:
    """Every vital of ``alias`` read on an open connection (none started after ``deadline``)."""
    _bound_sqlite(connection, deadline)
    readings = tuple(
        VitalReading(vital.key, vital.label, _reading(alias, connection, vital, deadline))
        for vital in VITALS.get(vendor.name, ())
    )
    _remember_lag(alias, readings)
    return Vitals(alias, readings)


# /metrics serves the replication lag the last read found; a scrape never reads vitals.
LAG_CACHE_SECONDS = 60


def _lag_key(alias: str) -> str:
    return f"dbhealth:vitals:lag:{alias}:{fingerprint(alias)}"


def _remember_lag(alias: str, readings: Sequence[VitalReading]) -> None:
    for vital in readings:
        if vital.key == "replication_lag" and vital.reading.available:
            # None (not a replica) replaces what an earlier read found.
            sharedcache.set(_lag_key(alias), vital.reading.value, LAG_CACHE_SECONDS)


def cached_lag(aliases: Iterable[str]) -> dict[str, float]:
    """Seconds behind its primary, per replica alias read within ``LAG_CACHE_SECONDS``."""
    keys = {_lag_key(alias): alias for alias in aliases}
    return {
        keys[key]: float(value)
        for key, value in sharedcache.get_many(keys).items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


def start(alias: str, deadline: Deadline) -> Future[Any]:
    """Start reading the vitals of ``alias`` on the probe scheduler; ``collect`` them."""
    probes.check_alias(alias)
    return probes.run_on_connection(alias, deadline, extra)


def read(alias: str, *, timeout: float | None = None, deadline: Deadline | None = None) -> Vitals:
    """The vitals of ``alias`` now (uncached). Raises UnknownAlias for an unknown alias only."""
    bound = deadline or Deadline.after(get_settings().timeout if timeout is None else timeout)
    return collect(alias, start(alias, bound), bound)


def collect(alias: str, future: Future[Any] | None, deadline: Deadline) -> Vitals:
    """The vitals a future (of ``extra``) holds by ``deadline``, or why there are none."""
    answer, why_not = probes.awaited(alias, future, deadline)
    if why_not is not None:
        return Vitals(alias, error=why_not)
    return answer if isinstance(answer, Vitals) else Vitals(alias, error="no answer")


def _reading(alias: str, connection: Any, vital: Vital, deadline: Deadline) -> Reading:
    if deadline.expired:
        return Reading(f"unavailable: not read within {deadline.budget_text}", available=False)
    try:
        return vital.read(_ask(connection, vital.sql))
    except Exception as error:
        return Reading(f"unavailable: {probes.error_text(alias, error)}", available=False)
