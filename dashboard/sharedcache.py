"""The shared cache (``caches[DBHEALTH["CACHE"]]``), bounded like a database.

Everything dbhealth shares between workers goes through here: probe results, the
latency history, migrations drift, "table exists" answers. One failure policy for all:
an exception from the cache makes the call return its "unavailable" answer (``get``
the default, ``get_many`` ``{}``, ``set`` False, ``add`` None) and starts a back-off of
``CACHE_BACKOFF`` seconds, announced by one warning, during which no call touches the
cache. After it one call tries the cache again while the others keep skipping it; if
that call fails, the next back-off starts.

How long one call can take is the cache client's own bound: for Redis, the socket
timeouts in ``CACHES[...]["OPTIONS"]`` (system check ``dbhealth.W005``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from django.core.cache import BaseCache, caches
from django.core.signals import setting_changed

from dashboard.conf import get_settings

logger = logging.getLogger(__name__)

# First pause between two tries of a taken lock; it doubles up to LOCK_POLL_MAX_SECONDS.
LOCK_POLL_SECONDS = 0.005
LOCK_POLL_MAX_SECONDS = 0.05
# Memcached refuses keys longer than 250 bytes or with spaces and control characters.
_KEY_LIMIT = 200
_UNSAFE = re.compile(r"[^\x21-\x7e]")

T = TypeVar("T")


def key(kind: str, *parts: object) -> str:
    """``dbhealth:<kind>:<part>:<part>...``; too long or unsafe for memcached: hashed."""
    built = ":".join(["dbhealth", kind, *(str(part) for part in parts)])
    if len(built) <= _KEY_LIMIT and not _UNSAFE.search(built):
        return built
    digest = hashlib.sha256(built.encode()).hexdigest()[:32]
    return f"dbhealth:{kind}:{digest}"


class _Breaker:
    """The back-off of one cache: whether calls may touch it, and who tries it again."""

    def __init__(self) -> None:
        self.until = 0.0
        self.failing = False
        self.trying = False

    def enter(self) -> bool | None:
        """None: skip the cache; True: this call tries it after a back-off; False: go on."""
        if not self.failing:
            return False
        if self.trying or time.monotonic() < self.until:
            return None
        self.trying = True
        return True

    def failed(self, trial: bool, name: str, error: BaseException, backoff: float) -> None:
        if trial:
            self.trying = False
        elif self.failing:
            return  # a call that began before the back-off: it is announced already
        self.failing = True
        self.until = time.monotonic() + backoff
        logger.warning(
            "cache %r failed (%s); working without it for %g s",
            name,
            type(error).__name__,
            backoff,
        )

    def recovered(self, name: str) -> None:
        self.failing = self.trying = False
        logger.info("cache %r answers again", name)


_breakers: dict[str, _Breaker] = {}
_breakers_lock = threading.Lock()


def _call(action: Callable[[BaseCache], T], unavailable: T) -> T:
    config = get_settings()
    name = config.cache
    with _breakers_lock:
        breaker = _breakers.setdefault(name, _Breaker())
        trial = breaker.enter()
    if trial is None:
        return unavailable
    try:
        answer = action(caches[name])
    except Exception as error:  # whatever the backend raises, the app works on without it
        with _breakers_lock:
            breaker.failed(trial, name, error, config.cache_backoff)
        return unavailable
    except BaseException:
        if trial:
            with _breakers_lock:
                breaker.trying = False  # let another call try the cache
        raise
    if trial:
        with _breakers_lock:
            breaker.recovered(name)
    return answer


def available() -> bool:
    """False while the cache is skipped after a failure (nothing is asked of it)."""
    with _breakers_lock:
        breaker = _breakers.get(get_settings().cache)
        if breaker is None or not breaker.failing:
            return True
        return not breaker.trying and time.monotonic() >= breaker.until


def reset() -> None:
    """Forget every back-off: the next call asks the cache again."""
    with _breakers_lock:
        _breakers.clear()


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    # Tests swap CACHES: the back-off of the old cache says nothing about the new one.
    if setting in ("CACHES", "DBHEALTH"):
        reset()


setting_changed.connect(_settings_changed)


def _new_lock_in_child() -> None:
    # A fork while another thread holds the lock would leave the child's copy held forever.
    global _breakers_lock
    _breakers_lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)


_whole_seconds_backends: dict[type[BaseCache], bool] = {}


def _timeout(cache: BaseCache, ttl: float) -> float:
    """``ttl`` as the backend should get it: rounded up where it keeps whole seconds only."""
    backend = type(cache)
    whole = _whole_seconds_backends.get(backend)
    if whole is None:
        # Redis and memcached truncate to an int (and 0 means "do not store"); the
        # others keep an absolute float expiry.
        whole = _whole_seconds_backends[backend] = isinstance(cache.get_backend_timeout(0.5), int)
    return max(1, math.ceil(ttl)) if whole else ttl


# --- the calls -------------------------------------------------------------------------


def get(key: str, default: Any = None) -> Any:
    return _call(lambda cache: cache.get(key, default), default)


def get_many(keys: Iterable[str]) -> dict[str, Any]:
    """The keys found (one round trip); ``{}`` when the cache is unavailable."""
    wanted = list(keys)
    if not wanted:
        return {}
    return _call(lambda cache: cache.get_many(wanted), {})


def set(key: str, value: Any, ttl: float) -> bool:
    """Store ``value`` for ``ttl`` seconds; False when the cache is unavailable or failed."""

    def store(cache: BaseCache) -> bool:
        cache.set(key, value, _timeout(cache, ttl))
        return True

    return _call(store, False)


def set_many(mapping: Mapping[str, Any], ttl: float) -> bool:
    """Store every item (one round trip); False unless the backend stored them all."""
    if not mapping:
        return True
    data = dict(mapping)
    return _call(lambda cache: not cache.set_many(data, _timeout(cache, ttl)), False)


def add(key: str, value: Any, ttl: float) -> bool | None:
    """Store ``value`` unless ``key`` exists; None when the cache is unavailable (the
    caller decides alone, as if it were the only process)."""
    return _call(lambda cache: bool(cache.add(key, value, _timeout(cache, ttl))), None)


def delete(key: str) -> None:
    _call(lambda cache: cache.delete(key), None)


def delete_many(keys: Iterable[str]) -> None:
    doomed = list(keys)
    if doomed:
        _call(lambda cache: cache.delete_many(doomed), None)


def _acquire(key: str, ttl: float, wait: float) -> bool | None:
    deadline = time.monotonic() + wait
    pause = LOCK_POLL_SECONDS
    while True:
        taken = add(key, True, ttl)
        if taken is not False:
            return taken
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, LOCK_POLL_MAX_SECONDS)


@contextmanager
def lock(key: str, ttl: float, wait: float) -> Iterator[bool | None]:
    """Hold ``key`` across processes for at most ``ttl`` seconds (it expires by itself).

    Yields True when held, False when another holder kept it for ``wait`` seconds, None
    when the cache is unavailable (nothing to lock with: the caller decides alone).
    """
    held = _acquire(key, ttl, wait)
    taken_at = time.monotonic()
    try:
        yield held
    finally:
        # Past its ttl the lock has expired and may be somebody else's by now.
        if held and time.monotonic() - taken_at < ttl:
            delete(key)
