"""The held verdict of each alias: it changes only after FALL failed or RISE good probes in a row.

``record`` receives ``probe_finished``: every probe that ran, in any process sharing the
cache, moves the alias's ``Readiness`` (consecutive passes or failures, the verdict held,
since when, recent changes). The first probe of an alias sets its verdict outright: there
is nothing to hold on to yet.

Like the history, a probe thread never waits for the cache: ``record`` queues the outcome
and one writer thread per process folds it into the stored state, a read-modify-write
serialised across processes by a short ``add`` lock. Until then ``states()`` folds this
process's queued outcomes (and the results being shown) into what it read, so an answer
never shows a verdict that lags behind its own probe. A probe older than the last one
folded in is ignored (two workers finishing out of order); an outcome is lost only when
the cache fails or its lock stays taken for ``LOCK_WAIT_SECONDS``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from dashboard import sharedcache
from dashboard.batching import EXIT_FLUSH_SECONDS, BatchWriter
from dashboard.conf import get_settings
from dashboard.connect import fingerprint
from dashboard.probes import ProbeResult

logger = logging.getLogger(__name__)

# A state nobody has probed for a day is dropped: the next probe starts afresh.
KEEP_SECONDS = 24 * 3600
LOCK_SECONDS = 2
LOCK_WAIT_SECONDS = 3.0
LOCK_POLL_SECONDS = 0.005
BATCH_SECONDS = 0.05
MAX_QUEUED = 10_000

# One probe outcome waiting to be folded in: (alias, ok, checked_at as a Unix time).
Outcome = tuple[str, bool, float]


@dataclass(frozen=True)
class Readiness:
    """What the probes of one alias have said lately, and the verdict they hold it at."""

    alias: str
    # The held state: True while the alias counts as passing.
    passing: bool
    # When the held state began (the probe that turned it), as a Unix time.
    since: float
    # Probes agreeing with the held state since it began, the ones that turned it included.
    probes: int
    # The latest probe, and how many in a row ended the same way.
    last_ok: bool
    last_at: float
    run: int
    # When the held state changed, within the flapping window (oldest first).
    changes: tuple[float, ...] = ()

    @classmethod
    def first(cls, alias: str, ok: bool, at: float) -> Readiness:
        return cls(alias, passing=ok, since=at, probes=1, last_ok=ok, last_at=at, run=1)

    def after(self, ok: bool, at: float, *, fall: int, rise: int, window: float) -> Readiness:
        """The state once a probe at ``at`` found the alias ``ok`` (or not)."""
        if at <= self.last_at:
            return self
        run = self.run + 1 if ok == self.last_ok else 1
        recent = tuple(change for change in self.changes if change > at - window)
        moved = replace(self, last_ok=ok, last_at=at, run=run, changes=recent)
        if ok == self.passing:
            return replace(moved, probes=self.probes + 1)
        if run >= (rise if ok else fall):
            return replace(moved, passing=ok, since=at, probes=run, changes=(*recent, at))
        return moved

    @property
    def since_at(self) -> datetime:
        return datetime.fromtimestamp(self.since, UTC)

    @property
    def held_seconds(self) -> float:
        return max(0.0, time.time() - self.since)

    @property
    def pending(self) -> int:
        """Probes in a row that disagree with the verdict (0: the last probe agrees)."""
        return 0 if self.last_ok == self.passing else self.run

    def changes_within(self, window: float) -> int:
        now = time.time()
        return sum(change > now - window for change in self.changes)

    def is_flapping(self, changes: int, window: float) -> bool:
        return self.changes_within(window) >= changes

    def describe(self) -> str:
        """``down for 3 min 12 s, 41 failed probes``"""
        word = "up" if self.passing else "down"
        kind = "good" if self.passing else "failed"
        plural = "" if self.probes == 1 else "s"
        return f"{word} for {duration(self.held_seconds)}, {self.probes} {kind} probe{plural}"

    def holding(self, *, fall: int, rise: int) -> str:
        """``last probe failed, 2 of 3 before it turns down``; empty when the last agrees."""
        if not self.pending:
            return ""
        if self.passing:
            return f"last probe failed, {self.pending} of {fall} before it turns down"
        return f"last probe good, {self.pending} of {rise} before it turns up"


def duration(seconds: float) -> str:
    """``45 s``, ``3 min 12 s``, ``10 min``, ``2 h 5 min``, ``3 d 4 h``: the two largest units."""
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    first = next((i for i, (count, _) in enumerate(units) if count), len(units) - 1)
    shown = [f"{count} {unit}" for count, unit in units[first : first + 2] if count]
    return " ".join(shown) or "0 s"


def _key(alias: str) -> str:
    return f"dbhealth:readiness:{alias}:{fingerprint(alias)}"


def _lock_key(alias: str) -> str:
    return f"dbhealth:readiness-lock:{alias}:{fingerprint(alias)}"


def _loaded(alias: str, stored: Any) -> Readiness | None:
    if not isinstance(stored, dict):
        return None
    try:
        return Readiness(**{**stored, "alias": alias, "changes": tuple(stored["changes"])})
    except (TypeError, KeyError):  # written by another version of the app: start afresh
        return None


def _fold(state: Readiness | None, alias: str, outcomes: Iterable[Outcome]) -> Readiness | None:
    config = get_settings()
    for _, ok, at in sorted(outcomes, key=lambda outcome: outcome[2]):
        if state is None:
            state = Readiness.first(alias, ok, at)
        else:
            state = state.after(
                ok, at, fall=config.fall, rise=config.rise, window=config.flap_window
            )
    return state


# --- reading ----------------------------------------------------------------------------


def states(aliases: Iterable[str], *, current: Sequence[ProbeResult] = ()) -> dict[str, Readiness]:
    """The state of each alias that has been probed, with this process's outcomes not yet
    stored and the ``current`` results folded in."""
    wanted = list(aliases)
    keys = {_key(alias): alias for alias in wanted}
    stored = sharedcache.get_many(keys)
    waiting: dict[str, list[Outcome]] = {}
    for outcome in [*_writer.waiting(), *(_outcome(result) for result in current)]:
        waiting.setdefault(outcome[0], []).append(outcome)
    found: dict[str, Readiness] = {}
    for key, alias in keys.items():
        state = _fold(_loaded(alias, stored.get(key)), alias, waiting.get(alias, ()))
        if state is not None:
            found[alias] = state
    return found


# --- writing ----------------------------------------------------------------------------


def _outcome(result: ProbeResult) -> Outcome:
    return (result.alias, result.ok, result.checked_at.timestamp())


def _store_all(outcomes: list[Outcome]) -> None:
    by_alias: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        by_alias.setdefault(outcome[0], []).append(outcome)
    for alias, mine in by_alias.items():
        try:
            _store(alias, mine)
        except KeyError:  # the alias left DATABASES since its probe
            continue


_writer: BatchWriter[Outcome] = BatchWriter(
    "dbhealth-readiness-writer", _store_all, batch_seconds=BATCH_SECONDS, max_queued=MAX_QUEUED
)


def record(sender: Any, result: ProbeResult, **kwargs: Any) -> None:
    """Receiver of ``probe_finished`` (connected in ``DashboardConfig.ready``)."""
    _writer.put(_outcome(result))


def flush(timeout: float = EXIT_FLUSH_SECONDS) -> bool:
    """Wait until every outcome recorded so far is stored; False if time ran out."""
    return _writer.flush(timeout)


def _store(alias: str, outcomes: list[Outcome]) -> None:
    lock = _lock_key(alias)
    give_up = time.monotonic() + LOCK_WAIT_SECONDS
    while (taken := sharedcache.add(lock, True, LOCK_SECONDS)) is not True:
        if taken is None:  # the cache failed (and said so): the outcomes are lost
            return
        if time.monotonic() > give_up:
            logger.warning("readiness of %r stayed locked; %d probes lost", alias, len(outcomes))
            return
        time.sleep(LOCK_POLL_SECONDS)
    try:
        key = _key(alias)
        state = _fold(_loaded(alias, sharedcache.get(key)), alias, outcomes)
        if state is not None:
            stored = {**asdict(state), "changes": list(state.changes)}
            del stored["alias"]
            sharedcache.set(key, stored, KEEP_SECONDS)
    finally:
        sharedcache.delete(lock)
