"""Where probe connections are opened from: a bounded pool with a budget per server.

A site with hundreds of aliases must never take the connection slots its own workers
need, so connections to databases are opened only by this scheduler's workers:

- one pool of daemon threads per process (``MAX_PROBES``), reused across rounds;
- at most ``MAX_PROBES_PER_SERVER`` connections at once to one server (vendor + host +
  port: many tenant databases on one server share it), counted in this process and,
  through short-lived slots in the shared cache, across every process that shares it;
  when the cache is down, the per-process count still holds;
- a server nobody has heard from lately (a fresh process, or one that just timed out)
  gets one connection at a time until it answers, so a black hole is dialled once, not
  once per alias.

A job that cannot start before its deadline is never started: it is expired with the
reason (queued behind others, or its server not answering), and the caller reports it.
Threads are daemons: a straggler stuck in a driver call never holds up process exit.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from dashboard import sharedcache
from dashboard.conf import get_settings

logger = logging.getLogger(__name__)

# How long a server that answered is trusted with more than one connection at once.
TRUST_SECONDS = 60.0
# When another process holds all of a server's slots, look again after this long.
SLOT_RETRY_SECONDS = 0.01
# How often queued jobs are checked for having passed their deadline.
EXPIRY_SCAN_SECONDS = 0.02
# An idle worker thread ends after this long; the pool grows again on demand.
IDLE_SECONDS = 60.0


@dataclass(eq=False)
class Job:
    """One connection's worth of work for ``server``; ``run`` does it and settles itself.

    ``expire(reason)`` is called instead of ``run`` when the job cannot start by
    ``deadline`` (monotonic seconds; a later caller joining the job may extend it).
    ``bound`` is the time a started job may hold its connection (the driver timeouts):
    the slot it takes in the shared cache expires after about that long.
    """

    server: str
    run: Callable[[], None]
    expire: Callable[[str], None]
    deadline: float
    bound: float
    label: str = ""
    started: bool = field(default=False, init=False)
    expired: bool = field(default=False, init=False)

    def extend(self, deadline: float) -> None:
        self.deadline = max(self.deadline, deadline)


@dataclass
class _Server:
    running: int = 0
    answered_at: float | None = None
    # Another process holds every slot: do not ask the cache again before this.
    retry_at: float = 0.0

    def trusted(self, now: float) -> bool:
        return self.answered_at is not None and now - self.answered_at < TRUST_SECONDS


class Scheduler:
    """The pool of one process (see the module docstring)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        # One queue per server, in the order servers were first asked for.
        self._queues: dict[str, deque[Job]] = {}
        self._queued = 0
        # Expired jobs are looked for at most this often, not on every pick.
        self._next_expiry_scan = 0.0
        self._servers: dict[str, _Server] = {}
        self._threads = 0
        self._idle = 0
        self.peak: Counter[str] = Counter()

    # --- what callers use ------------------------------------------------------------

    def submit(self, job: Job) -> None:
        with self._changed:
            self._queues.setdefault(job.server, deque()).append(job)
            self._queued += 1
            # More jobs waiting than idle workers to take them: grow, up to MAX_PROBES. (An
            # idle worker just notified still counts as idle until it wakes, so "no idle
            # worker" alone would keep a burst of hundreds of jobs on one or two threads.)
            if self._queued > self._idle and self._threads < _max_workers():
                self._threads += 1
                threading.Thread(target=self._work, name="dbhealth-probe", daemon=True).start()
            self._changed.notify()

    def answered(self, server: str) -> None:
        """A connection to ``server`` got an answer (even a refusal): trust it."""
        with self._changed:
            self._state(server).answered_at = time.monotonic()
            self._changed.notify_all()

    def silent(self, server: str) -> None:
        """A connection to ``server`` timed out: one connection at a time again."""
        with self._changed:
            self._state(server).answered_at = None

    def waiting_on_silence(self, server: str) -> bool:
        """Whether ``server`` has a first connection out that has not been answered yet."""
        with self._changed:
            state = self._servers.get(server)
            return state is not None and state.running > 0 and not state.trusted(time.monotonic())

    def running(self, server: str) -> int:
        with self._changed:
            state = self._servers.get(server)
            return state.running if state else 0

    # --- the workers -------------------------------------------------------------------

    def _state(self, server: str) -> _Server:
        state = self._servers.get(server)
        if state is None:
            state = self._servers[server] = _Server()
        return state

    def _next(self) -> tuple[Job | None, list[Job], float]:
        """A job that may start now, jobs past their deadline, and how long to sleep.

        Cheap on purpose: it runs each time a connection ends, with hundreds queued.
        """
        now = time.monotonic()
        expired: list[Job] = []
        if now >= self._next_expiry_scan:
            self._next_expiry_scan = now + EXPIRY_SCAN_SECONDS
            for queue in self._queues.values():
                late = [job for job in queue if job.deadline <= now]
                for job in late:
                    queue.remove(job)
                expired += late
            self._queued -= len(expired)
        per_server = _per_server()
        wake = now + IDLE_SECONDS
        for server, queue in self._queues.items():
            if not queue:
                continue
            wake = min(wake, queue[0].deadline, self._next_expiry_scan)
            state = self._state(server)
            limit = per_server if state.trusted(now) else 1
            if state.running >= limit:
                continue
            if state.retry_at > now:
                wake = min(wake, state.retry_at)
                continue
            job = queue.popleft()
            self._queued -= 1
            state.running += 1
            self.peak[server] = max(self.peak[server], state.running)
            return job, expired, 0.0
        return None, expired, max(0.0, wake - now)

    def _work(self) -> None:
        while True:
            with self._changed:
                job, expired, sleep = self._next()
                if job is None and not expired:
                    if self._threads > _max_workers():
                        self._threads -= 1
                        return
                    self._idle += 1
                    woken = self._changed.wait(timeout=min(sleep, IDLE_SECONDS))
                    self._idle -= 1
                    if not woken and not self._queued:
                        self._threads -= 1
                        return
                    continue
            for late in expired:
                late.expired = True
                self._expire(late)
            if job is not None:
                self._start(job)

    def why_not_started(self, job: Job) -> str:
        """Why ``job`` is still waiting: its server is silent, or its slots are all busy."""
        if self.waiting_on_silence(job.server):
            return "not dialled: the server has not answered another alias's connection"
        return "queued: no connection slot for this server freed up in time"

    def _expire(self, job: Job) -> None:
        reason = self.why_not_started(job)
        try:
            job.expire(reason)
        except Exception:
            logger.exception("expiring a probe job failed")

    def _start(self, job: Job) -> None:
        slot = _claim_slot(job.server, job.bound)
        if slot is False:
            # Every slot of this server is held by other processes: back to the queue.
            with self._changed:
                state = self._state(job.server)
                state.running -= 1
                state.retry_at = time.monotonic() + SLOT_RETRY_SECONDS
                self._queues.setdefault(job.server, deque()).appendleft(job)
                self._queued += 1
                self._changed.notify()
            return
        job.started = True
        try:
            job.run()
        except Exception:  # a job settles its own futures; a bug must not kill the worker
            logger.exception("probe job %s failed unexpectedly", job.label)
        finally:
            if isinstance(slot, str):
                _release_slot(slot)
            with self._changed:
                self._state(job.server).running -= 1
                # One connection freed: one waiting worker may use it (not all of them).
                self._changed.notify()


def _max_workers() -> int:
    return get_settings().max_probes


def _per_server() -> int:
    return get_settings().max_probes_per_server


# --- slots shared across processes -------------------------------------------------------


def _slot_prefix(server: str) -> str:
    digest = hashlib.sha256(server.encode()).hexdigest()[:16]
    return f"dbhealth:slot:{digest}"


def _claim_slot(server: str, bound: float) -> str | bool | None:
    """A slot key taken in the shared cache; False if all are held; None without a cache."""
    limit = _per_server()
    # Long enough for the driver timeouts to end a straggler; a holder that died frees it.
    ttl = max(2, math.ceil(2 * bound) + 1)
    prefix = _slot_prefix(server)
    first = random.randrange(limit)
    for step in range(limit):
        key = f"{prefix}:{(first + step) % limit}"
        taken = sharedcache.add(key, os.getpid(), ttl)
        if taken is None:  # without the cache, the per-process limit is what holds
            return None
        if taken:
            return key
    return False


def _release_slot(key: str) -> None:
    sharedcache.delete(key)  # if this fails, the slot expires on its own


# --- one scheduler per process -------------------------------------------------------------

_scheduler = Scheduler()


def scheduler() -> Scheduler:
    return _scheduler


def _new_scheduler_in_child() -> None:
    # A forked child inherits the queue and counts but none of the threads.
    global _scheduler
    _scheduler = Scheduler()


os.register_at_fork(after_in_child=_new_scheduler_in_child)
