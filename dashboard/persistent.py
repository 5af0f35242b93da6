"""The application's persistent connections (``CONN_MAX_AGE``), per worker thread, combined.

Django keeps one connection per alias *per thread*: ``connections`` is thread-local, so
under gunicorn's gthread worker each of a worker's threads holds its own, and the one a
request uses is the one of the thread serving it. Another thread cannot read it: it
would see a wrapper of its own that never connected, and may not touch another thread's
(``validate_thread_sharing``). So each request thread notes its own connections at the
end of its request: a ``request_finished`` receiver, connected after Django's own
``close_old_connections`` (which by then has closed a connection past its age or broken
by an error), notes for every alias with ``CONN_MAX_AGE`` other than 0 whether the
thread's connection is open, since when (``connection_created`` stamps each new one)
and whether Django's ``is_usable()`` still says yes. The worker's publishing thread
(``dashboard.workers``) publishes what its threads noted, and forgets threads that
ended; any process then combines every worker's.

``is_usable()`` is a query on the application's own connection (``SELECT 1`` on
PostgreSQL, ``ping()`` on MySQL; SQLite always says yes), made after the response has
gone. It is bounded the way the connection's own queries are (a server that stops
answering holds it as long as it would hold the request's next query), so a thread
checks each alias at most once per ``POOL_TTL / 3`` seconds, and once a check of an
alias has not answered within ``TIMEOUT`` the process's other threads add none until it
does (they keep their last answer): a silent server holds at most the threads that
finished a request in that first ``TIMEOUT``.
The check never closes or replaces the connection: what the next request meets is what
the page shows.

A connection kept without ``CONN_HEALTH_CHECKS`` is a warning whatever the figures say:
after a failover or a server restart, each thread's stale connection fails the first
query of its next request.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from django.db import connections

from dashboard import workers
from dashboard.conf import get_settings

HEALTH_CHECK_FIX = "Set CONN_HEALTH_CHECKS = True for this alias."


def persistent_aliases() -> dict[str, dict[str, Any]]:
    """Aliases that keep connections between requests (``CONN_MAX_AGE`` None or > 0)."""
    return {
        alias: settings_dict
        for alias, settings_dict in connections.settings.items()
        if settings_dict.get("CONN_MAX_AGE", 0) != 0
        and not (settings_dict.get("OPTIONS") or {}).get("pool")
    }


@dataclass(frozen=True)
class ConnectionState:
    """One thread's connection of one alias, as the thread noted it at a request's end."""

    alias: str
    worker: str
    thread: str
    open: bool
    # Wall clock (epoch seconds) so that any process can tell ages; None: not open.
    opened_at: float | None
    # Django's is_usable() at ``checked_at``; None: not checked (not open, or in use).
    usable: bool | None
    checked_at: float
    noted_at: float

    def age_s(self, now: float | None = None) -> float | None:
        if not self.open or self.opened_at is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.opened_at)

    @property
    def checked_ago_s(self) -> float:
        return max(0.0, time.time() - self.checked_at)

    @property
    def usable_text(self) -> str:
        return {True: "yes", False: "no", None: "not checked"}[self.usable]


@dataclass(frozen=True)
class PersistentView:
    """One alias's persistent connections over every worker that published them."""

    alias: str
    max_age: float | None
    health_checks: bool
    connections: tuple[ConnectionState, ...] = ()
    stopped: tuple[str, ...] = ()

    @property
    def open_connections(self) -> tuple[ConnectionState, ...]:
        return tuple(c for c in self.connections if c.open)

    @property
    def unusable(self) -> tuple[ConnectionState, ...]:
        return tuple(c for c in self.open_connections if c.usable is False)

    @property
    def max_age_text(self) -> str:
        return "unlimited" if self.max_age is None else f"{self.max_age:g} s"

    @property
    def warns(self) -> bool:
        return not self.health_checks

    @property
    def problem(self) -> str | None:
        found = []
        if self.unusable:
            where = ", ".join(f"{c.worker} {c.thread}" for c in self.unusable)
            then = (
                "Django replaces it before the next request's first query (CONN_HEALTH_CHECKS)"
                if self.health_checks
                else "the next request on that thread fails its first query"
            )
            found.append(
                f"{self.alias}: {len(self.unusable)} persistent connection(s) not usable"
                f" ({where}): {then}"
            )
        if not self.health_checks:
            found.append(
                f"{self.alias} keeps connections (CONN_MAX_AGE {self.max_age_text}) without"
                " CONN_HEALTH_CHECKS: after a failover or a server restart, a stale connection"
                f" fails the first query of a request on each thread that holds one."
                f" {HEALTH_CHECK_FIX}"
            )
        return "; ".join(found) or None

    @property
    def text(self) -> str:
        opened = self.open_connections
        workers_seen = len({c.worker for c in self.connections})
        line = f"persistent (CONN_MAX_AGE {self.max_age_text}): {len(opened)} open"
        if workers_seen:
            line += f" over {workers_seen} worker(s)"
        ages = [age for age in (c.age_s() for c in opened) if age is not None]
        if len(ages) == 1:
            line += f", aged {ages[0]:.0f} s"
        elif ages:
            line += f", aged {min(ages):.0f} to {max(ages):.0f} s"
        checked = [c for c in opened if c.usable is not None]
        if checked:
            usable = sum(1 for c in checked if c.usable)
            line += f", {usable} of {len(checked)} usable"
        if not self.connections:
            line += " (no request has noted one yet)"
        if self.stopped:
            line += f"; stopped publishing: {', '.join(self.stopped)}"
        return line

    def as_json(self) -> dict[str, Any]:
        now = time.time()
        return {
            "maxAge": self.max_age,
            "healthChecks": self.health_checks,
            "open": len(self.open_connections),
            "unusable": len(self.unusable),
            "connections": [{**asdict(c), "ageSeconds": c.age_s(now)} for c in self.connections],
            "stoppedPublishing": list(self.stopped),
        }


# --- what this process's threads noted -------------------------------------------------

# When each of this process's connections was opened, by wrapper (they are thread-local).
_opened_at: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
# (thread ident, alias) -> what that thread noted last.
_noted: dict[tuple[int, str], ConnectionState] = {}
# alias -> {thread ident: when its is_usable() started} for the checks under way.
_checking: dict[str, dict[int, float]] = {}
_lock = threading.Lock()


def note_connection_created(*, connection: Any, **kwargs: Any) -> None:
    """Receiver of ``connection_created``: the opening time of each new connection."""
    _opened_at[connection] = time.time()


def note_request_end(**kwargs: Any) -> None:
    """Receiver of ``request_finished``, in the thread that served the request."""
    wanted = persistent_aliases()
    if not wanted:
        return
    thread = threading.current_thread()
    assert thread.ident is not None
    every = get_settings().pool_ttl / 3
    now = time.time()
    worker = workers.worker_id()
    for wrapper in connections.all(initialized_only=True):
        alias = wrapper.alias
        if alias not in wanted:
            continue
        before = _noted.get((thread.ident, alias))
        is_open = wrapper.connection is not None
        opened_at = _opened_at.get(wrapper) or _from_close_at(wrapper) if is_open else None
        usable: bool | None = None
        checked_at = now
        same = before is not None and before.open and before.opened_at == opened_at
        if is_open and same and before is not None and now - before.checked_at < every:
            usable, checked_at = before.usable, before.checked_at
        elif is_open and not wrapper.in_atomic_block:
            found = _usable(alias, wrapper)
            if found is not None:
                usable = found
            elif same and before is not None:
                usable, checked_at = before.usable, before.checked_at
        state = ConnectionState(
            alias, worker, thread.name, is_open, opened_at, usable, checked_at, now
        )
        with _lock:
            _noted[(thread.ident, alias)] = state


def _from_close_at(wrapper: Any) -> float | None:
    """A connection opened before this app was ready: Django's ``close_at`` (monotonic,
    CONN_MAX_AGE after the connect) tells when, if the age is limited."""
    max_age = wrapper.settings_dict.get("CONN_MAX_AGE")
    if wrapper.close_at is None or max_age is None:
        return None
    return float(time.time() - (time.monotonic() - (wrapper.close_at - max_age)))


def _usable(alias: str, wrapper: Any) -> bool | None:
    """``is_usable()``, unless a check of ``alias`` in this process has hung (None)."""
    started = time.monotonic()
    ident = threading.get_ident()
    with _lock:
        running = _checking.setdefault(alias, {})
        if any(started - since > get_settings().timeout for since in running.values()):
            return None
        running[ident] = started
    try:
        return bool(wrapper.is_usable())
    except Exception:  # a driver that raises instead of saying no
        return False
    finally:
        with _lock:
            running.pop(ident, None)


def local_states() -> list[ConnectionState]:
    """What this process's live threads noted (threads that ended are forgotten)."""
    alive = {thread.ident for thread in threading.enumerate()}
    with _lock:
        for key in [key for key in _noted if key[0] not in alive]:
            del _noted[key]
        noted = list(_noted.values())
    return sorted(noted, key=lambda state: (state.alias, state.thread))


def collect() -> list[dict[str, Any]]:
    return [asdict(state) for state in local_states()]


# What this module adds to each worker's published entry (registered by the app's ready()).
SECTION = workers.Section(wanted=lambda: bool(persistent_aliases()), collect=collect)


def combined(aliases: Iterable[str] | None = None) -> dict[str, PersistentView]:
    """Every alias that keeps connections, with every worker's (this one's as of now)."""
    found = persistent_aliases()
    wanted = {
        alias: found[alias] for alias in (found if aliases is None else aliases) if alias in found
    }
    if not wanted:
        return {}
    published = workers.read()
    names = {f.name for f in fields(ConnectionState)}
    own = workers.worker_id()
    by_alias: dict[str, list[ConnectionState]] = {alias: [] for alias in wanted}
    for worker, entries in published.section("persistent").items():
        if worker == own:
            continue  # this process's own notes are newer than what it published
        for entry in entries:
            state = ConnectionState(**{k: v for k, v in entry.items() if k in names})
            if state.alias in by_alias:
                by_alias[state.alias].append(state)
    for state in local_states():
        if state.alias in by_alias:
            by_alias[state.alias].append(state)
    return {
        alias: PersistentView(
            alias,
            max_age=_max_age(settings_dict),
            health_checks=bool(settings_dict.get("CONN_HEALTH_CHECKS", False)),
            connections=tuple(sorted(by_alias[alias], key=lambda s: (s.worker, s.thread))),
            stopped=published.stopped,
        )
        for alias, settings_dict in wanted.items()
    }


def _max_age(settings_dict: Mapping[str, Any]) -> float | None:
    value = settings_dict.get("CONN_MAX_AGE", 0)
    return None if value is None else float(value)


def problems(views: Iterable[PersistentView]) -> list[str]:
    return [view.problem for view in views if view.problem]
