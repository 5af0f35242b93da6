"""Incident snapshots: what an alias's server was doing when the alias turned down or slow.

An alias *turns* when the verdict it is held at goes from passing to failing (the probe
that made ``dashboard.readiness`` change it: FALL failed probes in a row), or when a probe
finds it up but slower than ``WARN_MS`` right after one that found it up and fast. The
answer that sees the turn (``report.build``: the page, /health/, /metrics, the command)
calls ``take``, which keeps one snapshot of the server's activity and blocking tree with
the alias, read within that answer's own deadline; an answer that read the activity
anyway (the alias page) gives its own read. A server that failed the probe is not asked
again: its snapshot says why it could not be read.

A sick server gets at most one extra connection per turn, across processes: the turn is
claimed with ``sharedcache.add`` under a key made of the alias and the probe that turned
it, and an alias takes at most one snapshot per ``COOLDOWN_SECONDS`` (an alias flapping
around ``WARN_MS``). Snapshots are stored in the shared cache, newest first, at most
``PER_ALIAS`` of them for ``KEEP_SECONDS``, each cut to ``SESSIONS`` sessions per list
and ``MAX_BYTES``; their query text is the activity's own (literals as ``?``, the
alias's passwords removed).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from dashboard import activity, history, sharedcache
from dashboard.activity import Activity, Figures
from dashboard.conf import get_settings
from dashboard.connect import fingerprint
from dashboard.deadline import Deadline
from dashboard.probes import ProbeResult, UnknownAlias
from dashboard.readiness import Readiness
from dashboard.units import duration_text

logger = logging.getLogger(__name__)

KEEP_SECONDS = 24 * 3600
PER_ALIAS = 3
COOLDOWN_SECONDS = 60
# Sessions kept per list (running, idle in transaction) and rows of the blocking tree.
SESSIONS = 20
TREE_ROWS = 30
# What one stored snapshot may weigh as JSON; a bigger one loses sessions until it fits.
MAX_BYTES = 32 * 1024
LOCK_SECONDS = 2.0
LOCK_WAIT_SECONDS = 1.0


@dataclass(frozen=True)
class Snapshot:
    """The activity of one alias's server, read when the alias turned."""

    alias: str
    # What the probe that turned it found: "down", "timeout" or "slow".
    turned: str
    turned_at: datetime
    latency_ms: float | None
    probe_error: str | None
    # Its ``error`` says why nothing could be read ("the server did not answer ...").
    activity: Activity
    # For a server that could not be read: what its last activity read found, if recent.
    last_known: str = ""

    @property
    def headline(self) -> str:
        """``turned slow (1240 ms)``, ``turned down``, ``stopped answering``"""
        if self.turned == "slow" and self.latency_ms is not None:
            return f"turned slow ({self.latency_ms:.0f} ms)"
        return "stopped answering" if self.turned == "timeout" else f"turned {self.turned}"

    def as_json(self) -> dict[str, Any]:
        return {
            "turned": self.turned,
            "turned_at": self.turned_at.isoformat(),
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "probe_error": self.probe_error,
            "activity": self.activity.as_json(),
            "last_known": self.last_known,
        }

    @classmethod
    def from_json(cls, alias: str, data: dict[str, Any]) -> Snapshot:
        latency = data["latency_ms"]
        return cls(
            alias,
            turned=str(data["turned"]),
            turned_at=datetime.fromisoformat(data["turned_at"]),
            latency_ms=None if latency is None else float(latency),
            probe_error=None if data["probe_error"] is None else str(data["probe_error"]),
            activity=Activity.from_json(alias, data["activity"]),
            last_known=str(data.get("last_known") or ""),
        )


# --- seeing a turn ---------------------------------------------------------------------------


def _is_slow(result: ProbeResult, warn_ms: float) -> bool:
    # What nagios.is_slow says; that module presents reports, this one feeds them.
    return result.ok and result.latency_ms is not None and result.latency_ms > warn_ms


def turned(
    result: ProbeResult,
    state: Readiness | None,
    before: history.Sample | None,
    *,
    warn_ms: float,
) -> str | None:
    """What ``result`` turned its alias (``"down"``, ``"timeout"``, ``"slow"``), or None.

    ``state``: the readiness with ``result`` folded in; ``before``: the sample of the probe
    before it. The first probe of an alias turns nothing: there was no "up" to leave.
    """
    at = result.checked_at.timestamp()
    if not result.ok:
        if state is None or state.passing or state.since != at:
            return None
        return result.status if state.changes and state.changes[-1] == at else None
    if not _is_slow(result, warn_ms) or before is None or not before.ok:
        return None
    return "slow" if before.latency_ms is not None and before.latency_ms <= warn_ms else None


def _before(window: history.Window, result: ProbeResult) -> history.Sample | None:
    at = result.checked_at
    earlier = [sample for sample in window.samples if sample.at < at]
    return earlier[-1] if earlier else None


class _Examined:
    """The newest probe of each alias this process has looked at: each is looked at once,
    however many answers show it from the cache."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.newest: dict[str, float] = {}

    def new(self, results: Iterable[ProbeResult]) -> list[ProbeResult]:
        with self.lock:
            fresh = [r for r in results if r.checked_at.timestamp() > self.newest.get(r.alias, 0)]
            for result in fresh:
                self.newest[result.alias] = result.checked_at.timestamp()
        return fresh


_examined = _Examined()


def forget_local() -> None:
    """Forget which probes this process has looked at (tests start each afresh)."""
    with _examined.lock:
        _examined.newest.clear()


def turns(
    found: Sequence[ProbeResult], held: Mapping[str, Readiness], *, warn_ms: float
) -> dict[str, tuple[ProbeResult, str]]:
    """The aliases whose latest probe in ``found`` turned them, with what it found."""
    candidates = [r for r in _examined.new(found) if not r.ok or _is_slow(r, warn_ms)]
    slow = [r.alias for r in candidates if r.ok]
    windows = history.windows(slow, current=found) if slow else {}
    seen: dict[str, tuple[ProbeResult, str]] = {}
    for result in candidates:
        window = windows.get(result.alias)
        before = _before(window, result) if window is not None else None
        kind = turned(result, held.get(result.alias), before, warn_ms=warn_ms)
        if kind is not None:
            seen[result.alias] = (result, kind)
    return seen


# --- taking one ------------------------------------------------------------------------------


def _claimed(alias: str, result: ProbeResult) -> bool:
    """Whether this answer takes the snapshot of this turn (no other process did)."""
    identity = fingerprint(alias)
    turn = sharedcache.key("incident-turn", alias, identity, result.checked_at.timestamp())
    if sharedcache.add(turn, True, KEEP_SECONDS) is not True:
        return False  # taken elsewhere, or no cache to keep it in
    cooldown = sharedcache.key("incident-cooldown", alias, identity)
    return sharedcache.add(cooldown, True, COOLDOWN_SECONDS) is True


def take(
    found: Sequence[ProbeResult],
    held: Mapping[str, Readiness],
    *,
    deadline: Deadline,
    already_read: Mapping[str, Activity] | None = None,
) -> list[Snapshot]:
    """Keep a snapshot of each alias ``found`` shows turning, by ``deadline``."""
    config = get_settings()
    claimed = [
        (result, kind)
        for alias, (result, kind) in turns(found, held, warn_ms=config.warn_ms).items()
        if _claimed(alias, result)
    ]
    reads: dict[str, Activity | Future[Any]] = {}
    for result, _ in claimed:
        read = (already_read or {}).get(result.alias)
        if read is not None:
            reads[result.alias] = read
        elif not result.ok:
            reads[result.alias] = Activity(result.alias, error=_unanswered(result, config.timeout))
        else:
            try:
                reads[result.alias] = activity.start(result.alias, deadline)
            except UnknownAlias:  # it left DATABASES since its probe
                continue
    down = [result.alias for result, _ in claimed if not result.ok]
    figures = activity.cached_figures(down) if down else {}
    taken = []
    for result, kind in claimed:
        pending = reads.get(result.alias)
        if pending is None:
            continue
        if isinstance(pending, Future):
            read = activity.collect(result.alias, pending, deadline)
        else:
            read = pending
        snapshot = Snapshot(
            result.alias,
            turned=kind,
            turned_at=result.checked_at,
            latency_ms=result.latency_ms,
            probe_error=result.error,
            activity=_trimmed(read),
            last_known=_last_known(figures.get(result.alias)) if not result.ok else "",
        )
        _store(snapshot, deadline)
        taken.append(snapshot)
    return taken


def _unanswered(result: ProbeResult, timeout: float) -> str:
    if result.status == "timeout":
        return f"not read: the server did not answer the probe within {timeout:g} s"
    why = f": {result.error}" if result.error else ""
    return f"not read: the probe found the server down{why}"


def _last_known(figures: Figures | None) -> str:
    """``The last read of its activity (at most 60 s before): 97% of max_connections ...``"""
    if figures is None:
        return ""
    parts = []
    if figures.connections_used_ratio is not None:
        parts.append(f"{figures.connections_used_ratio:.0%} of max_connections in use")
    sessions = figures.sessions
    parts += [
        f"{sessions['active']} active, {sessions['idle_in_transaction']} idle in transaction",
        f"{figures.blocked} waiting on a lock",
    ]
    if figures.longest_query_seconds > 0:
        longest = duration_text(figures.longest_query_seconds)
        parts.append(f"the longest query running for {longest}")
    within = duration_text(activity.FIGURES_SECONDS)
    return f"The last read of its activity (at most {within} before): {', '.join(parts)}."


def _trimmed(found: Activity, sessions: int = SESSIONS, rows: int = TREE_ROWS) -> Activity:
    return replace(
        found,
        running=found.running[:sessions],
        idle_in_transaction=found.idle_in_transaction[:sessions],
        blocking=found.blocking[:rows],
        by_user=found.by_user[:10],
    )


def _stored_form(snapshot: Snapshot) -> dict[str, Any]:
    """``snapshot`` as JSON of at most ``MAX_BYTES``: sessions are dropped until it fits."""
    sessions, rows = SESSIONS, TREE_ROWS
    while True:
        shrunk = replace(snapshot, activity=_trimmed(snapshot.activity, sessions, rows))
        stored = shrunk.as_json()
        if len(json.dumps(stored)) <= MAX_BYTES or (sessions == 0 and rows == 0):
            return stored
        sessions, rows = sessions // 2, rows // 2


def _key(alias: str) -> str:
    return sharedcache.key("incidents", alias, fingerprint(alias))


def _fresh(stored: Any) -> list[dict[str, Any]]:
    if not isinstance(stored, list):
        return []
    now = datetime.now(UTC).timestamp()
    kept = []
    for item in stored:
        try:
            if now - datetime.fromisoformat(item["turned_at"]).timestamp() < KEEP_SECONDS:
                kept.append(item)
        except (TypeError, KeyError, ValueError):  # written by another version of the app
            continue
    return kept


def _store(snapshot: Snapshot, deadline: Deadline) -> None:
    key = _key(snapshot.alias)
    wait = min(LOCK_WAIT_SECONDS, deadline.remaining())
    with sharedcache.lock(sharedcache.key("lock", "incidents", key), LOCK_SECONDS, wait) as held:
        if held is None:  # the cache failed (sharedcache warned): nowhere to keep it
            return
        if not held:
            logger.warning("incident snapshot of %r not kept: its list stayed locked", key)
            return
        kept = [_stored_form(snapshot), *_fresh(sharedcache.get(key))]
        kept.sort(key=lambda item: str(item["turned_at"]), reverse=True)
        sharedcache.set(key, kept[:PER_ALIAS], KEEP_SECONDS)


# --- reading ---------------------------------------------------------------------------------


def recent(aliases: Iterable[str]) -> dict[str, tuple[Snapshot, ...]]:
    """The snapshots kept for each alias (newest first) within ``KEEP_SECONDS``."""
    keys = {_key(alias): alias for alias in aliases}
    found: dict[str, tuple[Snapshot, ...]] = {}
    for key, stored in sharedcache.get_many(keys).items():
        alias = keys[key]
        snapshots = []
        for item in _fresh(stored):
            try:
                snapshots.append(Snapshot.from_json(alias, item))
            except (TypeError, KeyError, ValueError):  # written by another version of the app
                continue
        found[alias] = tuple(snapshots)
    return found
