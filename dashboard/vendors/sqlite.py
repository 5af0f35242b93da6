"""SQLite through the standard library's sqlite3: a file, no server, no sessions to list."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from dashboard.deadline import Deadline
from dashboard.vendors.base import (
    Answer,
    FileActivity,
    Params,
    Reading,
    Vendor,
    WriteState,
    as_size,
    as_text,
    single,
    vital,
)

# --- connecting with bounded time -------------------------------------------------------------


def bounded(params: Params, timeout: float) -> Params:
    bounded = dict(params)
    bounded["timeout"] = timeout
    bounded.pop("detect_types", None)
    database = str(bounded["database"])
    if database != ":memory:" and not database.startswith("file:"):
        # mode=rw: a probe must never create an empty file where the database is missing.
        bounded["database"] = f"file:{quote(os.path.abspath(database))}?mode=rw"
    return bounded


def connect(params: Params) -> Any:
    return sqlite3.connect(**params)


def server_version(connection: Any) -> str:
    return sqlite3.sqlite_version


def read_only(connection: Any, row: tuple[Any, ...]) -> bool | None:
    # sqlite3 opens a write-protected file read-only without a word: ask the file.
    for _, name, path in connection.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return bool(path) and not os.access(path, os.W_OK)
    return None


def is_timeout(error: BaseException, waited_out: bool) -> bool:
    return "locked" in str(error)


def _result_code(error: BaseException) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    if not isinstance(code, int):
        code = getattr(error.__cause__, "sqlite_errorcode", None)
    # Extended result codes share the primary code's low byte.
    return code & 0xFF if isinstance(code, int) else None


_BUSY, _LOCKED, _READONLY = 5, 6, 8


def refuses_writes(error: BaseException) -> bool:
    return _result_code(error) == _READONLY or "readonly database" in str(error)


def stop_at_deadline(connection: Any, deadline: Deadline) -> None:
    # sqlite3 has no statement timeout: a quick_check of a big file is interrupted
    # by the progress handler once the deadline has passed.
    if isinstance(connection, sqlite3.Connection):
        connection.set_progress_handler(lambda: int(deadline.expired), 10_000)


# --- vitals -------------------------------------------------------------------------------------


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


VITALS = (
    vital("version", "SQLite version", single(as_text), "SELECT sqlite_version()"),
    vital("size", "File size", single(as_size),
          "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"),
    vital("journal_mode", "Journal mode", single(as_text), "PRAGMA journal_mode"),
    vital("quick_check", "Quick check", _quick_check, "PRAGMA quick_check"),
)  # fmt: skip

# --- activity: whether a write could start now ------------------------------------------------

# The longest the write probe waits for the lock. A write the site makes now would wait
# behind the holder (Django's default SQLite timeout is 5 s); waiting longer here would
# only slow the page.
WRITE_WAIT_SECONDS = 0.5


def file_activity(connection: Any, deadline: Deadline) -> FileActivity:
    """The journal mode, and whether a write could start now (see ``write_probe``)."""
    with _busy_timeout(connection, _wait_for(deadline)):
        (journal_mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    state, waited_ms = write_probe(connection, deadline)
    return FileActivity(str(journal_mode), state, waited_ms)


def write_probe(connection: Any, deadline: Deadline) -> tuple[WriteState, float]:
    """Whether a write could start now, and how long asking waited (ms). Writes nothing.

    ``BEGIN IMMEDIATE`` takes the write lock, waiting for it ``WRITE_WAIT_SECONDS`` or
    half of what is left before the deadline, whichever is less. It does not fail on a
    read-only connection (a write-protected file, ``mode=ro``): SQLite quietly begins a
    read there, so a ``DELETE`` that matches no row asks for the write. Then
    ``ROLLBACK``: the lock is held for the time of one statement.
    """
    if connection.in_transaction:
        raise RuntimeError("the connection is inside a transaction; no write probe")
    with _busy_timeout(connection, _wait_for(deadline)):
        started = time.perf_counter()
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            return _refused(error), _ms_since(started)
        waited_ms = _ms_since(started)
        try:
            _ask_for_write(connection)
        except sqlite3.OperationalError as error:
            return _refused(error), waited_ms
        finally:
            connection.execute("ROLLBACK")
    return ("read-only" if read_only(connection, ()) else "writable"), waited_ms


def _wait_for(deadline: Deadline) -> float:
    # At most half of what is left: the answer must still reach the caller by the deadline.
    wait = min(WRITE_WAIT_SECONDS, deadline.remaining() / 2)
    if wait <= 0:
        raise TimeoutError(f"not read within {deadline.budget_text}")
    return wait


@contextmanager
def _busy_timeout(connection: Any, seconds: float) -> Iterator[None]:
    """Wait at most ``seconds`` for a lock, then put back the site's own wait."""
    (site_wait,) = connection.execute("PRAGMA busy_timeout").fetchone()
    connection.execute(f"PRAGMA busy_timeout = {max(1, round(seconds * 1000))}")
    try:
        yield
    finally:
        connection.execute(f"PRAGMA busy_timeout = {int(site_wait)}")


def _ask_for_write(connection: Any) -> None:
    row = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'"
        " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND sql NOT LIKE 'CREATE VIRTUAL%'"
        " ORDER BY rowid LIMIT 1"
    ).fetchone()
    if row is not None:  # a file with no table is judged by its permissions alone
        table = '"' + str(row[0]).replace('"', '""') + '"'
        connection.execute(f"DELETE FROM {table} WHERE 0")  # noqa: S608 - a quoted name


def _refused(error: sqlite3.OperationalError) -> WriteState:
    code = _result_code(error)
    if code in (_BUSY, _LOCKED):
        return "busy"
    if code == _READONLY:
        return "read-only"
    raise error


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


VENDOR = Vendor(
    name="sqlite",
    is_file=True,
    bounded=bounded,
    connect=connect,
    # Reads the file header, so a file that is not a database fails; SELECT 1 would not.
    ping_sql="PRAGMA schema_version",
    server_version=server_version,
    read_only=read_only,
    is_timeout=is_timeout,
    stop_at_deadline=stop_at_deadline,
    # A file opens at once; OPTIONS["timeout"] (default 5 s) bounds waiting on a lock.
    connect_timeout_option=None,
    refuses_writes=refuses_writes,
    read_only_means="its file is write-protected",
    migrations_table_sql="SELECT COUNT(*) FROM sqlite_master"
    " WHERE type = 'table' AND name = 'django_migrations'",
    vitals=VITALS,
    sessions=None,
    file_activity=file_activity,
    maintenance=None,
)
