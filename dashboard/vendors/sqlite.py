"""SQLite through the standard library's sqlite3: a file, no server, no sessions to list."""

from __future__ import annotations

import os
import sqlite3
from typing import Any
from urllib.parse import quote

from dashboard.deadline import Deadline
from dashboard.vendors.base import (
    Answer,
    Params,
    Reading,
    Vendor,
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


_READONLY = 8


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

VENDOR = Vendor(
    name="sqlite",
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
    maintenance=None,
)
