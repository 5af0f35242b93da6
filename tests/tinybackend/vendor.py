"""A vendor module written the way a new one would be: one file, one ``VENDOR``.

It reaches the ``tinysql`` backend (``tests.tinybackend``) with the standard library's
sqlite3 and says so in every part it has, so a test can see each part used.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from dashboard.vendors.base import Params, Reading, Vendor, single, vital


def bounded(params: Params, timeout: float) -> Params:
    return {**params, "timeout": timeout}


def connect(params: Params) -> Any:
    return sqlite3.connect(**params)


def is_timeout(error: BaseException, waited_out: bool) -> bool:
    return "locked" in str(error)


VENDOR = Vendor(
    name="tinysql",
    is_file=True,
    bounded=bounded,
    connect=connect,
    ping_sql="SELECT 0",
    server_version=lambda connection: f"tiny {sqlite3.sqlite_version}",
    read_only=lambda connection, row: bool(row[0]),
    is_timeout=is_timeout,
    stop_at_deadline=None,
    connect_timeout_option="timeout",
    refuses_writes=lambda error: "readonly" in str(error),
    read_only_means="tiny files never refuse",
    migrations_table_sql=None,
    vitals=(
        vital(
            "answer", "The answer", single(lambda value: Reading(f"{value}!", value)), "SELECT 42"
        ),
    ),  # fmt: skip
    sessions=None,
    file_activity=None,
    maintenance=None,
)
