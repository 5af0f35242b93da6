"""Latency history per alias: the last ``HISTORY_LENGTH`` probes, kept in the shared cache.

Every probe that ran is recorded (``record`` receives ``probe_finished``), so the page,
``/health/``, ``/metrics`` and the ``dbhealth`` command all feed the same history, and
workers sharing a Redis cache share it too.

``record`` only queues the sample: one writer thread per process
(``dashboard.batching``) appends queued samples to the cache a tenth of a second
later, so a burst of probes costs one append.
A probe thread never waits for the cache, so a slow or hung cache cannot turn a
healthy alias into a "timeout". An append is a read-modify-write of every alias in the
batch at once (one ``get_many``, one ``set_many``), serialised across processes by one
short lock (``sharedcache.lock``); without it two workers appending at once would each
drop the other's samples. A batch costs four round trips however many aliases it holds.
A sample is lost only if the cache fails (``sharedcache`` then skips it for a back-off),
or a lock holder stalls for longer than ``LOCK_SECONDS`` (its lock expires and two
appends overlap). Samples still queued when the process exits are written by the
writer's ``atexit`` flush, bounded in time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dashboard import sharedcache
from dashboard.batching import EXIT_FLUSH_SECONDS, BatchWriter
from dashboard.conf import get_settings
from dashboard.probes import ProbeResult

logger = logging.getLogger(__name__)

LOCK_SECONDS = 2.0
# Longer than LOCK_SECONDS, so the lock of a writer that died has expired by then.
LOCK_WAIT_SECONDS = 3.0
# One lock for every alias: each batch reads and writes all of its aliases at once.
LOCK_KEY = sharedcache.key("lock", "history")
# A history nobody has probed for a day is dropped rather than kept forever.
KEEP_SECONDS = 24 * 3600
# How long the writer lets samples gather before it appends them.
BATCH_SECONDS = 0.1
# Samples waiting for the writer when the cache is stuck; the oldest go first.
MAX_QUEUED = 10_000

# What one sample is stored as: (checked_at as a Unix time, status, latency in ms).
Stored = tuple[float, str, float | None]


@dataclass(frozen=True)
class Sample:
    at: datetime
    status: str
    latency_ms: float | None

    @property
    def ok(self) -> bool:
        return self.status == "up"


@dataclass(frozen=True)
class Window:
    """The samples of one alias, oldest first, and what the page says about them."""

    alias: str
    samples: tuple[Sample, ...]

    @property
    def latencies(self) -> list[float]:
        return [s.latency_ms for s in self.samples if s.ok and s.latency_ms is not None]

    def percentile(self, percent: float) -> float | None:
        """Nearest-rank percentile of the latencies of the probes that found the alias up."""
        ordered = sorted(self.latencies)
        if not ordered:
            return None
        rank = max(1, math.ceil(percent / 100 * len(ordered)))
        return ordered[rank - 1]

    @property
    def p50(self) -> float | None:
        return self.percentile(50)

    @property
    def p95(self) -> float | None:
        return self.percentile(95)

    @property
    def max(self) -> float | None:
        return max(self.latencies, default=None)

    @property
    def failures(self) -> int:
        return sum(not sample.ok for sample in self.samples)

    @property
    def status(self) -> str | None:
        return self.samples[-1].status if self.samples else None

    @property
    def since(self) -> datetime | None:
        """When the current status began (or the first sample, if it never changed)."""
        if not self.samples:
            return None
        start = len(self.samples) - 1
        while start > 0 and self.samples[start - 1].status == self.samples[-1].status:
            start -= 1
        return self.samples[start].at

    @property
    def changed(self) -> bool:
        """Whether the status changed within the window (else ``since`` is only its start)."""
        return any(sample.status != self.samples[-1].status for sample in self.samples)


def _store_form(result: ProbeResult) -> Stored:
    return (result.checked_at.timestamp(), result.status, result.latency_ms)


def _sample(stored: Stored) -> Sample:
    at, status, latency_ms = stored
    return Sample(at=datetime.fromtimestamp(at, UTC), status=status, latency_ms=latency_ms)


def _at(stored: Stored) -> float:
    return stored[0]


def _newest(items: list[Stored], length: int) -> list[Stored]:
    return items[-length:] if length > 0 else []


def _key(alias: str) -> str:
    return sharedcache.key("history", alias)


# --- reading ----------------------------------------------------------------------------


def windows(aliases: Iterable[str], *, current: Sequence[ProbeResult] = ()) -> dict[str, Window]:
    """The history of each alias, with ``current`` results appended if not stored yet.

    The writer stores a sample a moment after its probe; a page showing a result must
    not show a history that ends before it.
    """
    wanted = list(aliases)
    config = get_settings()
    # Without the cache the page still shows the probe results, with no history.
    found = sharedcache.get_many([_key(alias) for alias in wanted])
    latest = {result.alias: result for result in current}
    history: dict[str, Window] = {}
    for alias in wanted:
        stored: list[Stored] = list(found.get(_key(alias)) or [])
        result = latest.get(alias)
        if result is not None and (not stored or stored[-1][0] < result.checked_at.timestamp()):
            stored = [*stored, _store_form(result)]
        stored = _newest(stored, config.history_length)
        history[alias] = Window(alias, tuple(_sample(item) for item in stored))
    return history


def window(alias: str, *, current: ProbeResult | None = None) -> Window:
    return windows([alias], current=[current] if current else [])[alias]


# --- writing ----------------------------------------------------------------------------


def _append_all(batch: list[tuple[str, Stored]]) -> None:
    by_alias: dict[str, list[Stored]] = {}
    for alias, stored in batch:
        by_alias.setdefault(alias, []).append(stored)
    _append(by_alias)


_writer: BatchWriter[tuple[str, Stored]] = BatchWriter(
    "dbhealth-history-writer", _append_all, batch_seconds=BATCH_SECONDS, max_queued=MAX_QUEUED
)


def record(sender: Any, result: ProbeResult, **kwargs: Any) -> None:
    """Receiver of ``probe_finished`` (connected in ``DashboardConfig.ready``)."""
    _writer.put((result.alias, _store_form(result)))


def flush(timeout: float = EXIT_FLUSH_SECONDS) -> bool:
    """Wait until every sample recorded so far is in the cache; False if time ran out."""
    return _writer.flush(timeout)


def _append(by_alias: dict[str, list[Stored]]) -> None:
    """Merge new samples into the stored history of each alias, all aliases at once."""
    length = get_settings().history_length
    lost = sum(len(samples) for samples in by_alias.values())
    with sharedcache.lock(LOCK_KEY, LOCK_SECONDS, LOCK_WAIT_SECONDS) as held:
        if held is None:  # the cache failed (sharedcache warned once): these are lost
            logger.debug("cache unavailable; %d history samples lost", lost)
            return
        if not held:
            logger.warning("history stayed locked; %d samples lost", lost)
            return
        keys = {_key(alias): alias for alias in by_alias}
        found = sharedcache.get_many(keys)
        if not sharedcache.available():  # a failed read is no empty history to overwrite
            return
        merged = {
            # Workers append in whatever order their probes finished: keep time order.
            key: _newest(sorted([*(found.get(key) or []), *by_alias[alias]], key=_at), length)
            for key, alias in keys.items()
        }
        sharedcache.set_many(merged, KEEP_SECONDS)
