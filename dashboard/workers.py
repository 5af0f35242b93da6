"""What each worker process leaves in the shared cache about itself, and reading it back.

Figures only a worker can read (its own pools in ``dashboard.pools``, its threads'
persistent connections in ``dashboard.persistent``) are published by that worker: a
daemon thread, started on the process's first request, collects every registered
section and leaves them in one cache entry for ``POOL_TTL`` seconds, every third of
it. Each publishing worker holds one registry slot (taken with ``cache.add``, so workers
never overwrite each other's); a reader reads every slot and every worker's entry at
once. A worker whose entry expired is listed as having stopped publishing until its
slot expires too (``FORGET_AFTER_TTLS`` TTLs).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dashboard import sharedcache
from dashboard.conf import get_settings

logger = logging.getLogger(__name__)

# Workers that can publish at once: each holds one slot, readers read them all.
WORKER_SLOTS = 64
# A worker that stopped publishing is named for this many TTLs, then forgotten.
FORGET_AFTER_TTLS = 10


@dataclass(frozen=True)
class Section:
    """One kind of figures a worker publishes: ``wanted`` says whether this site has any
    (no thread is started for a site without), ``collect`` reads this process's."""

    wanted: Callable[[], bool]
    collect: Callable[[], list[dict[str, Any]]]


_sections: dict[str, Section] = {}


def register(name: str, section: Section) -> None:
    _sections[name] = section


def worker_id() -> str:
    """``host:pid`` of this process (several hosts may share the cache)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _slot_key(index: int) -> str:
    return f"dbhealth:workers:slot:{index}"


def _worker_key(worker: str) -> str:
    return f"dbhealth:workers:entry:{worker}"


# The slot this process holds, as (pid, index): a forked child claims its own.
_slot: tuple[int, int] | None = None


def publish(sections: dict[str, list[dict[str, Any]]], *, worker: str | None = None) -> None:
    """Leave ``sections`` as this worker's entry for ``POOL_TTL`` seconds."""
    ttl = get_settings().pool_ttl
    worker = worker or worker_id()
    sharedcache.set(_worker_key(worker), sections, ttl)
    _hold_slot(worker, ttl * FORGET_AFTER_TTLS)


def publish_all() -> None:
    """Every registered section of this process, in one entry."""
    publish({name: section.collect() for name, section in _sections.items() if section.wanted()})


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


@dataclass(frozen=True)
class Published:
    """Every live worker's entry, by worker, and the workers whose entry expired."""

    entries: dict[str, dict[str, list[dict[str, Any]]]]
    stopped: tuple[str, ...]

    def section(self, name: str) -> dict[str, list[dict[str, Any]]]:
        """One section of every live worker's entry, by worker (sorted)."""
        return {worker: entry.get(name, []) for worker, entry in sorted(self.entries.items())}


def read() -> Published:
    held = sharedcache.get_many(_slot_key(index) for index in range(WORKER_SLOTS))
    known = sorted({str(worker) for worker in held.values() if worker})
    found = sharedcache.get_many(_worker_key(worker) for worker in known)
    entries: dict[str, dict[str, list[dict[str, Any]]]] = {}
    stopped = []
    for worker in known:
        entry = found.get(_worker_key(worker))
        if isinstance(entry, dict):
            entries[worker] = entry
        else:
            stopped.append(worker)
    return Published(entries, tuple(stopped))


# --- the publishing thread of this process ---------------------------------------------

_publisher_pid: int | None = None
_publisher_lock = threading.Lock()


def _publish_forever() -> None:
    pid = os.getpid()
    while _publisher_pid == pid:
        started = time.monotonic()
        try:
            publish_all()
        except Exception as error:  # retried next round; the thread must live on
            logger.warning("publishing worker figures failed (%s)", type(error).__name__)
        # A third of the TTL: two publications may be lost before a live worker expires.
        time.sleep(max(0.0, get_settings().pool_ttl / 3 - (time.monotonic() - started)))


def start_publishing(**kwargs: Any) -> None:
    """Receiver of ``request_started``: one publisher thread per process, after a fork too."""
    global _publisher_pid
    if _publisher_pid == os.getpid():
        return
    if not any(section.wanted() for section in _sections.values()):
        return
    with _publisher_lock:
        if _publisher_pid == os.getpid():
            return
        _publisher_pid = os.getpid()
        threading.Thread(target=_publish_forever, name="dbhealth-workers", daemon=True).start()
