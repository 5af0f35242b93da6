"""The application's path: one borrow from the worker's own pool, beside the fresh probe.

A fresh probe proves that a new client can connect; the site's requests do not connect,
they borrow from the pool. ``check`` borrows the way a request does
(``pool.getconn(timeout=...)``), runs ``SELECT 1`` and gives the connection back in a
``finally`` at once, so an answer can say "fresh connection up, the application's pool
is not": no connection came free within the wait (all of them in use), or the one lent
failed (a server-side kill or a failover that the pool has not noticed: without a
``check`` it lends what it holds).

Bounds. The wait is a share of the answer's one ``Deadline`` and never longer than the
pool's own ``timeout`` (what a request would wait). At most one borrow per alias is in
flight per process: a request that finds one running joins it, so a starved pool never
gets more than one extra waiter from each worker. The borrow runs in a thread of its
own, so the fresh probe runs beside it; a ``SELECT 1`` that a silent server never
answers keeps that one connection as long as it would keep any request's.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Literal

from dashboard.deadline import Deadline
from dashboard.redact import error_text, error_type, redact

Status = Literal["ok", "exhausted", "failed", "unchecked"]

# Of what is left of the answer's deadline, the share a borrow may wait: the rest renders.
WAIT_SHARE = 0.75


@dataclass(frozen=True)
class PathCheck:
    """One borrow from one process's pool."""

    alias: str
    status: Status
    # The longest the borrow was allowed to wait for a connection, in seconds.
    wait_s: float
    # Borrow + ``SELECT 1`` + give back, when a connection was lent.
    ms: float | None = None
    in_use: int = 0
    max_size: int = 0
    error: str = ""
    # Wall clock (epoch seconds), so that other processes can tell its age.
    checked_at: float = 0.0
    # How to make the pool check what it lends, said with a failure ("" if it does).
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def text(self) -> str:
        if self.status == "ok":
            return f"borrowed, answered and given back in {self.ms or 0:.1f} ms"
        if self.status == "exhausted":
            return (
                f"no connection free within {self.wait_s:.1f} s"
                f" ({self.in_use} of {self.max_size} in use)"
            )
        if self.status == "failed":
            return " ".join(
                part for part in (f"the connection it lent failed: {self.error}.", self.fix) if part
            )
        return self.error or "not checked"


def check(alias: str, pool: Any, wait: float, *, fix: str = "") -> PathCheck:
    """Borrow from ``pool`` for at most ``wait`` seconds, ``SELECT 1``, give back."""
    from psycopg_pool import PoolTimeout

    started = time.monotonic()
    wait = max(0.0, min(wait, float(getattr(pool, "timeout", wait))))
    try:
        connection = pool.getconn(timeout=wait)
    except PoolTimeout:
        stats = pool.get_stats()
        return PathCheck(
            alias, "exhausted", wait, in_use=stats.get("pool_size", 0) -
            stats.get("pool_available", 0), max_size=stats.get("pool_max", 0),
            checked_at=time.time(),
        )  # fmt: skip
    except Exception as error:  # a closed pool, a connection the pool could not make
        return _failed(alias, wait, pool, error, fix)
    try:
        connection.execute("SELECT 1").fetchone()
    except Exception as error:
        # putconn sees the broken connection and makes the pool replace it.
        return _failed(alias, wait, pool, error, fix)
    finally:
        pool.putconn(connection)
    stats = pool.get_stats()
    return PathCheck(
        alias, "ok", wait, ms=round((time.monotonic() - started) * 1000, 2),
        in_use=stats.get("pool_size", 0) - stats.get("pool_available", 0),
        max_size=stats.get("pool_max", 0), checked_at=time.time(),
    )  # fmt: skip


def _failed(alias: str, wait: float, pool: Any, error: BaseException, fix: str) -> PathCheck:
    stats = pool.get_stats()
    return PathCheck(
        alias, "failed", wait, error=redact(f"{error_type(error)}: {error_text(error)}"),
        in_use=stats.get("pool_size", 0) - stats.get("pool_available", 0),
        max_size=stats.get("pool_max", 0), checked_at=time.time(), fix=fix,
    )  # fmt: skip


# --- one borrow in flight per alias in this process -------------------------------------

_lock = threading.Lock()
_in_flight: dict[str, Future[PathCheck]] = {}
_latest: dict[str, PathCheck] = {}


def _forget_parents_borrows() -> None:
    # A forked child has neither its parent's threads nor, rightly, its pools.
    global _lock
    _lock = threading.Lock()
    _in_flight.clear()
    _latest.clear()


os.register_at_fork(after_in_child=_forget_parents_borrows)


def start(
    alias: str, pool: Any, deadline: Deadline, *, reuse_within: float = 0.0, fix: str = ""
) -> Future[PathCheck]:
    """A borrow of ``alias`` under way: the one already running, the last one if younger
    than ``reuse_within`` seconds, or a new one in a thread of its own."""
    with _lock:
        running = _in_flight.get(alias)
        if running is not None:
            return running
        last = _latest.get(alias)
        future: Future[PathCheck] = Future()
        if last is not None and time.time() - last.checked_at < reuse_within:
            future.set_result(last)
            return future
        _in_flight[alias] = future
    wait = deadline.remaining() * WAIT_SHARE

    def borrow() -> None:
        found = PathCheck(alias, "unchecked", wait, error="the borrow ended unexpectedly")
        try:
            found = check(alias, pool, wait, fix=fix)
        except Exception as error:  # a pool that cannot even say its figures
            message = redact(f"{error_type(error)}: {error_text(error)}")
            found = PathCheck(alias, "failed", wait, error=message, checked_at=time.time())
        finally:  # whatever happened, the next answer may borrow again
            with _lock:
                _latest[alias] = found
                _in_flight.pop(alias, None)
            future.set_result(found)

    threading.Thread(target=borrow, name=f"dbhealth-borrow-{alias}", daemon=True).start()
    return future


def collect(alias: str, future: Future[PathCheck], deadline: Deadline) -> PathCheck:
    try:
        return future.result(timeout=deadline.remaining())
    except FutureTimeout:
        return PathCheck(
            alias, "unchecked", 0.0, error=f"not checked within {deadline.budget_text}",
            checked_at=time.time(),
        )  # fmt: skip


def latest(alias: str) -> PathCheck | None:
    """The last borrow of ``alias`` in this process that ended."""
    return _latest.get(alias)
