"""Server vitals: what state a database server is in, read over one bounded connection.

``read(alias)`` connects the way a probe does (fresh, with the probe's time bounds,
from the probe scheduler, so vitals share each server's connection budget), runs the
vendor's vitals (``Vendor.vitals``, in ``dashboard/vendors/<vendor>.py``), and closes.
Each statement is bounded by the probe timeout, none starts after the answer's
deadline, and what was not read by then says so. A statement that fails makes only its
own vital "unavailable"; vitals never change an alias's probe status.

A vital's ``sql`` may list alternatives: the first one the server accepts is used
(MariaDB and MySQL, or old and new versions, name the same thing differently).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dashboard import probes, sharedcache
from dashboard.conf import get_settings
from dashboard.connect import fingerprint
from dashboard.deadline import Deadline
from dashboard.units import duration_text, size_text
from dashboard.vendors import Vendor
from dashboard.vendors.base import Answer, Reading, Value, Vital

__all__ = [
    "Answer",
    "Reading",
    "Value",
    "Vital",
    "VitalReading",
    "Vitals",
    "cached_lag",
    "collect",
    "duration_text",
    "extra",
    "read",
    "size_text",
    "start",
]


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


def extra(alias: str, vendor: Vendor, connection: Any, deadline: Deadline) -> Vitals:
    """Every vital of ``alias`` read on an open connection (none started after ``deadline``)."""
    if vendor.stop_at_deadline is not None:
        vendor.stop_at_deadline(connection, deadline)
    readings = tuple(
        VitalReading(vital.key, vital.label, _reading(alias, connection, vital, deadline))
        for vital in vendor.vitals
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
