"""What differs between database drivers, in one table keyed by Django's ``vendor``.

A probe connects with the driver itself, using the keyword arguments Django's own
backend would pass (``DatabaseWrapper.get_connection_params()``) plus the probe's
time bounds. Skipping ``init_connection_state`` (time zone, isolation level, version
queries) keeps a probe close to the cost of a bare connect.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

Params = dict[str, Any]


@dataclass(frozen=True)
class Vendor:
    name: str
    # Returns driver kwargs with the probe's time bounds injected (seconds).
    bounded: Callable[[Params, float], Params]
    connect: Callable[[Params], Any]
    # One cheap statement that proves the server (or file) answers; its one row says
    # whether the alias refuses writes (read by ``read_only``).
    ping_sql: str
    server_version: Callable[[Any], str]
    # (connection, the ping's row) -> True when writes would be refused, None if unknown.
    read_only: Callable[[Any, tuple[Any, ...]], bool | None]
    # Whether a failure is the time bound firing; ``waited_out``: the probe used its whole bound.
    is_timeout: Callable[[BaseException, bool], bool]


def _whole_seconds(timeout: float, minimum: int = 1) -> int:
    return max(minimum, math.ceil(timeout))


def _postgresql_bounded(params: Params, timeout: float) -> Params:
    bounded = dict(params)
    # libpq/psycopg raise any connect_timeout below 2 s to 2 s; the caller's
    # deadline reports "timeout" earlier, this only ends the straggling thread.
    bounded["connect_timeout"] = _whole_seconds(timeout, minimum=2)
    millis = max(1, round(timeout * 1000))
    server_options = f"-c statement_timeout={millis}"
    bounded["options"] = (
        f"{params['options']} {server_options}" if params.get("options") else (server_options)
    )
    # A server that vanishes after the handshake would leave a read hanging:
    # libpq has no read timeout, so let TCP give up instead.
    bounded["tcp_user_timeout"] = millis
    bounded["keepalives"] = 1
    bounded["keepalives_idle"] = _whole_seconds(timeout)
    bounded["keepalives_interval"] = 1
    bounded["keepalives_count"] = 2
    bounded.setdefault("application_name", "dbhealth-probe")
    bounded.pop("cursor_factory", None)
    # A ping needs no transaction: no BEGIN before the statement.
    bounded["autocommit"] = True
    return bounded


def _postgresql_connect(params: Params) -> Any:
    import psycopg

    return psycopg.connect(**params)


def _postgresql_version(connection: Any) -> str:
    return str(connection.info.parameter_status("server_version") or "")


def _first_is_true(connection: Any, row: tuple[Any, ...]) -> bool | None:
    return bool(row[0]) if row and row[0] is not None else None


def _postgresql_is_timeout(error: BaseException, waited_out: bool) -> bool:
    import psycopg.errors

    return isinstance(error, psycopg.errors.ConnectionTimeout | psycopg.errors.QueryCanceled)


def _mysql_bounded(params: Params, timeout: float) -> Params:
    seconds = _whole_seconds(timeout)  # mysqlclient takes whole seconds only
    return {
        **params,
        "connect_timeout": seconds,
        "read_timeout": seconds,
        "write_timeout": seconds,
        # mysqlclient turns autocommit off after connecting (PEP 249), one more round
        # trip; a ping needs no transaction, and the server's default is on.
        "autocommit": True,
    }


def _mysql_connect(params: Params) -> Any:
    import MySQLdb

    return MySQLdb.connect(**params)


def _mysql_version(connection: Any) -> str:
    return str(connection.get_server_info())


_MYSQL_LOST_CONNECTION = 2013
_ETIMEDOUT = ("system error: 110", "(110)")


def _mysql_is_timeout(error: BaseException, waited_out: bool) -> bool:
    # 2013 "Lost connection" is both the read_timeout firing and the server going away
    # (a reset is "system error: 104"). The client names errno 110 (ETIMEDOUT) when it
    # can; "during query" names none, and only the time spent tells the two apart.
    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    text = str(error)
    if any(marker in text for marker in _ETIMEDOUT):
        return True
    return code == _MYSQL_LOST_CONNECTION and "system error" not in text and waited_out


def _sqlite_bounded(params: Params, timeout: float) -> Params:
    bounded = dict(params)
    bounded["timeout"] = timeout
    bounded.pop("detect_types", None)
    database = str(bounded["database"])
    if database != ":memory:" and not database.startswith("file:"):
        # mode=rw: a probe must never create an empty file where the database is missing.
        bounded["database"] = f"file:{quote(os.path.abspath(database))}?mode=rw"
    return bounded


def _sqlite_connect(params: Params) -> Any:
    return sqlite3.connect(**params)


def _sqlite_version(connection: Any) -> str:
    return sqlite3.sqlite_version


def _sqlite_read_only(connection: Any, row: tuple[Any, ...]) -> bool | None:
    # sqlite3 opens a write-protected file read-only without a word: ask the file.
    for _, name, path in connection.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return bool(path) and not os.access(path, os.W_OK)
    return None


def _sqlite_is_timeout(error: BaseException, waited_out: bool) -> bool:
    return "locked" in str(error)


def _generic_is_timeout(error: BaseException, waited_out: bool) -> bool:
    return bool(re.search(r"time(d)? ?out", str(error), re.IGNORECASE))


VENDORS: dict[str, Vendor] = {
    "postgresql": Vendor(
        name="postgresql",
        bounded=_postgresql_bounded,
        connect=_postgresql_connect,
        # A standby, or default_transaction_read_only = on: both refuse every write.
        ping_sql="SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'",
        server_version=_postgresql_version,
        read_only=_first_is_true,
        is_timeout=_postgresql_is_timeout,
    ),
    "mysql": Vendor(
        name="mysql",
        bounded=_mysql_bounded,
        connect=_mysql_connect,
        # super_read_only implies read_only, so one variable covers MySQL and MariaDB.
        ping_sql="SELECT @@global.read_only",
        server_version=_mysql_version,
        read_only=_first_is_true,
        is_timeout=_mysql_is_timeout,
    ),
    "sqlite": Vendor(
        name="sqlite",
        bounded=_sqlite_bounded,
        connect=_sqlite_connect,
        # Reads the file header, so a file that is not a database fails; SELECT 1 would not.
        ping_sql="PRAGMA schema_version",
        server_version=_sqlite_version,
        read_only=_sqlite_read_only,
        is_timeout=_sqlite_is_timeout,
    ),
}


def is_timeout(vendor: str, error: BaseException, *, waited_out: bool = False) -> bool:
    known = VENDORS.get(vendor)
    check = known.is_timeout if known else _generic_is_timeout
    return check(error, waited_out)
