"""Measure whether each database alias answers, and how fast, within one deadline.

``probe(alias)`` and ``probe_all()`` open a fresh connection per alias from its settings
with the probe's own timeouts (``dashboard.connect``), run one cheap statement, read the
server version and close the connection in every case. Connections are opened only by
the scheduler (``dashboard.scheduler``): a bounded pool with a budget per server.

The caller owns the deadline: an alias that has not answered by then is reported as
``timeout``, saying whether its probe never started (queued, or its server silent) or
got no answer. A thread blocked inside a driver call cannot be cancelled, so the driver
timeouts only make the straggler end soon after. At most one probe per alias is in
flight in a process: a new round joins the straggler instead of dialling a sick server
again.

Work that needs a connection to the alias anyway (reading applied migrations, server
vitals) can ride on the probe's connection as an *extra*: it runs after the probe's
statement, and its answer settles its own future.

This module knows nothing about HTTP, caching or presentation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any

from django.db import connections
from django.dispatch import Signal

from dashboard.conf import get_settings
from dashboard.connect import (
    Target,
    UnknownAlias,
    bounded_connection,
    check_alias,
    close_quietly,
    open_driver_connection,
    release,
    target,
)
from dashboard.deadline import Deadline
from dashboard.redact import clean_message, error_type, secrets_of
from dashboard.redact import error_text as driver_text
from dashboard.result import ProbeResult, Status
from dashboard.scheduler import Job, scheduler
from dashboard.vendors import Vendor, is_timeout

__all__ = [
    "Extra",
    "Probe",
    "awaited",
    "check_alias",
    "ordered",
    "timed_out",
    "wait_idle",
    "ProbeResult",
    "Status",
    "UnknownAlias",
    "error_text",
    "bounded_connection",
    "clean_message",
    "in_flight",
    "probe",
    "probe_all",
    "probe_finished",
    "run_on_connection",
    "start",
]

logger = logging.getLogger(__name__)

# Sent after every probe that actually ran, with ``result=ProbeResult``. The sender is
# always ProbeResult, so the receivers can be looked up once (connect/disconnect reset it).
probe_finished = Signal(use_caching=True)

# Work on an open connection: (alias, vendor, DB-API connection, deadline) -> its answer.
Extra = Callable[[str, Vendor, Any, Deadline], Any]


def _failure(found: Target, error: BaseException, **timings: float | None) -> ProbeResult:
    total_ms = timings.get("total_ms")
    waited_out = total_ms is not None and total_ms >= found.timeout * 1000
    status: Status = "timeout" if is_timeout(found.vendor, error, waited_out=waited_out) else "down"
    text = clean_message(driver_text(error), found.secrets)
    if status == "timeout" and waited_out:
        # The driver's own bound fired at the deadline rather than the deadline itself:
        # the same answer in the same words, the driver's beside them.
        text = f"no answer within {found.timeout:g} s ({text})"
    return found.result(status, error_type=error_type(error), error=text, **timings)


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 3)


def timed_out(alias: str, deadline: Deadline, reason: str | None = None) -> ProbeResult:
    """The result of a probe that had not answered by ``deadline``."""
    found = target(alias, deadline.seconds)
    text = f"no answer within {deadline.budget_text}"
    return found.result(
        "timeout",
        error_type="TimeoutError",
        error=f"{text} ({reason})" if reason else text,
        total_ms=round(deadline.seconds * 1000, 3),
    )


# --- one probe of one alias, with what rides on its connection ----------------------------


@dataclass(eq=False)
class Probe:
    """One alias's probe in flight: its result, and the futures of its extras."""

    target: Target
    deadline: Deadline
    result: Future[ProbeResult] = field(default_factory=Future)
    extras: dict[str, tuple[Extra, Future[Any]]] = field(default_factory=dict)
    job: Job | None = None
    expired_reason: str | None = None

    def want(self, name: str, extra: Extra) -> Future[Any] | None:
        """Ride ``extra`` on this probe's connection; None once the connection is in use."""
        with _in_flight_lock:
            if name in self.extras:
                return self.extras[name][1]
            if self.job is not None and self.job.started:
                return None
            future: Future[Any] = Future()
            self.extras[name] = (extra, future)
            return future

    def outcome(self) -> ProbeResult:
        """The result now: what the probe found, or ``timeout`` with why it has not."""
        if self.result.done():
            return self.result.result()
        job = self.job
        if job is None or job.started:
            return timed_out(self.target.alias, self.deadline)
        # The caller may wake at the deadline before the scheduler has expired the job.
        reason = self.expired_reason or scheduler().why_not_started(job)
        return timed_out(self.target.alias, self.deadline, reason)

    def run(self) -> None:
        found = self.target
        clock = time.perf_counter
        started = clock()
        connection: Any = None
        try:
            if found.driver is not None and found.params is not None:
                connection = found.driver.connect(found.params)
        except Exception as error:
            failed = _failure(found, error, connect_ms=None, total_ms=_ms(started, clock()))
            release(error)
            self._answered(failed, connected=False)
            return
        try:
            if connection is None:
                self._answered(_run_with_django(found), connected=True)
                return
            result = _ping(found, connection, started)
            self._answered(result, connected=True)
            if result.ok:
                for extra, future in self._extras():
                    _settle(future, extra, found, connection, self.deadline)
        finally:
            if connection is not None:
                close_quietly(connection)
            self._fail_extras("the alias did not answer its probe")

    def _extras(self) -> list[tuple[Extra, Future[Any]]]:
        with _in_flight_lock:
            return list(self.extras.values())

    def _answered(self, result: ProbeResult, *, connected: bool) -> None:
        if connected or result.status == "down":
            scheduler().answered(self.target.server)
        elif result.status == "timeout":
            scheduler().silent(self.target.server)
        _finish(self, result)

    def _fail_extras(self, reason: str) -> None:
        for _, future in self._extras():
            if not future.done():
                future.set_exception(ConnectionError(reason))

    def expire(self, reason: str) -> None:
        self.expired_reason = reason
        result = timed_out(self.target.alias, self.deadline, reason)
        self._fail_extras(reason)
        _finish(self, result, ran=False)


def _settle(
    future: Future[Any], extra: Extra, found: Target, connection: Any, deadline: Deadline
) -> None:
    if found.driver is None:
        future.set_exception(LookupError(f"no bounded connection for the {found.vendor!r} backend"))
        return
    try:
        future.set_result(extra(found.alias, found.driver, connection, deadline))
    except Exception as error:
        future.set_exception(error)


def _ping(found: Target, connection: Any, started: float) -> ProbeResult:
    assert found.driver is not None  # noqa: S101 - only called with a driver connection
    vendor = found.driver
    clock = time.perf_counter
    connected = clock()
    try:
        cursor = connection.cursor()
        cursor.execute(vendor.ping_sql)
        row = cursor.fetchone()
        queried = clock()
        version = vendor.server_version(connection)
        read_only = vendor.read_only(connection, tuple(row or ()))
        cursor.close()
    except Exception as error:
        return _failure(
            found, error, connect_ms=_ms(started, connected), total_ms=_ms(started, clock())
        )
    return found.result(
        "up",
        connect_ms=_ms(started, connected),
        query_ms=_ms(connected, queried),
        total_ms=_ms(started, clock()),
        server_version=version,
        read_only=read_only,
    )


def _run_with_django(found: Target) -> ProbeResult:
    """Any other backend: a private, unregistered DatabaseWrapper, closed afterwards."""
    if found.setup_error is not None:
        return _failure(found, found.setup_error)
    wrapper = connections.create_connection(found.alias)
    started = time.perf_counter()
    try:
        wrapper.connect()
        connected = time.perf_counter()
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1" + wrapper.features.bare_select_suffix)
            cursor.fetchone()
        queried = time.perf_counter()
        version = ".".join(str(part) for part in wrapper.get_database_version())
    except Exception as error:
        return _failure(found, error, total_ms=_ms(started, time.perf_counter()))
    finally:
        close_quietly(wrapper)
    return found.result(
        "up",
        connect_ms=_ms(started, connected),
        query_ms=_ms(connected, queried),
        total_ms=_ms(started, time.perf_counter()),
        server_version=version or None,
    )


# --- one probe in flight per alias -------------------------------------------------------

_in_flight: dict[str, Probe] = {}
_in_flight_lock = threading.RLock()


def _finish(probe_: Probe, result: ProbeResult, *, ran: bool = True) -> None:
    if ran:
        # Before the result is handed out: whoever reads it sees it counted and recorded.
        try:
            probe_finished.send(sender=ProbeResult, result=result)
        except Exception:
            logger.exception("a receiver of probe_finished failed")
    with _in_flight_lock:
        if _in_flight.get(probe_.target.alias) is probe_:
            del _in_flight[probe_.target.alias]
    if not probe_.result.done():
        probe_.result.set_result(result)


def in_flight() -> list[str]:
    """Aliases with a probe still running or queued (a straggler after a timeout, say)."""
    with _in_flight_lock:
        return sorted(_in_flight)


def wait_idle(timeout: float) -> bool:
    """Wait until no probe is in flight (stragglers included); False if time ran out."""
    with _in_flight_lock:
        running = [probe_.result for probe_ in _in_flight.values()]
    done, pending = wait_futures(running, timeout=timeout)
    return not pending and not in_flight()


def start(
    alias: str, deadline: Deadline, *, extras: Mapping[str, Extra] | None = None
) -> tuple[Probe, dict[str, Future[Any] | None]]:
    """Start (or join) the probe of ``alias``; returns it and the futures of ``extras``.

    An extra's future is None when it could not ride on a probe already connected.
    """
    found = target(alias, deadline.seconds)
    with _in_flight_lock:
        running = _in_flight.get(alias)
        if running is not None and running.job is not None:
            running.job.extend(deadline.at)
            return running, {name: running.want(name, e) for name, e in (extras or {}).items()}
        new = Probe(found, deadline)
        _in_flight[alias] = new
        futures = {name: new.want(name, extra) for name, extra in (extras or {}).items()}
        if found.setup_error is not None:
            result = _failure(found, found.setup_error)
            new._fail_extras("the alias's settings are broken")
            _finish(new, result)
            return new, futures
        new.job = Job(
            server=found.server,
            run=new.run,
            expire=new.expire,
            deadline=deadline.at,
            bound=_connection_bound(found),
            label=alias,
        )
    scheduler().submit(new.job)
    return new, futures


def _connection_bound(found: Target) -> float:
    # psycopg waits at least 2 s for a connect, mysqlclient whole seconds.
    return max(2.0, float(found.timeout))


def _deadline(timeout: float | None, deadline: Deadline | None) -> Deadline:
    if deadline is not None:
        return deadline
    return Deadline.after(get_settings().timeout if timeout is None else timeout)


def probe(
    alias: str, *, timeout: float | None = None, deadline: Deadline | None = None
) -> ProbeResult:
    """Probe one alias (uncached) by the deadline. Raises UnknownAlias for an unknown alias."""
    return probe_all([alias], timeout=timeout, deadline=deadline)[0]


def probe_all(
    aliases: Iterable[str] | None = None,
    *,
    timeout: float | None = None,
    deadline: Deadline | None = None,
) -> list[ProbeResult]:
    """Probe aliases concurrently (uncached) under one deadline, in settings order."""
    bound = _deadline(timeout, deadline)
    wanted = ordered(aliases)
    started = [start(alias, bound)[0] for alias in wanted]
    wait_futures([p.result for p in started], timeout=bound.remaining())
    return [p.outcome() for p in started]


def ordered(aliases: Iterable[str] | None) -> list[str]:
    """The aliases asked for, once each, in settings order; UnknownAlias for an unknown one."""
    known = list(connections.settings)
    if aliases is None:
        return known
    chosen = set(aliases)
    for alias in sorted(chosen):
        check_alias(alias)
    return [alias for alias in known if alias in chosen]


# --- a connection for work other than a probe -------------------------------------------


def run_on_connection(alias: str, deadline: Deadline, work: Extra) -> Future[Any]:
    """Run ``work`` on a fresh bounded connection opened by the scheduler (budget shared
    with probes); the future fails if it cannot start by the deadline."""
    found = target(alias, deadline.seconds)
    future: Future[Any] = Future()

    def run() -> None:
        try:
            _, connection = open_driver_connection(found)
        except Exception as error:
            if found.driver is not None:
                scheduler().answered(found.server)
            future.set_exception(error)
            return
        scheduler().answered(found.server)
        try:
            _settle(future, work, found, connection, deadline)
        finally:
            close_quietly(connection)

    def expire(reason: str) -> None:
        future.set_exception(TimeoutError(reason))

    scheduler().submit(
        Job(
            server=found.server,
            run=run,
            expire=expire,
            deadline=deadline.at,
            bound=_connection_bound(found),
            label=f"{alias} (work)",
        )
    )
    return future


def awaited(alias: str, future: Future[Any] | None, deadline: Deadline) -> tuple[Any, str | None]:
    """What work on a connection (``run_on_connection``, an extra) gave by ``deadline``:
    (its answer, None), or (None, why there is none) in the words a page shows."""
    if future is None:
        return None, "not read: the probe's connection was already in use"
    wait_futures([future], timeout=deadline.remaining())
    if not future.done():
        return None, f"not read within {deadline.budget_text}"
    error = future.exception()
    if error is None:
        return future.result(), None
    return None, str(error) if isinstance(error, LookupError) else error_text(alias, error)


def error_text(alias: str, error: BaseException) -> str:
    """``error`` as a probe result shows it: one line, without the alias's passwords."""
    return clean_message(driver_text(error), secrets_of(connections.settings.get(alias, {})))
