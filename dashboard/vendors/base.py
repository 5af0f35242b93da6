"""What a vendor module provides: the ``Vendor`` type, the shapes of its parts, shared readers.

A vendor module (``postgresql.py``, ...) fills one ``Vendor`` with everything that
differs for its database: how to connect with bounded time, its ping, its vitals,
activity and maintenance statements, its migrations-table query. Every part is a
required field, so a vendor states each one (``None`` or ``()`` when it has no such
thing) and a forgotten part fails at import, not on a page.

The generic modules (``dashboard.vitals``, ``activity``, ``maintenance``, ``drift``,
``cancel``, ``checks``) hold the vendor-neutral logic and ask the vendor for its parts.
Nothing here imports them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from dashboard.deadline import Deadline
from dashboard.units import duration_text, size_text

Params = dict[str, Any]


# --- vitals ---------------------------------------------------------------------------------


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


Value = str | int | float | bool | dict[str, int] | None


@dataclass(frozen=True)
class Reading:
    """A vital as text for people and as ``value`` for scripts (bytes, seconds, counts)."""

    text: str
    value: Value = None
    available: bool = True


@dataclass(frozen=True)
class Vital:
    """One vital: its statement (alternatives: the first the server accepts is used) and
    how its answer reads."""

    key: str
    label: str
    sql: tuple[str, ...]
    read: Callable[[Answer], Reading]


def vital(key: str, label: str, read: Callable[[Answer], Reading], *sql: str) -> Vital:
    return Vital(key=key, label=label, sql=sql, read=read)


def single(show: Callable[[Any], Reading]) -> Callable[[Answer], Reading]:
    """A reader of the first column of the first row."""
    return lambda answer: show(answer.first[0])


def as_text(value: Any) -> Reading:
    return Reading(str(value), str(value))


def as_size(value: Any) -> Reading:
    return Reading(size_text(float(value)), int(value))


def as_uptime(value: Any) -> Reading:
    return Reading(duration_text(float(value)), round(float(value), 1))


def used_of_limit(answer: Answer) -> Reading:
    """(connections used, their limit) as ``12 of 100 (12%)``."""
    used, limit = (int(value) for value in answer.first)
    share = f" ({used / limit:.0%})" if limit else ""
    return Reading(f"{used} of {limit}{share}", {"used": used, "max": limit})


# --- activity and maintenance -----------------------------------------------------------------


@dataclass(frozen=True)
class SessionStatements:
    """A server's sessions: how to list them and act on them. A tuple lists alternatives,
    the first accepted is used.

    ``bound`` statements bound each following statement (``%(ms)s``, ``%(seconds)s``).
    ``sessions`` returns (id, user, application, client, database, state, query seconds,
    transaction seconds, wait, query, blocked-by ids or None), the asking session left out.
    ``lock_waits`` (when ``sessions`` cannot say who blocks) returns (waiting id, blocking id).
    ``counts`` returns (state, user, application, count) over every session.
    ``cancel`` and ``terminate`` take the session id as their one parameter.
    """

    bound: tuple[str, ...]
    sessions: tuple[str, ...]
    counts: tuple[str, ...]
    max_connections: str
    cancel: str
    terminate: str
    lock_waits: tuple[str, ...] = ()
    double_quotes_are_strings: bool = False
    # The privilege a part needs, named when the server refuses it.
    privilege: str = ""


@dataclass(frozen=True)
class MaintenanceStatements:
    """``keys``: (table, column, last value used, largest value the column/sequence takes).
    ``xid_age``: (database, age); ``invalid_indexes``: (index, table);
    ``largest``: (table, bytes, estimated rows)."""

    bound: tuple[str, ...]
    privilege: str
    keys: str
    largest: str
    xid_age: str = ""
    invalid_indexes: str = ""


WriteState = Literal["writable", "busy", "read-only"]


@dataclass(frozen=True)
class FileActivity:
    """What a database file with no server (no sessions to list) says of its activity."""

    journal_mode: str
    # Whether a write could start now, from a bounded attempt that writes nothing.
    write: WriteState
    waited_ms: float

    @property
    def write_text(self) -> str:
        if self.write == "busy":
            waited = f"{self.waited_ms:.0f} ms"
            return f"busy: another connection holds the write lock (waited {waited})"
        return self.write

    def as_json(self) -> dict[str, Any]:
        return {
            "journal_mode": self.journal_mode,
            "write": self.write,
            "write_text": self.write_text,
            "waited_ms": round(self.waited_ms, 1),
        }


# --- the vendor -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Vendor:
    """Everything that differs for one vendor (Django's ``DatabaseWrapper.vendor``)."""

    name: str
    # Each alias is a file of its own (SQLite), not a database on a server: it is named by
    # its path, shares no connection budget and is grouped with no other.
    is_file: bool
    # --- probing: driver kwargs with the probe's time bounds injected (seconds).
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
    # For a driver without statement timeouts: stop the connection's statements at the deadline.
    stop_at_deadline: Callable[[Any, Deadline], None] | None
    # --- the site's own settings: the OPTIONS key that bounds its connect (checks W001).
    connect_timeout_option: str | None
    # --- switching: whether a driver error means "writes are refused here", and how a
    # probe knows an alias is read-only (shown on its pages).
    refuses_writes: Callable[[BaseException], bool]
    read_only_means: str
    # --- migrations drift: one row, true when ``django_migrations`` exists.
    migrations_table_sql: str | None
    # --- vitals, activity, maintenance.
    vitals: tuple[Vital, ...]
    sessions: SessionStatements | None
    file_activity: Callable[[Any, Deadline], FileActivity] | None
    maintenance: MaintenanceStatements | None


def whole_seconds(timeout: float, minimum: int = 1) -> int:
    return max(minimum, math.ceil(timeout))


def first_is_true(connection: Any, row: tuple[Any, ...]) -> bool | None:
    return bool(row[0]) if row and row[0] is not None else None
