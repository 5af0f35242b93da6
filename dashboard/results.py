"""Where the interfaces get probe results from.

``latest()`` is what pages and endpoints show: results from Django's cache, at most
``CACHE_TTL`` seconds old. ``fresh()`` always probes (the "Ping now" button and the
``dbhealth`` command) and refreshes the cache with what it found.

Single flight: however many requests miss the cache at once, in one process or in
many sharing Redis, one of them takes a short per-alias lock with ``cache.add`` and
probes; the others wait for its result to land in the cache, bounded by the probe
timeout. A lock whose holder died expires on its own shortly after that.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.core.cache import BaseCache, caches
from django.db import connections

from dashboard.conf import DBHealthSettings, get_settings
from dashboard.probes import ProbeResult, _timed_out, probe_all

# How long past the probe deadline a waiter keeps looking for another worker's result.
WAIT_GRACE_SECONDS = 0.5
# Between looks at a shared cache; a result stored in this process wakes waiters at once.
POLL_SECONDS = 0.02
# Settings keys that decide what a probe reaches; passwords stay out of cache keys.
_IDENTITY_KEYS = ("ENGINE", "HOST", "PORT", "NAME", "USER")
_SECRET_OPTIONS = {"password", "passwd"}

logger = logging.getLogger(__name__)
_stored = threading.Condition()


def aliases() -> list[str]:
    """Every configured alias, in settings order."""
    return list(connections.settings)


def _ordered(wanted: Iterable[str] | None) -> list[str]:
    """The aliases asked for, once each, in settings order; KeyError for an unknown one."""
    known = aliases()
    if wanted is None:
        return known
    chosen = set(wanted)
    unknown = sorted(chosen.difference(known))
    if unknown:
        raise KeyError(f"unknown database alias {unknown[0]!r}")
    return [alias for alias in known if alias in chosen]


_fingerprints: dict[tuple[Any, ...], str] = {}


def _fingerprint(alias: str) -> str:
    """Same alias settings, same key in every process; changed settings, a new key."""
    settings_dict = connections.settings[alias]
    options = settings_dict.get("OPTIONS") or {}
    identity: dict[str, Any] = {key: settings_dict.get(key) for key in _IDENTITY_KEYS}
    identity["OPTIONS"] = {k: v for k, v in options.items() if k not in _SECRET_OPTIONS}
    # Asked on every request for every alias: hash each distinct identity once.
    seen = (alias, repr(identity))
    known = _fingerprints.get(seen)
    if known is None:
        canonical = json.dumps(identity, sort_keys=True, default=str)
        known = _fingerprints[seen] = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    return known


def _result_key(alias: str) -> str:
    return f"dbhealth:result:{alias}:{_fingerprint(alias)}"


def _lock_key(alias: str) -> str:
    return f"dbhealth:probing:{alias}:{_fingerprint(alias)}"


def _whole_seconds(seconds: float) -> int:
    # Django's Redis backend keeps whole seconds only (0 would mean "do not store").
    return max(1, math.ceil(seconds))


def _last_key(alias: str) -> str:
    return f"dbhealth:last:{alias}:{_fingerprint(alias)}"


# How long the last result of an alias is kept for pages that only decorate with status.
LAST_KNOWN_SECONDS = 24 * 3600


def _store(cache: BaseCache, results: list[ProbeResult], ttl: float) -> None:
    cache.set_many({_result_key(r.alias): r for r in results}, timeout=_whole_seconds(ttl))
    cache.set_many({_last_key(r.alias): r for r in results}, timeout=LAST_KNOWN_SECONDS)
    _keep_locally({_result_key(r.alias): r for r in results})
    with _stored:
        _stored.notify_all()


# A result this process read from (or wrote to) the shared cache is reused for a moment,
# so a busy /health/ costs no cache round trip per request. Results are then at most
# CACHE_TTL + LOCAL_SECONDS old; other processes see a "Ping now" within LOCAL_SECONDS.
LOCAL_SECONDS = 0.5
_local: dict[str, tuple[float, ProbeResult]] = {}


def _keep_locally(found: dict[str, ProbeResult]) -> None:
    until = time.monotonic() + LOCAL_SECONDS
    _local.update((key, (until, result)) for key, result in found.items())


def forget_local() -> None:
    """Drop this process's short-lived copies (after clearing the shared cache, say)."""
    _local.clear()


def _cached(cache: BaseCache, wanted: Iterable[str]) -> dict[str, ProbeResult]:
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
            for key, result in cache.get_many(list(keys)).items()
            if isinstance(result, ProbeResult)
        }
        _keep_locally(fetched)
        found.update((keys[key], result) for key, result in fetched.items())
    return found


def _await(cache: BaseCache, wanted: list[str], deadline: float) -> dict[str, ProbeResult]:
    """Results another request is probing for, as they land; missing ones by ``deadline``."""
    found: dict[str, ProbeResult] = {}
    while True:
        found.update(_cached(cache, [alias for alias in wanted if alias not in found]))
        left = deadline - time.monotonic()
        if len(found) == len(wanted) or left <= 0:
            return found
        with _stored:
            _stored.wait(timeout=min(POLL_SECONDS, left))


def latest(aliases: Iterable[str] | None = None) -> list[ProbeResult]:
    """Cached results (settings order), probing only the aliases nobody has probed lately."""
    config = get_settings()
    wanted = _ordered(aliases)
    if config.cache_ttl <= 0:
        return probe_all(wanted, timeout=config.timeout)
    try:
        return _through_cache(caches[config.cache], wanted, config)
    except Exception as error:  # a cache outage must not take /health/ down with it
        logger.warning(
            "cache %r failed (%s); probing without it", config.cache, type(error).__name__
        )
        return probe_all(wanted, timeout=config.timeout)


def _through_cache(
    cache: BaseCache, wanted: list[str], config: DBHealthSettings
) -> list[ProbeResult]:
    deadline = time.monotonic() + config.timeout + WAIT_GRACE_SECONDS
    found = _cached(cache, wanted)
    missing = [alias for alias in wanted if alias not in found]
    lock_seconds = _whole_seconds(config.timeout + WAIT_GRACE_SECONDS) + 1
    mine = [alias for alias in missing if cache.add(_lock_key(alias), True, lock_seconds)]
    if mine:
        try:
            # The previous holder stores its results before it lets go of the lock.
            found.update(_cached(cache, mine))
            to_probe = [alias for alias in mine if alias not in found]
            if to_probe:
                probed = probe_all(to_probe, timeout=config.timeout)
                _store(cache, probed, config.cache_ttl)
                found.update((result.alias, result) for result in probed)
        finally:
            cache.delete_many([_lock_key(alias) for alias in mine])
    others = [alias for alias in missing if alias not in found]
    if others:
        found.update(_await(cache, others, deadline))
    return [found.get(alias) or _timed_out(alias, config.timeout) for alias in wanted]


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


def last_known(aliases: Iterable[str] | None = None) -> dict[str, ProbeResult | None]:
    """The last result of each alias (None: never probed), without waiting for a probe.

    For pages that only decorate with status (the alias switcher, the banner): what is
    known is returned at once, with its ``checked_at``; aliases whose result is older
    than ``CACHE_TTL`` are refreshed in the background for the next page.
    """
    config = get_settings()
    wanted = _ordered(aliases)
    found: dict[str, ProbeResult | None] = dict.fromkeys(wanted)
    fresh_enough = _local_or_cached(wanted, config)
    found.update(fresh_enough)
    stale = [alias for alias in wanted if alias not in fresh_enough]
    if stale:
        try:
            cache = caches[config.cache]
            kept = cache.get_many([_last_key(alias) for alias in stale])
        except Exception as error:
            logger.warning("cache %r failed (%s)", config.cache, type(error).__name__)
            kept = {}
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


def _local_or_cached(wanted: list[str], config: DBHealthSettings) -> dict[str, ProbeResult]:
    if config.cache_ttl <= 0:
        return {}
    try:
        return _cached(caches[config.cache], wanted)
    except Exception as error:
        logger.warning("cache %r failed (%s)", config.cache, type(error).__name__)
        return {}


def fresh(
    aliases: Iterable[str] | None = None, *, timeout: float | None = None
) -> list[ProbeResult]:
    """Probe now (settings order) and let ``latest()`` serve what was found."""
    config = get_settings()
    results = probe_all(aliases, timeout=timeout)
    if config.cache_ttl > 0:
        try:
            _store(caches[config.cache], results, config.cache_ttl)
        except Exception as error:  # the answer stands; only sharing it failed
            logger.warning("cache %r failed (%s)", config.cache, type(error).__name__)
    return results
