"""The application's own connection pools, read in every worker and combined.

A fresh probe answers "can a new client reach the server?"; this module answers "are the
workers starved for connections?". Each process reads the psycopg pools Django opened
for it (``OPTIONS={"pool": ...}``) with ``get_stats()`` (``pop_stats()`` would reset the
counters other readers rely on) and publishes its figures to the shared cache with a
short TTL, from a daemon thread started on the process's first request. Any worker then
answers with the sum and each worker's figures; a worker whose figures expired is listed
as having stopped publishing until it is forgotten.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from django.db import connections

from dashboard import sharedcache
from dashboard.conf import get_settings

logger = logging.getLogger(__name__)

# Each publishing worker holds one of these slots (taken with cache.add, so workers never
# overwrite each other's entry); readers read them all at once.
WORKER_SLOTS = 64
# A worker that stopped publishing is named for this many TTLs, then forgotten.
FORGET_AFTER_TTLS = 10


def _slot_key(index: int) -> str:
    return f"dbhealth:pools:slot:{index}"


# The slot this process holds, as (pid, index): a forked child claims its own.
_slot: tuple[int, int] | None = None


def _worker_key(worker: str) -> str:
    return f"dbhealth:pools:worker:{worker}"


def worker_id() -> str:
    """``host:pid`` of this process (several hosts may share the cache)."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class PoolFigures:
    """One pool of one process, as ``get_stats()`` gave it."""

    alias: str
    worker: str
    size: int
    available: int
    requests_waiting: int
    min_size: int
    max_size: int
    requests: int = 0
    wait_ms: int = 0
    errors: int = 0
    lost: int = 0
    # The pool was open when this process forked from its parent (Django ticket #36957).
    opened_before_fork: bool = False
    queued: int = 0
    # Counters over the last ``recent_seconds`` (up to WAIT_WINDOW): psycopg only adds up,
    # so the recent wait is the difference of two of this process's readings.
    recent_requests: int = 0
    recent_queued: int = 0
    recent_wait_ms: int = 0
    recent_seconds: float = 0.0

    @property
    def in_use(self) -> int:
        return max(0, self.size - self.available)

    @property
    def average_wait_ms(self) -> float | None:
        """Wait for a connection per request over the recent window (None: no request
        then). Every request counts: one that found a connection idle waited 0."""
        return self.recent_wait_ms / self.recent_requests if self.recent_requests else None

    def since(self, before: PoolFigures | None, seconds: float) -> PoolFigures:
        """These figures with the ``recent_*`` counters taken from ``before`` on."""
        last = before or PoolFigures(self.alias, self.worker, 0, 0, 0, 0, 0)
        counters = ("requests", "queued", "wait_ms")
        if any(getattr(self, name) < getattr(last, name) for name in counters):
            # The pool was replaced (close_pool) or its counters reset: count from zero.
            last = PoolFigures(self.alias, self.worker, 0, 0, 0, 0, 0)
        return replace(
            self,
            recent_requests=self.requests - last.requests,
            recent_queued=self.queued - last.queued,
            recent_wait_ms=self.wait_ms - last.wait_ms,
            recent_seconds=round(seconds, 3),
        )

    @classmethod
    def from_stats(cls, alias: str, worker: str, stats: Mapping[str, int]) -> PoolFigures:
        return cls(
            opened_before_fork=alias in _inherited,
            alias=alias,
            worker=worker,
            size=stats.get("pool_size", 0),
            available=stats.get("pool_available", 0),
            requests_waiting=stats.get("requests_waiting", 0),
            min_size=stats.get("pool_min", 0),
            max_size=stats.get("pool_max", 0),
            requests=stats.get("requests_num", 0),
            wait_ms=stats.get("requests_wait_ms", 0),
            # psycopg counts a request that timed out waiting as a request error.
            errors=stats.get("requests_errors", 0) + stats.get("connections_errors", 0),
            lost=stats.get("connections_lost", 0),
            queued=stats.get("requests_queued", 0),
        )


@dataclass(frozen=True)
class PoolView:
    """One alias's pool across every worker that published it."""

    alias: str
    workers: tuple[PoolFigures, ...]
    stopped: tuple[str, ...] = ()

    def _sum(self, name: str) -> int:
        return sum(int(getattr(figures, name)) for figures in self.workers)

    @property
    def size(self) -> int:
        return self._sum("size")

    @property
    def available(self) -> int:
        return self._sum("available")

    @property
    def in_use(self) -> int:
        return self._sum("in_use")

    @property
    def requests_waiting(self) -> int:
        return self._sum("requests_waiting")

    @property
    def max_size(self) -> int:
        return self._sum("max_size")

    @property
    def min_size(self) -> int:
        return self._sum("min_size")

    @property
    def requests(self) -> int:
        return self._sum("requests")

    @property
    def wait_ms(self) -> int:
        return self._sum("wait_ms")

    @property
    def errors(self) -> int:
        return self._sum("errors")

    @property
    def lost(self) -> int:
        return self._sum("lost")

    @property
    def forked(self) -> tuple[str, ...]:
        """Workers whose pool was inherited, open, from the process they forked from."""
        return tuple(f.worker for f in self.workers if f.opened_before_fork)

    @property
    def recent_requests(self) -> int:
        return self._sum("recent_requests")

    @property
    def average_wait_ms(self) -> float | None:
        """Wait per request over every worker's last interval (None: no request)."""
        requests = self.recent_requests
        return self._sum("recent_wait_ms") / requests if requests else None

    @property
    def slow_workers(self) -> tuple[PoolFigures, ...]:
        """Workers whose requests waited longer than ``POOL_WAIT_WARN_MS`` on average."""
        threshold = get_settings().pool_wait_warn_ms
        return tuple(
            f
            for f in self.workers
            if f.average_wait_ms is not None and f.average_wait_ms > threshold
        )

    @property
    def warns(self) -> bool:
        return self.requests_waiting > 0 or bool(self.forked) or bool(self.slow_workers)

    @property
    def problem(self) -> str | None:
        """The warning in the operator's words, or None."""
        found = []
        if self.requests_waiting:
            starved = [f.worker for f in self.workers if f.requests_waiting]
            found.append(
                f"{self.alias} pool exhausted: {self.requests_waiting} request(s) waiting for"
                f" a connection ({self.in_use} of {self.max_size} in use; worker"
                f" {', '.join(starved)})"
            )
        slow = self.slow_workers
        if slow:
            requests = sum(f.recent_requests for f in slow)
            waited = sum(f.recent_wait_ms for f in slow) / requests
            queued = sum(f.recent_queued for f in slow)
            seconds = max(f.recent_seconds for f in slow)
            found.append(
                f"{self.alias} pool slow to lend: requests waited {waited:.0f} ms on average"
                f" for a connection over the last {seconds:.1f} s ({queued} of {requests}"
                f" queued; POOL_WAIT_WARN_MS is {get_settings().pool_wait_warn_ms:g}; worker"
                f" {', '.join(f.worker for f in slow)})"
            )
        if self.forked:
            found.append(
                f"{self.alias} pool opened before the process forked (worker"
                f" {', '.join(self.forked)}): the workers share its sockets. {FORK_FIX}"
            )
        return "; ".join(found) or None

    @property
    def text(self) -> str:
        line = (
            f"{self.in_use} of {self.max_size} in use, {self.available} idle,"
            f" {self.requests_waiting} waiting, over {len(self.workers)} worker(s)"
        )
        average = self.average_wait_ms
        if average is not None:
            line += f", {average:.0f} ms average wait"
        if self.stopped:
            line += f"; stopped publishing: {', '.join(self.stopped)}"
        return line

    def as_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "available": self.available,
            "inUse": self.in_use,
            "requestsWaiting": self.requests_waiting,
            "minSize": self.min_size,
            "maxSize": self.max_size,
            "requests": self.requests,
            "waitMs": self.wait_ms,
            "errors": self.errors,
            "lost": self.lost,
            "averageWaitMs": self.average_wait_ms,
            "workers": [
                {**asdict(f), "inUse": f.in_use, "averageWaitMs": f.average_wait_ms}
                for f in self.workers
            ],
            "stoppedPublishing": list(self.stopped),
            "openedBeforeFork": list(self.forked),
        }


def _open_pools() -> dict[str, Any]:
    """The pools Django has created in this process, by alias.

    Read from the backend's class-level registry, not ``connections[alias].pool``: that
    property creates the pool, and a scrape must not give a worker a pool it never used.
    """
    found: dict[str, Any] = {}
    for alias in connections.settings:
        registry = getattr(type(connections[alias]), "_connection_pools", None)
        pool = registry.get(alias) if isinstance(registry, dict) else None
        if pool is not None and not getattr(pool, "closed", True):
            found[alias] = pool
    return found


def local_figures() -> list[PoolFigures]:
    worker = worker_id()
    return [
        PoolFigures.from_stats(alias, worker, pool.get_stats())
        for alias, pool in _open_pools().items()
    ]


_inherited: set[str] = set()


def _note_inherited_pools() -> None:
    _inherited.update(_open_pools())


# A pool's sockets and threads do not belong to a forked child; gunicorn --preload with a
# query at import time, or a pool used by the master, gives every worker the same sockets.
os.register_at_fork(after_in_child=_note_inherited_pools)

FORK_FIX = (
    "Open no database connection before the server forks its workers: no query at import"
    " time with gunicorn --preload, or close the pools in gunicorn's pre_fork hook"
    " (connections[alias].close_pool())."
)


# How far back the recent wait reaches: long enough that a burst of waiting stays on the
# page for a minute, short enough that it is about now, not about the day.
WAIT_WINDOW = 60.0

# This process's published readings of the last WAIT_WINDOW seconds (monotonic), by alias.
_readings: dict[str, deque[tuple[float, PoolFigures]]] = {}


def _since_window_start(figures: Iterable[PoolFigures]) -> list[PoolFigures]:
    now = time.monotonic()
    listed = []
    for current in figures:
        kept = _readings.setdefault(current.alias, deque())
        if kept and kept[0][1].worker != current.worker:
            kept.clear()  # a forked child: its parent's readings are not its own
        kept.append((now, current))
        while len(kept) > 1 and kept[0][0] < now - WAIT_WINDOW:
            kept.popleft()
        # The first reading is its own baseline (the publisher starts with the first request).
        at, before = kept[0]
        listed.append(current.since(before, now - at))
    return listed


def publish(figures: Iterable[PoolFigures] | None = None, *, worker: str | None = None) -> None:
    """Leave this worker's figures in the shared cache for ``POOL_TTL`` seconds."""
    ttl = get_settings().pool_ttl
    worker = worker or worker_id()
    listed = list(_since_window_start(local_figures()) if figures is None else figures)
    sharedcache.set(_worker_key(worker), [asdict(f) for f in listed], ttl)
    _hold_slot(worker, ttl * FORGET_AFTER_TTLS)


def _hold_slot(worker: str, ttl: float) -> None:
    global _slot
    pid = os.getpid()
    if _slot is not None and _slot[0] == pid:
        key = _slot_key(_slot[1])
        if sharedcache.get(key) == worker:
            sharedcache.set(key, worker, ttl)
            return
    for index in range(WORKER_SLOTS):
        if sharedcache.add(_slot_key(index), worker, ttl):
            _slot = (pid, index)
            return
        if sharedcache.get(_slot_key(index)) == worker:
            _slot = (pid, index)
            sharedcache.set(_slot_key(index), worker, ttl)
            return


def _known_workers() -> list[str]:
    held = sharedcache.get_many(_slot_key(index) for index in range(WORKER_SLOTS))
    return sorted({str(worker) for worker in held.values() if worker})


def pooled_aliases() -> set[str]:
    """Aliases whose settings ask Django for a pool (``OPTIONS={"pool": ...}``)."""
    return {
        alias
        for alias, settings_dict in connections.settings.items()
        if (settings_dict.get("OPTIONS") or {}).get("pool")
    }


def combined(aliases: Iterable[str] | None = None) -> dict[str, PoolView]:
    """Every worker's figures, by alias (aliases no worker has a pool for are absent)."""
    # A site without pools pays no cache round trip for this on every /health/.
    wanted = pooled_aliases().intersection(connections.settings if aliases is None else aliases)
    if not wanted:
        return {}
    known = _known_workers()
    published = sharedcache.get_many(_worker_key(w) for w in known)
    names = {f.name for f in fields(PoolFigures)}
    by_alias: dict[str, list[PoolFigures]] = {}
    stopped: list[str] = []
    for worker in sorted(known):
        entries = published.get(_worker_key(worker))
        if entries is None:
            stopped.append(worker)
            continue
        for entry in entries:
            figures = PoolFigures(**{k: v for k, v in entry.items() if k in names})
            if figures.alias in wanted:
                by_alias.setdefault(figures.alias, []).append(figures)
    return {
        alias: PoolView(alias, tuple(found), tuple(stopped)) for alias, found in by_alias.items()
    }


def problems(views: Iterable[PoolView]) -> list[str]:
    return [view.problem for view in views if view.problem]


# --- the publishing thread of this process ---------------------------------------------

_publisher_pid: int | None = None
_publisher_lock = threading.Lock()


def _publish_forever() -> None:
    pid = os.getpid()
    while _publisher_pid == pid:
        try:
            publish()
        except Exception as error:  # retried next round; the thread must live on
            logger.warning("publishing pool figures failed (%s)", type(error).__name__)
        # A third of the TTL: two publications may be lost before a live worker expires.
        time.sleep(get_settings().pool_ttl / 3)


def start_publishing(**kwargs: Any) -> None:
    """Receiver of ``request_started``: one publisher thread per process, after a fork too."""
    global _publisher_pid
    if _publisher_pid == os.getpid() or not pooled_aliases():
        return
    with _publisher_lock:
        if _publisher_pid == os.getpid():
            return
        _publisher_pid = os.getpid()
        threading.Thread(target=_publish_forever, name="dbhealth-pools", daemon=True).start()
