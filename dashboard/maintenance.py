"""Maintenance dangers: slow-burning trouble that breaks a Django site on a day nobody chose.

``extra(alias, vendor, connection, deadline)`` reads, from the catalogs only:

- integer keys near the end of their range: a sequence feeding an int2/int4 column (or
  an int sequence) on PostgreSQL, an ``AUTO_INCREMENT`` of a TINYINT..INT column on
  MariaDB/MySQL, past ``KEY_RANGE_THRESHOLD`` of the range (at 100 % every insert fails);
- PostgreSQL transaction-ID wraparound: ``age(datfrozenxid)`` past ``XID_AGE_THRESHOLD``
  of the ~2.1 billion IDs;
- PostgreSQL indexes left INVALID (a failed ``CREATE INDEX CONCURRENTLY``);
- the largest tables (from the catalogs' own estimates, so no table is opened).

It rides on the probe's connection like vitals (``report.build(maintenance_for=...)``),
each statement bounded like the activity's (statement and lock timeouts). What was
found is cached per alias so ``/metrics`` can serve ``dbhealth_maintenance_dangers``
without opening a connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dashboard import probes, sharedcache
from dashboard.activity import MYSQL, POSTGRESQL, Reader
from dashboard.conf import get_settings
from dashboard.connect import fingerprint
from dashboard.deadline import Deadline
from dashboard.vendors import Vendor
from dashboard.vitals import size_text

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

    @property
    def threshold_text(self) -> str:
        return "" if self.key_range_threshold is None else f"{self.key_range_threshold:.0%}"

    def counts(self) -> dict[str, int]:
        return {kind: sum(1 for d in self.dangers if d.kind == kind) for kind in KINDS}

    def as_json(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "time": self.checked_at.isoformat(),
            "key_range_threshold": self.key_range_threshold,
            "dangers": [danger.as_json() for danger in self.dangers],
            "largest_tables": [table.as_json() for table in self.largest],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Statements:
    """``keys``: (table, column, last value used, largest value the column/sequence takes).
    ``xid_age``: (database, age); ``invalid_indexes``: (index, table);
    ``largest``: (table, bytes, estimated rows)."""

    bound: tuple[str, ...]
    privilege: str
    keys: str
    largest: str
    xid_age: str = ""
    invalid_indexes: str = ""


POSTGRESQL_STATEMENTS = Statements(
    bound=POSTGRESQL.bound,
    privilege="SELECT on the sequences (pg_sequences hides others' last_value)",
    # A sequence is as short as the column it feeds: a bigint sequence on an int4 key
    # still fails at 2^31 - 1. pg_depend links a serial's or identity's sequence to it.
    keys="SELECT COALESCE(a.attrelid::regclass::text, s.schemaname || '.' || s.sequencename),"
         " COALESCE(a.attname, ''), s.last_value,"
         " LEAST(s.max_value, CASE a.atttypid WHEN 'int2'::regtype THEN 32767"
         "  WHEN 'int4'::regtype THEN 2147483647 ELSE s.max_value END)"
         " FROM pg_sequences s"
         " JOIN pg_class c ON c.relname = s.sequencename"
         "  AND c.relnamespace = s.schemaname::regnamespace"
         " LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid"
         "  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')"
         " LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid"
         " WHERE s.last_value IS NOT NULL AND s.increment_by > 0",
    xid_age="SELECT current_database(), age(datfrozenxid) FROM pg_database"
            " WHERE datname = current_database()",
    invalid_indexes="SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text"
                    " FROM pg_index i WHERE NOT i.indisvalid ORDER BY 1",
    largest="SELECT c.oid::regclass::text,"
            " c.relpages::bigint * current_setting('block_size')::bigint,"
            " GREATEST(c.reltuples, 0)::bigint"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'm', 'p')"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg_toast%'"
            " ORDER BY c.relpages DESC LIMIT 5",
)  # fmt: skip

MYSQL_STATEMENTS = Statements(
    bound=MYSQL.bound,
    privilege="SELECT on the tables (information_schema lists only what the account sees)",
    # AUTO_INCREMENT is the next value to hand out.
    keys="SELECT c.TABLE_NAME, c.COLUMN_NAME, t.AUTO_INCREMENT - 1,"
         " CASE CONCAT(c.DATA_TYPE, IF(c.COLUMN_TYPE LIKE '%unsigned%', ' u', ''))"
         "  WHEN 'tinyint' THEN 127 WHEN 'tinyint u' THEN 255"
         "  WHEN 'smallint' THEN 32767 WHEN 'smallint u' THEN 65535"
         "  WHEN 'mediumint' THEN 8388607 WHEN 'mediumint u' THEN 16777215"
         "  WHEN 'int' THEN 2147483647 WHEN 'int u' THEN 4294967295 END"
         " FROM information_schema.COLUMNS c JOIN information_schema.TABLES t"
         "  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME"
         " WHERE c.TABLE_SCHEMA = DATABASE() AND c.EXTRA LIKE '%auto_increment%'"
         " AND c.DATA_TYPE IN ('tinyint', 'smallint', 'mediumint', 'int')"
         " AND t.AUTO_INCREMENT IS NOT NULL",
    largest="SELECT TABLE_NAME, COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0), TABLE_ROWS"
            " FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'"
            " ORDER BY 2 DESC LIMIT 5",
)  # fmt: skip

STATEMENTS: dict[str, Statements] = {
    "postgresql": POSTGRESQL_STATEMENTS,
    "mysql": MYSQL_STATEMENTS,
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
    statements = STATEMENTS.get(vendor.name)
    if statements is None:
        return Maintenance(alias, error=f"no maintenance checks for {vendor.name}")
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
