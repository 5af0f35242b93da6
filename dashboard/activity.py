"""Server activity: what a database server is doing right now, read over one bounded connection.

``extra(alias, vendor, connection, deadline)`` reads, from the server's own views, the
sessions that are running a query (longest first), those idle inside a transaction (and
for how long), who waits on whom (the blocking tree, root blockers first), and how many
connections are open by state and by user/application against ``max_connections``.
It rides on the probe's connection (``report.build(activity_for=[alias])``) or runs on
one from the scheduler (``start``), so it shares each server's connection budget.

Every statement gets a server-side statement timeout (and on PostgreSQL a lock timeout)
from what is left of the answer's deadline: the page stays usable while DDL holds
locks. Only catalog views are read; nothing here takes a lock on a user's table.
Query text is shortened and its literal values replaced by ``?`` so no secret in a
query reaches the page; the probe's own session is never listed. The statements are
the vendor's (``Vendor.sessions``, in ``dashboard/vendors/<vendor>.py``).

A database file has no sessions: for SQLite the activity is its journal mode and
whether a write could start now, from a bounded write probe that writes nothing
(``dashboard.vendors.sqlite.write_probe``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, get_args

from django.db import connections

from dashboard import probes, sharedcache
from dashboard.conf import get_settings
from dashboard.connect import target
from dashboard.deadline import Deadline
from dashboard.redact import clean_message, secrets_of
from dashboard.units import duration_text
from dashboard.vendors import Vendor
from dashboard.vendors.base import FileActivity, SessionStatements, WriteState

# Sessions listed per section, and characters of query text kept (after cleaning).
MAX_SESSIONS = 50
QUERY_LENGTH = 300
# The longest a single statement may run even when the deadline is far away.
STATEMENT_SECONDS = 2.0

# --- cleaning query text --------------------------------------------------------------------

_COMMENT = re.compile(r"/\*.*?(?:\*/|$)|--[^\n]*", re.DOTALL)
_DOLLAR_QUOTED = re.compile(r"\$(\w*)\$.*?(?:\$\1\$|$)", re.DOTALL)
# 'it''s', E'\'', and a string the server cut off before its closing quote.
_SINGLE_QUOTED = re.compile(r"[EeXxBbNn]?'(?:[^'\\]|\\.|'')*(?:'|$)", re.DOTALL)
_DOUBLE_QUOTED = re.compile(r'"(?:[^"\\]|\\.|"")*(?:"|$)', re.DOTALL)
_NUMBER = re.compile(r"(?<![\w$.])(?:0x[0-9a-f]+|\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+)", re.I)
_SPACE = re.compile(r"\s+")


def clean_query(text: str | None, *, double_quotes_are_strings: bool = False) -> str:
    """``text`` with comments dropped, strings and numbers as ``?``, on one short line."""
    if not text:
        return ""
    cleaned = _COMMENT.sub(" ", text)
    cleaned = _DOLLAR_QUOTED.sub("?", cleaned)
    cleaned = _SINGLE_QUOTED.sub("?", cleaned)
    if double_quotes_are_strings:
        # MySQL reads "..." as a string unless ANSI_QUOTES is set; PostgreSQL as a name.
        cleaned = _DOUBLE_QUOTED.sub("?", cleaned)
    cleaned = _NUMBER.sub("?", cleaned)
    cleaned = _SPACE.sub(" ", cleaned).strip()
    return cleaned if len(cleaned) <= QUERY_LENGTH else cleaned[: QUERY_LENGTH - 1] + "…"


# --- what is read -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """One server session (a PostgreSQL backend, a MariaDB/MySQL thread)."""

    id: int
    user: str
    application: str
    client: str
    database: str
    # "active", "idle in transaction", ... (MariaDB's Query/Sleep named the PostgreSQL way).
    state: str
    # Seconds since the current (or, when idle, the last) statement started.
    query_seconds: float | None
    # Seconds since its transaction began (None: not in a transaction, or unknown).
    transaction_seconds: float | None
    wait: str
    query: str
    blocked_by: tuple[int, ...] = ()

    @property
    def query_for(self) -> str:
        return "—" if self.query_seconds is None else duration_text(self.query_seconds)

    @property
    def transaction_for(self) -> str:
        return "—" if self.transaction_seconds is None else duration_text(self.transaction_seconds)

    @property
    def is_running(self) -> bool:
        return self.state == "active"

    @property
    def is_idle_in_transaction(self) -> bool:
        return self.state.startswith("idle in transaction")

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "application": self.application,
            "client": self.client,
            "database": self.database,
            "state": self.state,
            "query_seconds": _rounded(self.query_seconds),
            "transaction_seconds": _rounded(self.transaction_seconds),
            "wait": self.wait,
            "query": self.query,
            "blocked_by": list(self.blocked_by),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Session:
        """The session ``as_json`` gave (read back from the cache)."""
        return cls(
            id=int(data["id"]),
            user=str(data["user"]),
            application=str(data["application"]),
            client=str(data["client"]),
            database=str(data["database"]),
            state=str(data["state"]),
            query_seconds=_seconds(data["query_seconds"]),
            transaction_seconds=_seconds(data["transaction_seconds"]),
            wait=str(data["wait"]),
            query=str(data["query"]),
            blocked_by=tuple(int(ident) for ident in data["blocked_by"]),
        )


@dataclass(frozen=True)
class TreeRow:
    """A session in the blocking tree: depth 0 is a root blocker, 1 waits on it, ..."""

    session: Session
    depth: int

    def as_json(self) -> dict[str, Any]:
        return {"depth": self.depth, **self.session.as_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TreeRow:
        return cls(Session.from_json(data), int(data["depth"]))


@dataclass(frozen=True)
class Count:
    label: str
    count: int


@dataclass(frozen=True)
class Activity:
    alias: str
    running: tuple[Session, ...] = ()
    idle_in_transaction: tuple[Session, ...] = ()
    blocking: tuple[TreeRow, ...] = ()
    by_state: tuple[Count, ...] = ()
    by_user: tuple[Count, ...] = ()
    connections: int | None = None
    max_connections: int | None = None
    # A database file (SQLite) has no sessions: its journal mode and whether a write
    # could start now instead.
    file: FileActivity | None = None
    # A part that could not be read says why ("unavailable: ..."), the rest still shows.
    notes: tuple[str, ...] = ()
    # Why nothing could be read at all (no connection, a backend without sessions).
    error: str | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_json(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "time": self.checked_at.isoformat(),
            "connections": self.connections,
            "max_connections": self.max_connections,
            "by_state": {count.label: count.count for count in self.by_state},
            "by_user": {count.label: count.count for count in self.by_user},
            "running": [session.as_json() for session in self.running],
            "idle_in_transaction": [session.as_json() for session in self.idle_in_transaction],
            "blocking": [row.as_json() for row in self.blocking],
            "file": self.file.as_json() if self.file else None,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, alias: str, data: dict[str, Any]) -> Activity:
        """The activity ``as_json`` gave (read back from the cache). Raises KeyError,
        TypeError or ValueError for a document of another shape."""
        return cls(
            alias,
            running=tuple(Session.from_json(item) for item in data["running"]),
            idle_in_transaction=tuple(
                Session.from_json(item) for item in data["idle_in_transaction"]
            ),
            blocking=tuple(TreeRow.from_json(item) for item in data["blocking"]),
            by_state=_listed_counts(data["by_state"]),
            by_user=_listed_counts(data["by_user"]),
            connections=_whole(data["connections"]),
            max_connections=_whole(data["max_connections"]),
            file=_file_from(data.get("file")),
            notes=tuple(str(note) for note in data["notes"]),
            error=None if data["error"] is None else str(data["error"]),
            checked_at=datetime.fromisoformat(data["time"]),
        )


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def _listed_counts(found: dict[str, Any]) -> tuple[Count, ...]:
    return tuple(Count(str(label), int(count)) for label, count in found.items())


def _whole(value: Any) -> int | None:
    return None if value is None else int(value)


def _file_from(data: dict[str, Any] | None) -> FileActivity | None:
    if data is None:
        return None
    if data["write"] not in get_args(WriteState):
        raise ValueError(f"not a write state: {data['write']!r}")
    return FileActivity(str(data["journal_mode"]), data["write"], float(data["waited_ms"]))


# --- reading ---------------------------------------------------------------------------------


def _run(connection: Any, statement: str, params: dict[str, Any] | None = None) -> list[Any]:
    cursor = connection.cursor()
    try:
        cursor.execute(statement, params) if params else cursor.execute(statement)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _ask(connection: Any, statements: Sequence[str]) -> list[Any]:
    for statement in statements[:-1]:
        with contextlib.suppress(Exception):  # named differently here: try the next one
            return _run(connection, statement)
    return _run(connection, statements[-1])


def _bound(connection: Any, bound: Sequence[str], deadline: Deadline) -> None:
    seconds = deadline.within(STATEMENT_SECONDS)
    if seconds <= 0:
        raise TimeoutError(f"not read within {deadline.budget_text}")
    params = {"ms": str(max(1, round(seconds * 1000))), "seconds": round(seconds, 3)}
    for statement in bound:
        with contextlib.suppress(Exception):  # the other vendor's name: try the next one
            _run(connection, statement, params)
            return


class Reader:
    """Runs statements one by one, each bounded by ``bound`` from what is left of the
    deadline, noting the parts the server refused (and the privilege they need)."""

    def __init__(
        self,
        alias: str,
        connection: Any,
        deadline: Deadline,
        *,
        bound: Sequence[str],
        privilege: str,
    ) -> None:
        self.alias = alias
        self.connection = connection
        self.deadline = deadline
        self.bound = bound
        self.privilege = privilege
        self.notes: list[str] = []

    def ask(self, part: str, choices: Sequence[str]) -> list[Any] | None:
        try:
            _bound(self.connection, self.bound, self.deadline)
            return _ask(self.connection, choices)
        except Exception as error:
            text = probes.error_text(self.alias, error)
            needs = f" (needs {self.privilege})" if _refused(text) else ""
            self.notes.append(f"{part} unavailable: {text}{needs}")
            return None


def _refused(text: str) -> bool:
    return bool(re.search(r"denied|permission|privilege", text, re.IGNORECASE))


def _session(row: Sequence[Any], statements: SessionStatements, secrets: Sequence[str]) -> Session:
    (ident, user, application, client, database, state,
     query_seconds, transaction_seconds, wait, query, blocked_by) = row  # fmt: skip
    cleaned = clean_query(
        _text(query), double_quotes_are_strings=statements.double_quotes_are_strings
    )
    return Session(
        id=int(ident),
        user=_text(user),
        application=_text(application),
        client=_text(client),
        database=_text(database),
        state=_text(state),
        query_seconds=_seconds(query_seconds),
        transaction_seconds=_seconds(transaction_seconds),
        wait=_text(wait),
        query=clean_message(cleaned, secrets) if cleaned else "",
        blocked_by=tuple(int(pid) for pid in blocked_by or ()),
    )


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _seconds(value: Any) -> float | None:
    return None if value is None else max(0.0, float(value))


def _with_lock_waits(sessions: list[Session], waits: Sequence[Sequence[Any]]) -> list[Session]:
    blockers: dict[int, list[int]] = {}
    for waiting, blocking in waits:
        blockers.setdefault(int(waiting), []).append(int(blocking))
    return [
        replace(session, blocked_by=tuple(sorted(set(blockers[session.id]))))
        if session.id in blockers
        else session
        for session in sessions
    ]


def blocking_tree(sessions: Sequence[Session]) -> tuple[TreeRow, ...]:
    """Root blockers first, each followed by the sessions waiting on it (depth first).

    A blocker that is not listed (an idle session holding an advisory lock, say) is shown
    by its id. A wait cycle with no root (a deadlock the server has not broken yet) starts
    at its lowest id.
    """
    by_id = {session.id: session for session in sessions}
    waiters: dict[int, list[int]] = {}
    for session in sessions:
        for blocker in session.blocked_by:
            waiters.setdefault(blocker, []).append(session.id)
            by_id.setdefault(blocker, _unlisted(blocker))
    if not waiters:
        return ()
    blocked = {session.id for session in sessions if session.blocked_by}
    roots = sorted(blocker for blocker in waiters if blocker not in blocked)
    rows: list[TreeRow] = []
    shown: set[int] = set()

    def walk(ident: int, depth: int, path: frozenset[int]) -> None:
        rows.append(TreeRow(by_id[ident], depth))
        shown.add(ident)
        for waiter in sorted(waiters.get(ident, ())):
            if waiter not in path and len(rows) < MAX_SESSIONS:
                walk(waiter, depth + 1, path | {waiter})

    for root in roots:
        walk(root, 0, frozenset({root}))
    for ident in sorted(blocked - shown):
        if ident not in shown:
            walk(ident, 0, frozenset({ident}))
    return tuple(rows)


def _unlisted(ident: int) -> Session:
    return Session(ident, "", "", "", "", "not listed", None, None, "", "")


def _counts(rows: Sequence[Sequence[Any]], pick: Any) -> tuple[Count, ...]:
    totals: dict[str, int] = {}
    for row in rows:
        label = pick(row)
        totals[label] = totals.get(label, 0) + int(row[3])
    ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return tuple(Count(label, count) for label, count in ordered)


def _user_label(row: Sequence[Any]) -> str:
    user, application = _text(row[1]) or "(none)", _text(row[2])
    return f"{user} / {application}" if application else user


def extra(alias: str, vendor: Vendor, connection: Any, deadline: Deadline) -> Activity:
    """The activity of ``alias`` read on an open connection, by ``deadline``."""
    statements = vendor.sessions
    if statements is None:
        if vendor.file_activity is not None:
            return Activity(alias, file=vendor.file_activity(connection, deadline))
        return Activity(alias, error=f"{vendor.name} keeps no server sessions to list")
    reader = Reader(
        alias, connection, deadline, bound=statements.bound, privilege=statements.privilege
    )
    secrets = secrets_of(connections.settings.get(alias, {}))
    rows = reader.ask("Sessions", statements.sessions)
    sessions = [_session(row, statements, secrets) for row in rows or ()]
    if statements.lock_waits and rows is not None:
        waits = reader.ask("Lock waits", statements.lock_waits)
        sessions = _with_lock_waits(sessions, waits or ())
    counted = reader.ask("Connection counts", statements.counts) or []
    limit = reader.ask("max_connections", (statements.max_connections,))
    running = sorted((s for s in sessions if s.is_running), key=lambda s: -(s.query_seconds or 0.0))
    idle = sorted(
        (s for s in sessions if s.is_idle_in_transaction),
        key=lambda s: -(s.transaction_seconds or s.query_seconds or 0.0),
    )
    return Activity(
        alias,
        running=tuple(running[:MAX_SESSIONS]),
        idle_in_transaction=tuple(idle[:MAX_SESSIONS]),
        blocking=blocking_tree(sessions),
        by_state=_counts(counted, lambda row: _text(row[0])),
        by_user=_counts(counted, _user_label)[:20],
        connections=sum(int(row[3]) for row in counted) if counted else None,
        max_connections=int(limit[0][0]) if limit else None,
        notes=tuple(reader.notes),
    )


# --- on the scheduler, within a deadline ------------------------------------------------------


def start(alias: str, deadline: Deadline) -> Future[Any]:
    """Start reading the activity of ``alias`` on the probe scheduler; ``collect`` it."""
    probes.check_alias(alias)
    return probes.run_on_connection(alias, deadline, extra)


def read(alias: str, *, deadline: Deadline) -> Activity:
    """The activity of ``alias`` now. Raises UnknownAlias for an unknown alias only."""
    return collect(alias, start(alias, deadline), deadline)


def collect(alias: str, future: Future[Any] | None, deadline: Deadline) -> Activity:
    """The activity a future (of ``extra``) holds by ``deadline``, or why there is none."""
    answer, why_not = probes.awaited(alias, future, deadline)
    if why_not is not None:
        return Activity(alias, error=why_not)
    return answer if isinstance(answer, Activity) else Activity(alias, error="no answer")


# --- figures for /metrics, from the last read ---------------------------------------------------

# /metrics serves what the alias page or the dbhealth command read lately; a scrape never
# lists sessions itself. Activity is "now": an old figure would mislead, so it goes soon.
FIGURES_SECONDS = 60.0
# The states /metrics names; any other (fastpath function call, a MariaDB command) is "other".
FIGURE_STATES = ("active", "idle", "idle_in_transaction", "other")


@dataclass(frozen=True)
class Figures:
    """The numbers of one activity read that /metrics exports (of the alias's server)."""

    # Sessions per FIGURE_STATES, every one of them present.
    sessions: dict[str, int]
    # Sessions waiting on a lock another session holds (as listed: at most MAX_SESSIONS).
    blocked: int
    longest_query_seconds: float
    longest_idle_in_transaction_seconds: float
    # Open connections over max_connections; None when either is unknown.
    connections_used_ratio: float | None

    @classmethod
    def of(cls, found: Activity) -> Figures:
        sessions = dict.fromkeys(FIGURE_STATES, 0)
        for count in found.by_state:
            state = count.label if count.label in sessions else "other"
            if count.label.startswith("idle in transaction"):
                state = "idle_in_transaction"
            sessions[state] += count.count
        # MariaDB/MySQL count an idle session in a transaction as idle; the list tells.
        listed = len(found.idle_in_transaction) - sessions["idle_in_transaction"]
        if listed > 0:
            moved = min(listed, sessions["idle"])
            sessions["idle"] -= moved
            sessions["idle_in_transaction"] += moved
        idle_for = [
            s.transaction_seconds or s.query_seconds or 0.0 for s in found.idle_in_transaction
        ]
        used = None
        if found.connections is not None and found.max_connections:
            used = found.connections / found.max_connections
        return cls(
            sessions=sessions,
            blocked=len({row.session.id for row in found.blocking if row.depth > 0}),
            longest_query_seconds=max((s.query_seconds or 0.0 for s in found.running), default=0.0),
            longest_idle_in_transaction_seconds=max(idle_for, default=0.0),
            connections_used_ratio=used,
        )

    def stored(self) -> tuple[Any, ...]:
        return (
            [self.sessions[state] for state in FIGURE_STATES],
            self.blocked,
            self.longest_query_seconds,
            self.longest_idle_in_transaction_seconds,
            self.connections_used_ratio,
        )

    @classmethod
    def loaded(cls, stored: Any) -> Figures | None:
        """``stored()`` read back; None for anything else (another version of the app)."""
        try:
            sessions, blocked, longest, idle, used = stored
            return cls(
                sessions={state: int(n) for state, n in zip(FIGURE_STATES, sessions, strict=True)},
                blocked=int(blocked),
                longest_query_seconds=float(longest),
                longest_idle_in_transaction_seconds=float(idle),
                connections_used_ratio=None if used is None else float(used),
            )
        except (TypeError, ValueError):
            return None


def server_of(alias: str) -> str:
    """The server an alias's activity describes (``postgresql:db1:5432``): every session
    of it, whichever of its aliases read them."""
    return target(alias, get_settings().timeout).server


def _figures_key(server: str) -> str:
    return sharedcache.key("activity-figures", server)


def remember(read: Iterable[Activity]) -> None:
    """Keep the figures of every activity read in full, for /metrics (one round trip), under
    the alias's server: 250 tenant databases on one server are one set of figures."""
    # A database file (SQLite) lists no sessions: zeros would only look like a quiet server.
    complete = [
        found for found in read if found.error is None and not found.notes and found.file is None
    ]
    stored = {
        _figures_key(server_of(found.alias)): Figures.of(found).stored() for found in complete
    }
    sharedcache.set_many(stored, FIGURES_SECONDS)


def cached_figures(aliases: Iterable[str]) -> dict[str, Figures]:
    """The figures of each alias's server, read (through any of its aliases) within
    ``FIGURES_SECONDS``."""
    servers = {alias: server_of(alias) for alias in aliases}
    by_server = cached_server_figures(servers.values())
    return {alias: by_server[server] for alias, server in servers.items() if server in by_server}


def cached_server_figures(servers: Iterable[str]) -> dict[str, Figures]:
    """The figures of each server (``server_of``) read within ``FIGURES_SECONDS``."""
    keys = {_figures_key(server): server for server in servers}
    found = {keys[key]: Figures.loaded(value) for key, value in sharedcache.get_many(keys).items()}
    return {server: figures for server, figures in found.items() if figures is not None}
