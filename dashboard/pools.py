"""The application's own connection pools, read in every worker and combined.

A fresh probe answers "can a new client reach the server?"; this module answers "are the
workers starved for connections?". Each process reads the psycopg pools Django opened
for it (``OPTIONS={"pool": ...}``) with ``get_stats()`` (``pop_stats()`` would reset the
counters other readers rely on), borrows from each once (``dashboard.poolpath``: the
application's path beside the fresh probe) and publishes both as its ``pools`` section
(``dashboard.workers``). Any worker then answers with the sum and each worker's figures;
a worker whose figures expired is listed as having stopped publishing until it is
forgotten. The worker serving an answer borrows from its own pools within the answer's
deadline, beside the fresh probe (``start_paths``/``collect_paths``).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import django
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from dashboard import poolpath, workers
from dashboard.conf import get_settings
from dashboard.deadline import Deadline
from dashboard.poolpath import PathCheck

# Path checks that found the application's pool unusable.
FAILING_PATHS = ("exhausted", "failed")


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
    # This worker's last borrow from the pool (``dashboard.poolpath``); "" before any.
    path_status: str = ""
    path_text: str = ""
    path_checked_at: float = 0.0

    @property
    def in_use(self) -> int:
        return max(0, self.size - self.available)

    @property
    def average_wait_ms(self) -> float | None:
        """Wait for a connection per request over the recent window (None: no request
        then). Every request counts: one that found a connection idle waited 0."""
        return self.recent_wait_ms / self.recent_requests if self.recent_requests else None

    def with_path(self, found: PathCheck | None) -> PoolFigures:
        if found is None:
            return self
        return replace(
            self,
            path_status=found.status,
            path_text=found.text,
            path_checked_at=found.checked_at,
        )

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
    # Whether the alias's fresh probe is up (set by the report; None: not known here).
    fresh_up: bool | None = None

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
    def failing_paths(self) -> tuple[PoolFigures, ...]:
        """Workers whose last borrow got no connection, or one that failed."""
        return tuple(f for f in self.workers if f.path_status in FAILING_PATHS)

    @property
    def path_status(self) -> str:
        """``ok``, ``exhausted`` / ``failed`` (the first failing worker's), or ``""``."""
        failing = self.failing_paths
        if failing:
            return failing[0].path_status
        return "ok" if any(f.path_status == "ok" for f in self.workers) else ""

    @property
    def warns(self) -> bool:
        return (
            self.requests_waiting > 0
            or bool(self.forked)
            or bool(self.slow_workers)
            or bool(self.failing_paths)
        )

    @property
    def problem(self) -> str | None:
        """The warning in the operator's words, or None."""
        found = []
        for figures in self.failing_paths:
            lead = {
                True: "fresh connection up, the application's pool is not",
                False: "the application's pool is not usable either",
                None: "the application's pool is not usable",
            }[self.fresh_up]
            found.append(f"{self.alias}: {lead}: {figures.path_text} (worker {figures.worker})")
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
        borrowed = [f for f in self.workers if f.path_status == "ok"]
        if borrowed:
            line += f"; borrowed and answered in {len(borrowed)} of {len(self.workers)} worker(s)"
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
            "appPath": self.path_status or None,
            "stoppedPublishing": list(self.stopped),
            "openedBeforeFork": list(self.forked),
        }


def _open_pools() -> dict[str, Any]:
    """The pools Django has created in this process, by alias.

    Read from the backend's class-level registry, not ``connections[alias].pool``: that
    property creates the pool, and a scrape must not give a worker a pool it never used.
    """
    found: dict[str, Any] = {}
    # Only aliases that ask for a pool: any other may name a backend that cannot load.
    for alias in pooled_aliases():
        try:
            backend = type(connections[alias])
        except ImproperlyConfigured:  # a backend that cannot load has no pool
            continue
        registry = getattr(backend, "_connection_pools", None)
        pool = registry.get(alias) if isinstance(registry, dict) else None
        if pool is not None and not getattr(pool, "closed", True):
            found[alias] = pool
    return found


def local_figures() -> list[PoolFigures]:
    worker = workers.worker_id()
    return [
        PoolFigures.from_stats(alias, worker, pool.get_stats()).with_path(poolpath.latest(alias))
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


def collect() -> list[dict[str, Any]]:
    """This process's ``pools`` section: one borrow from each pool (bounded by TIMEOUT),
    then the figures, with the wait over the last WAIT_WINDOW seconds."""
    open_pools = _open_pools()
    deadline = Deadline.after(get_settings().timeout)
    started = {
        alias: poolpath.start(alias, pool, deadline, fix=check_fix(alias))
        for alias, pool in open_pools.items()
    }
    for alias, future in started.items():
        poolpath.collect(alias, future, deadline)
    return [asdict(f) for f in _since_window_start(local_figures())]


def publish(figures: Iterable[PoolFigures], *, worker: str) -> None:
    """Leave ``figures`` as the only section of ``worker``'s entry (tests, tools)."""
    workers.publish({"pools": [asdict(f) for f in figures]}, worker=worker)


def pooled_aliases() -> set[str]:
    """Aliases whose settings ask Django for a pool (``OPTIONS={"pool": ...}``)."""
    return {
        alias
        for alias, settings_dict in connections.settings.items()
        if (settings_dict.get("OPTIONS") or {}).get("pool")
    }


# What this module adds to each worker's published entry (registered by the app's ready()).
SECTION = workers.Section(wanted=lambda: bool(pooled_aliases()), collect=collect)


def check_fix(alias: str) -> str:
    """How to make ``alias``'s pool check each connection before it lends it ("" if it
    does). Django 6.1 takes a ``check`` in ``OPTIONS["pool"]``; before, that is an error
    and ``CONN_HEALTH_CHECKS`` is the only way."""
    settings_dict = connections.settings[alias]
    options = (settings_dict.get("OPTIONS") or {}).get("pool")
    if settings_dict.get("CONN_HEALTH_CHECKS") or (
        isinstance(options, dict) and options.get("check")
    ):
        return ""
    if django.VERSION >= (6, 1):
        return (
            "Give the pool a check: CONN_HEALTH_CHECKS = True, or"
            ' OPTIONS["pool"]["check"] = ConnectionPool.check_connection.'
        )
    return (
        "Set CONN_HEALTH_CHECKS = True: the pool then checks each connection before lending"
        ' it (this Django refuses a "check" in OPTIONS["pool"]).'
    )


def start_paths(
    aliases: Iterable[str] | None, deadline: Deadline, *, fresh: bool
) -> dict[str, Future[PathCheck]]:
    """Borrows from this process's own pools, under way beside the fresh probes; a cached
    answer reuses a borrow younger than ``CACHE_TTL``."""
    reuse = 0.0 if fresh else get_settings().cache_ttl
    return {
        alias: poolpath.start(alias, pool, deadline, reuse_within=reuse, fix=check_fix(alias))
        for alias, pool in _open_pools().items()
        if aliases is None or alias in aliases
    }


def collect_paths(
    started: Mapping[str, Future[PathCheck]], deadline: Deadline
) -> dict[str, PathCheck]:
    return {alias: poolpath.collect(alias, future, deadline) for alias, future in started.items()}


def combined(
    aliases: Iterable[str] | None = None, *, own_paths: Mapping[str, PathCheck] | None = None
) -> dict[str, PoolView]:
    """Every worker's figures, by alias (aliases no worker has a pool for are absent).

    ``own_paths``: this process's borrows made for the answer, newer than what it
    published (an alias it has not published yet is added with its figures now)."""
    # A site without pools pays no cache round trip for this on every /health/.
    wanted = pooled_aliases().intersection(connections.settings if aliases is None else aliases)
    if not wanted:
        return {}
    published = workers.read()
    names = {f.name for f in fields(PoolFigures)}
    own = workers.worker_id()
    own_paths = own_paths or {}
    by_alias: dict[str, list[PoolFigures]] = {}
    for worker, entries in published.section("pools").items():
        for entry in entries:
            figures = PoolFigures(**{k: v for k, v in entry.items() if k in names})
            if figures.alias in wanted:
                if worker == own:
                    figures = figures.with_path(own_paths.get(figures.alias))
                by_alias.setdefault(figures.alias, []).append(figures)
    for figures in local_figures() if own_paths else ():
        listed = by_alias.get(figures.alias, [])
        if figures.alias in wanted and not any(f.worker == own for f in listed):
            by_alias[figures.alias] = [*listed, figures.with_path(own_paths.get(figures.alias))]
    return {
        alias: PoolView(alias, tuple(found), published.stopped) for alias, found in by_alias.items()
    }


def problems(views: Iterable[PoolView]) -> list[str]:
    return [view.problem for view in views if view.problem]
