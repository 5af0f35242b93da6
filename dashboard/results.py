"""Where the interfaces get probe results from: the shared cache, and one probe per alias.

``latest()`` is what pages and endpoints show: results at most ``CACHE_TTL`` seconds
old. ``fresh()`` always probes (the "Ping now" button and the ``dbhealth`` command).
``last_known()`` never waits: for pages that only decorate with status.

Single flight, for both: however many requests want an alias at once, in one process
or in many sharing Redis, one of them takes a per-alias lock with ``cache.add`` and
probes; the others wait for its result to land in the cache, until their own deadline.
The lock is held while the probe is in flight, a straggler included, so a cron-driven
``dbhealth`` and the web workers never dial the same sick server together; a lock whose
holder died expires on its own.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any

from django.db import connections

from dashboard import probes, sharedcache
from dashboard.conf import get_settings
from dashboard.connect import fingerprint
from dashboard.deadline import Deadline
from dashboard.probes import Extra, ProbeResult

# Between looks at a shared cache; a result stored in this process wakes waiters at once.
POLL_SECONDS = 0.02
# How long the last result of an alias is kept for pages that only decorate with status.
LAST_KNOWN_SECONDS = 24 * 3600

logger = logging.getLogger(__name__)
_stored = threading.Condition()


def aliases() -> list[str]:
    """Every configured alias, in settings order."""
    return list(connections.settings)


def _result_key(alias: str) -> str:
    return sharedcache.key("result", alias, fingerprint(alias))


def _last_key(alias: str) -> str:
    return sharedcache.key("last", alias, fingerprint(alias))


def _lock_key(alias: str) -> str:
    return sharedcache.key("probing", alias, fingerprint(alias))


# A result this process read from (or wrote to) the shared cache is reused for a moment,
# so a busy /health/ costs no cache round trip per request. Results are then at most
# CACHE_TTL + LOCAL_SECONDS old; other processes see a "Ping now" within LOCAL_SECONDS.
LOCAL_SECONDS = 0.5
_local: dict[str, tuple[float, ProbeResult]] = {}


def _keep_locally(found: Mapping[str, ProbeResult]) -> None:
    until = time.monotonic() + LOCAL_SECONDS
    _local.update((key, (until, result)) for key, result in found.items())


def forget_local() -> None:
    """Drop this process's short-lived copies (after clearing the shared cache, say)."""
    _local.clear()


def _store(results: Iterable[ProbeResult]) -> None:
    _store_keyed({(_result_key(r.alias), _last_key(r.alias)): r for r in results})


def _store_keyed(results: Mapping[tuple[str, str], ProbeResult]) -> None:
    if not results:
        return
    ttl = get_settings().cache_ttl
    current = {keys[0]: result for keys, result in results.items()}
    if ttl > 0:
        sharedcache.set_many(current, ttl)
        _keep_locally(current)
    sharedcache.set_many({keys[1]: r for keys, r in results.items()}, LAST_KNOWN_SECONDS)
    with _stored:
        _stored.notify_all()


def _cached(wanted: Iterable[str]) -> dict[str, ProbeResult]:
    now = time.monotonic()
    found: dict[str, ProbeResult] = {}
    keys: dict[str, str] = {}
    for alias in wanted:
        key = _result_key(alias)
        kept = _local.get(key)
        if kept is not None and kept[0] > now:
            found[alias] = kept[1]
        else:
            keys[key] = alias
    if keys:
        fetched = {
            key: result
            for key, result in sharedcache.get_many(keys).items()
            if isinstance(result, ProbeResult)
        }
        _keep_locally(fetched)
        found.update((keys[key], result) for key, result in fetched.items())
    return found


def _await(wanted: list[str], deadline: Deadline) -> dict[str, ProbeResult]:
    """Results another process is probing for, as they land, until ``deadline``."""
    found: dict[str, ProbeResult] = {}
    while True:
        found.update(_cached([alias for alias in wanted if alias not in found]))
        left = deadline.remaining()
        # Without the cache, nothing another process finds can reach this one.
        if len(found) == len(wanted) or left <= 0 or not sharedcache.available():
            return found
        with _stored:
            _stored.wait(timeout=min(POLL_SECONDS, left))


@dataclass
class Gathered:
    """The results of one answer, and the extras that rode on probes made for it."""

    results: list[ProbeResult]
    extras: dict[str, dict[str, Future[Any] | None]] = field(default_factory=dict)

    def by_alias(self) -> dict[str, ProbeResult]:
        return {result.alias: result for result in self.results}


def _lock_seconds(deadline: Deadline) -> float:
    # Held until the probe ends, a straggler too: the driver timeouts bound that.
    return max(2.0, math.ceil(2 * deadline.seconds) + 1)


def _probe_here(
    mine: list[str], deadline: Deadline, extras: Mapping[str, Extra], locked: set[str]
) -> tuple[list[probes.Probe], dict[str, dict[str, Future[Any] | None]]]:
    started: list[probes.Probe] = []
    futures: dict[str, dict[str, Future[Any] | None]] = {}
    for alias in mine:
        probe, extra_futures = probes.start(alias, deadline, extras=extras)
        started.append(probe)
        futures[alias] = extra_futures
        probe.result.add_done_callback(_stored_then_unlocked(alias, alias in locked))
    return started, futures


def _stored_then_unlocked(alias: str, locked: bool) -> Any:
    # Keys made now: a straggler may end after its alias's settings changed.
    keys = (_result_key(alias), _last_key(alias))
    lock = _lock_key(alias) if locked else None

    def done(future: Future[ProbeResult]) -> None:
        _store_keyed({keys: future.result()})
        if lock is not None:
            sharedcache.delete(lock)

    return done


def gather(
    wanted: Iterable[str] | None,
    deadline: Deadline,
    *,
    cached: bool = True,
    extras: Mapping[str, Extra] | None = None,
) -> Gathered:
    """Results for ``wanted`` (settings order) by ``deadline``: cached ones if ``cached``,
    else probed here under the alias's lock, or awaited from the process holding it.
    ``extras`` ride on the probes this process makes."""
    order = probes.ordered(wanted)
    found = _cached(order) if cached and get_settings().cache_ttl > 0 else {}
    missing = [alias for alias in order if alias not in found]
    mine: list[str] = []
    locked: set[str] = set()
    others: list[str] = []
    for alias in missing:
        taken = sharedcache.add(_lock_key(alias), os.getpid(), _lock_seconds(deadline))
        if taken is False:
            others.append(alias)
            continue
        mine.append(alias)
        if taken:
            locked.add(alias)
    if cached and mine:
        # The previous holder stores its result before it lets go of the lock.
        again = _cached(mine)
        found.update(again)
        for alias in again:
            if alias in locked:
                sharedcache.delete(_lock_key(alias))
        mine = [alias for alias in mine if alias not in again]
    started, futures = _probe_here(mine, deadline, extras or {}, locked)
    if others:
        found.update(_await(others, deadline))
    wait_futures([probe.result for probe in started], timeout=deadline.remaining())
    late = []
    for probe in started:
        outcome = probe.outcome()
        found[outcome.alias] = outcome
        if not probe.result.done():
            late.append(outcome)
    # Waiters elsewhere get this answer now; the straggler's own result replaces it.
    _store(late)
    results = [
        found.get(alias)
        or probes.timed_out(alias, deadline, "the worker probing it did not answer in time")
        for alias in order
    ]
    return Gathered(results, futures)


def latest(
    wanted: Iterable[str] | None = None, *, deadline: Deadline | None = None
) -> list[ProbeResult]:
    """Cached results (settings order), probing only the aliases nobody has probed lately."""
    return gather(wanted, deadline or Deadline.after(get_settings().timeout)).results


def fresh(
    wanted: Iterable[str] | None = None,
    *,
    timeout: float | None = None,
    deadline: Deadline | None = None,
) -> list[ProbeResult]:
    """Probe now (settings order), joining a probe another process is making right now."""
    bound = deadline or Deadline.after(get_settings().timeout if timeout is None else timeout)
    return gather(wanted, bound, cached=False).results


# --- what pages that only decorate with status read ------------------------------------

_refreshing: set[str] = set()
_refreshing_lock = threading.Lock()


def _refresh(wanted: list[str]) -> None:
    try:
        latest(wanted)
    except Exception:  # a background refresh must never kill its thread loudly
        logger.exception("background refresh of %s failed", ", ".join(wanted))
    finally:
        with _refreshing_lock:
            _refreshing.difference_update(wanted)


def last_known(wanted: Iterable[str] | None = None) -> dict[str, ProbeResult | None]:
    """The last result of each alias (None: never probed), without waiting for a probe.

    What is known is returned at once, with its ``checked_at``; aliases whose result is
    older than ``CACHE_TTL`` are refreshed in the background for the next page.
    """
    order = probes.ordered(wanted)
    found: dict[str, ProbeResult | None] = dict.fromkeys(order)
    current = _cached(order) if get_settings().cache_ttl > 0 else {}
    found.update(current)
    stale = [alias for alias in order if alias not in current]
    if not stale:
        return found
    kept = sharedcache.get_many([_last_key(alias) for alias in stale])
    for alias in stale:
        result = kept.get(_last_key(alias))
        if isinstance(result, ProbeResult):
            found[alias] = result
    with _refreshing_lock:
        todo = [alias for alias in stale if alias not in _refreshing]
        _refreshing.update(todo)
    if todo:
        threading.Thread(
            target=_refresh, args=(todo,), name="dbhealth-refresh", daemon=True
        ).start()
    return found
