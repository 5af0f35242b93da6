"""Maintenance dangers: slow-burning trouble that breaks a Django site on a day nobody chose.

``extra(alias, vendor, connection, deadline)`` reads, from the catalogs only:

- integer keys near the end of their range: a sequence feeding an int2/int4 column (or
  an int sequence) on PostgreSQL, an ``AUTO_INCREMENT`` of a TINYINT..INT column on
  MariaDB/MySQL, past ``KEY_RANGE_THRESHOLD`` of the range (at 100 % every insert fails);
- PostgreSQL transaction-ID wraparound: ``age(datfrozenxid)`` past ``XID_AGE_THRESHOLD``
  of the ~2.1 billion IDs;
- PostgreSQL indexes left INVALID (a failed ``CREATE INDEX CONCURRENTLY``);
- the largest tables (from the catalogs' own estimates, so no table is opened).

The statements are the vendor's (``Vendor.maintenance``, in
``dashboard/vendors/<vendor>.py``). It rides on the probe's connection like vitals
(``report.build(maintenance_for=...)``), each statement bounded like the activity's
(statement and lock timeouts). What was found is cached per alias so ``/metrics`` can
serve ``dbhealth_maintenance_dangers`` without opening a connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dashboard import probes, sharedcache
from dashboard.activity import Reader
from dashboard.conf import get_settings
from dashboard.connect import fingerprint
from dashboard.deadline import Deadline
from dashboard.units import size_text
from dashboard.vendors import Vendor

KINDS = ("key_range", "xid_wraparound", "invalid_index")
# PostgreSQL stops assigning transaction IDs a little before 2^31 are in use.
XID_RANGE = 2**31
LARGEST_TABLES = 5


@dataclass(frozen=True)
class Danger:
    kind: str
    # What is in danger: a table and column, a database, an index.
    subject: str
    text: str
    # Share of the range used (key_range, xid_wraparound); None for an invalid index.
    used: float | None = None
    threshold: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "text": self.text,
            "used": None if self.used is None else round(self.used, 4),
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class TableSize:
    name: str
    bytes: int
    rows: int | None

    @property
    def size(self) -> str:
        return size_text(self.bytes)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "bytes": self.bytes, "rows": self.rows}


@dataclass(frozen=True)
class Maintenance:
    alias: str
    dangers: tuple[Danger, ...] = ()
    largest: tuple[TableSize, ...] = ()
    key_range_threshold: float | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The vendor has no danger to look for (not a failure: nothing was left unread).
    nothing_to_check: str | None = None

    @property
    def threshold_text(self) -> str:
        return "" if self.key_range_threshold is None else f"{self.key_range_threshold:.0%}"

    def counts(self) -> dict[str, int]:
        return {kind: sum(1 for d in self.dangers if d.kind == kind) for kind in KINDS}

    def as_json(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "nothing_to_check": self.nothing_to_check,
            "time": self.checked_at.isoformat(),
            "key_range_threshold": self.key_range_threshold,
            "dangers": [danger.as_json() for danger in self.dangers],
            "largest_tables": [table.as_json() for table in self.largest],
            "notes": list(self.notes),
        }


def _share(used: float) -> str:
    return f"{used:.1%}"


def key_dangers(rows: Iterable[Sequence[Any]], threshold: float) -> list[Danger]:
    """Keys whose last value used is past ``threshold`` of their largest value."""
    dangers = []
    for table, column, last, largest in rows:
        if last is None or not largest:
            continue
        used = max(0.0, float(last)) / float(largest)
        if used >= threshold:
            subject = f"{table}.{column}" if column else str(table)
            dangers.append(
                Danger(
                    "key_range",
                    subject,
                    f"{subject} has used {_share(used)} of its range ({int(last):,} of"
                    f" {int(largest):,}; threshold {threshold:.0%})",
                    used=used,
                    threshold=threshold,
                )
            )
    return sorted(dangers, key=lambda danger: -(danger.used or 0.0))


def xid_dangers(rows: Iterable[Sequence[Any]], threshold: float) -> list[Danger]:
    dangers = []
    for database, age in rows:
        used = int(age) / XID_RANGE
        if used >= threshold:
            dangers.append(
                Danger(
                    "xid_wraparound",
                    str(database),
                    f"database {database} is {int(age):,} transactions from its oldest"
                    f" unfrozen row ({_share(used)} of the way to wraparound; threshold"
                    f" {threshold:.0%}): VACUUM (FREEZE) it",
                    used=used,
                    threshold=threshold,
                )
            )
    return dangers


def index_dangers(rows: Iterable[Sequence[Any]]) -> list[Danger]:
    return [
        Danger(
            "invalid_index",
            str(index),
            f"index {index} on {table} is INVALID (a failed CREATE INDEX CONCURRENTLY, or one"
            " being built now): queries do not use it, writes still maintain it",
        )
        for index, table in rows
    ]


def extra(alias: str, vendor: Vendor, connection: Any, deadline: Deadline) -> Maintenance:
    """The maintenance dangers of ``alias`` read on an open connection, by ``deadline``."""
    statements = vendor.maintenance
    if statements is None:
        known = f"Nothing to check: dbhealth knows no maintenance danger of {vendor.name}."
        return Maintenance(alias, nothing_to_check=known)
    config = get_settings()
    reader = Reader(
        alias, connection, deadline, bound=statements.bound, privilege=statements.privilege
    )
    dangers = key_dangers(
        reader.ask("Integer keys", (statements.keys,)) or (), config.key_range_threshold
    )
    if statements.xid_age:
        rows = reader.ask("Transaction-ID age", (statements.xid_age,)) or ()
        dangers += xid_dangers(rows, config.xid_age_threshold)
    if statements.invalid_indexes:
        dangers += index_dangers(reader.ask("Indexes", (statements.invalid_indexes,)) or ())
    largest = [
        TableSize(str(name), int(size or 0), None if rows is None else int(rows))
        for name, size, rows in reader.ask("Largest tables", (statements.largest,)) or ()
    ]
    found = Maintenance(
        alias,
        dangers=tuple(dangers),
        largest=tuple(largest),
        key_range_threshold=config.key_range_threshold,
        notes=tuple(reader.notes),
    )
    if not reader.notes:
        sharedcache.set(_key(alias), found.counts(), CACHE_SECONDS)
    return found


# /metrics serves what the page or the command last found; a scrape never reads catalogs.
CACHE_SECONDS = 600


def _key(alias: str) -> str:
    return f"dbhealth:maintenance:{alias}:{fingerprint(alias)}"


def cached_counts(aliases: Iterable[str]) -> dict[str, dict[str, int]]:
    """Dangers per kind, per alias read within ``CACHE_SECONDS``."""
    keys = {_key(alias): alias for alias in aliases}
    return {
        keys[key]: {kind: int(value.get(kind, 0)) for kind in KINDS}
        for key, value in sharedcache.get_many(keys).items()
        if isinstance(value, dict)
    }


def start(alias: str, deadline: Deadline) -> Future[Any]:
    probes.check_alias(alias)
    return probes.run_on_connection(alias, deadline, extra)


def read(alias: str, *, deadline: Deadline) -> Maintenance:
    """The maintenance dangers of ``alias`` now. Raises UnknownAlias for an unknown alias."""
    return collect(alias, start(alias, deadline), deadline)


def collect(alias: str, future: Future[Any] | None, deadline: Deadline) -> Maintenance:
    if future is None:
        return Maintenance(alias, error="not read: the probe's connection was already in use")
    wait_futures([future], timeout=deadline.remaining())
    if not future.done():
        return Maintenance(alias, error=f"not read within {deadline.budget_text}")
    error = future.exception()
    if error is None:
        answer = future.result()
        return answer if isinstance(answer, Maintenance) else Maintenance(alias, error="no answer")
    return Maintenance(alias, error=probes.error_text(alias, error))


def problems(found: Iterable[Maintenance]) -> list[str]:
    """One line per danger, for ``dbhealth``'s warnings."""
    return [f"{m.alias}: {danger.text}" for m in found for danger in m.dangers]
