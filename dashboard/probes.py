"""Measure whether each database alias answers, and how fast, within hard time bounds.

``probe(alias)`` opens a fresh connection from the alias's settings with the probe's
own timeouts, runs one cheap statement, reads the server version and closes the
connection in every case. ``probe_all()`` probes every alias concurrently under one
deadline: an alias that has not answered by then is reported as ``timeout``.

A thread blocked inside a driver call cannot be cancelled, so the deadline is the
caller's (it stops waiting) and the driver timeouts only make the straggling thread
end soon after. At most one probe per alias is in flight in a process: a new request
joins the straggler instead of opening another connection to a sick server.

This module knows nothing about HTTP, caching or presentation.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from django.db import connections
from django.db.utils import load_backend
from django.dispatch import Signal

from dashboard.conf import get_settings
from dashboard.vendors import VENDORS, Params, Vendor, is_timeout

logger = logging.getLogger(__name__)

Status = Literal["up", "down", "timeout"]

# Sent after every probe that actually ran, with ``result=ProbeResult``. The sender is
# always ProbeResult, so the receivers can be looked up once (connect/disconnect reset it).
probe_finished = Signal(use_caching=True)


@dataclass(frozen=True)
class ProbeResult:
    alias: str
    vendor: str
    engine: str
    host: str | None
    port: int | None
    name: str
    status: Status
    connect_ms: float | None = None
    query_ms: float | None = None
    total_ms: float | None = None
    server_version: str | None = None
    error_type: str | None = None
    error: str | None = None
    # Whether the alias refuses writes (a standby, a read-only default); None: unknown.
    read_only: bool | None = None
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ok: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ok", self.status == "up")

    @property
    def latency_ms(self) -> float | None:
        """Connect plus query: what an application feels opening a connection."""
        if self.connect_ms is None or self.query_ms is None:
            return None
        return self.connect_ms + self.query_ms

    @property
    def location(self) -> str:
        """host:port for servers, the file for SQLite."""
        if self.vendor == "sqlite" or not self.host:
            return self.name
        return f"{self.host}:{self.port}" if self.port else self.host


@dataclass(frozen=True)
class _Target:
    """What a probe needs about one alias: where it is and how to connect to it."""

    alias: str
    vendor: str
    engine: str
    host: str | None
    port: int | None
    name: str
    timeout: float
    secrets: tuple[str, ...] = field(repr=False)
    params: Params | None = field(repr=False)  # None: connect through Django's wrapper
    driver: Vendor | None = field(default=None, repr=False)
    setup_error: BaseException | None = None

    def result(self, status: Status, **values: Any) -> ProbeResult:
        return ProbeResult(
            alias=self.alias,
            vendor=self.vendor,
            engine=self.engine,
            host=self.host,
            port=self.port,
            name=self.name,
            status=status,
            **values,
        )


def _describe(alias: str, settings_dict: dict[str, Any]) -> dict[str, Any]:
    engine = str(settings_dict.get("ENGINE", ""))
    raw_port = str(settings_dict.get("PORT") or "")
    return {
        "alias": alias,
        "engine": engine,
        "host": str(settings_dict.get("HOST") or "") or None,
        "port": int(raw_port) if raw_port.isdigit() else None,
        "name": str(settings_dict.get("NAME") or ""),
    }


def _secrets_of(settings_dict: dict[str, Any]) -> tuple[str, ...]:
    options = settings_dict.get("OPTIONS") or {}
    values = [settings_dict.get("PASSWORD"), options.get("password"), options.get("passwd")]
    return tuple(str(value) for value in values if value)


_target_cache: dict[tuple[Any, ...], _Target] = {}
_target_lock = threading.Lock()


def _target(alias: str, timeout: float) -> _Target:
    """Build (once per settings and timeout) the driver kwargs for ``alias``."""
    settings_dict = connections.settings[alias]
    options = settings_dict.get("OPTIONS") or {}
    key = (
        alias,
        timeout,
        *(str(settings_dict.get(k)) for k in ("ENGINE", "NAME", "USER", "HOST", "PORT")),
        hash(settings_dict.get("PASSWORD") or ""),
        repr(sorted(options.items())),
    )
    cached = _target_cache.get(key)
    if cached is not None:
        return cached
    described = _describe(alias, settings_dict)
    secrets = _secrets_of(settings_dict)
    try:
        wrapper = load_backend(described["engine"]).DatabaseWrapper(
            copy.deepcopy(settings_dict), alias
        )
        vendor = str(wrapper.vendor)
        known = VENDORS.get(vendor)
        params = known.bounded(wrapper.get_connection_params(), timeout) if known else None
    except Exception as error:  # a broken ENGINE or OPTIONS is a "down" alias, not a crash
        return _Target(
            vendor=described["engine"].rsplit(".", 1)[-1] or "unknown",
            timeout=timeout,
            secrets=secrets,
            params=None,
            setup_error=error,
            **described,
        )
    target = _Target(
        vendor=vendor, timeout=timeout, secrets=secrets, params=params, driver=known, **described
    )
    with _target_lock:
        _target_cache[key] = target
    return target


_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@\s]*@", re.IGNORECASE)
_KEY_VALUE_SECRET = re.compile(r"\b(password|passwd|pwd)\s*=\s*('[^']*'|\"[^\"]*\"|\S+)", re.I)


def clean_message(message: str, secrets: Iterable[str] = ()) -> str:
    """One readable line with passwords and URL credentials removed."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    message = _URL_CREDENTIALS.sub(r"\1:***@", message)
    message = _KEY_VALUE_SECRET.sub(r"\1=***", message)
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = " ".join(lines)
    return text if len(text) <= 500 else text[:497] + "..."


def _error_text(error: BaseException) -> str:
    # mysqlclient errors are (code, message) tuples; show them as "(code) message".
    if len(error.args) == 2 and isinstance(error.args[0], int):
        return f"({error.args[0]}) {error.args[1]}"
    return str(error) or type(error).__name__


def _error_type(error: BaseException) -> str:
    package = type(error).__module__.split(".")[0]
    name = type(error).__name__
    return name if package == "builtins" else f"{package}.{name}"


def _failure(target: _Target, error: BaseException, **timings: float | None) -> ProbeResult:
    total_ms = timings.get("total_ms")
    waited_out = total_ms is not None and total_ms >= target.timeout * 1000
    status: Status = (
        "timeout" if is_timeout(target.vendor, error, waited_out=waited_out) else "down"
    )
    return target.result(
        status,
        error_type=_error_type(error),
        error=clean_message(_error_text(error), target.secrets),
        **timings,
    )


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 3)


def _release(error: BaseException) -> None:
    """Let go, now, of what a failed connect still holds through its traceback.

    psycopg keeps the socket of a timed-out connect in locals of the frames that
    raised, behind a reference cycle: left alone it closes at the next garbage
    collection, and forcing a full one holds the GIL for tens of milliseconds in a
    Django process, stalling every probe running beside it. Clearing the frames'
    locals drops the socket at once.
    """
    pending = [error]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _run_with_driver(target: _Target, vendor: Vendor, params: Params) -> ProbeResult:
    clock = time.perf_counter
    started = clock()
    try:
        connection = vendor.connect(params)
    except Exception as error:
        failed = _failure(target, error, connect_ms=None, total_ms=_ms(started, clock()))
        _release(error)
        return failed
    connected = clock()
    try:
        cursor = connection.cursor()
        cursor.execute(vendor.ping_sql)
        row = cursor.fetchone()
        queried = clock()
        version = vendor.server_version(connection)
        read_only = vendor.read_only(connection, tuple(row or ()))
    except Exception as error:
        return _failure(
            target, error, connect_ms=_ms(started, connected), total_ms=_ms(started, clock())
        )
    finally:
        _close_quietly(connection)
    return target.result(
        "up",
        connect_ms=_ms(started, connected),
        query_ms=_ms(connected, queried),
        total_ms=_ms(started, clock()),
        server_version=version,
        read_only=read_only,
    )


def _run_with_django(target: _Target) -> ProbeResult:
    """Any other backend: a private, unregistered DatabaseWrapper, closed afterwards."""
    wrapper = connections.create_connection(target.alias)
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
        return _failure(target, error, total_ms=_ms(started, time.perf_counter()))
    finally:
        _close_quietly(wrapper)
    return target.result(
        "up",
        connect_ms=_ms(started, connected),
        query_ms=_ms(connected, queried),
        total_ms=_ms(started, time.perf_counter()),
        server_version=version or None,
    )


def _close_quietly(connection: Any) -> None:
    try:
        connection.close()
    except Exception:  # closing a broken connection may raise; it is gone either way
        logger.debug("closing a probe connection failed", exc_info=False)


def _execute(alias: str, target: _Target | None, timeout: float) -> ProbeResult:
    try:
        if target is None:
            target = _target(alias, timeout)
        if target.setup_error is not None:
            result = _failure(target, target.setup_error)
        elif target.driver is not None and target.params is not None:
            result = _run_with_driver(target, target.driver, target.params)
        else:
            result = _run_with_django(target)
    except Exception as error:  # never let a probe bug become a 500 or a dead thread
        logger.exception("probe of alias %r failed unexpectedly", alias)
        result = ProbeResult(
            alias=alias, vendor="unknown", engine="", host=None, port=None, name="",
            status="down", error_type=_error_type(error), error="unexpected probe error",
        )  # fmt: skip
    probe_finished.send(sender=ProbeResult, result=result)
    return result


# --- one probe in flight per alias -------------------------------------------------

_in_flight: dict[str, Future[ProbeResult]] = {}
_in_flight_lock = threading.Lock()


def _settle(
    alias: str, future: Future[ProbeResult], target: _Target | None, timeout: float
) -> None:
    try:
        future.set_result(_execute(alias, target, timeout))
    finally:
        with _in_flight_lock:
            if _in_flight.get(alias) is future:
                del _in_flight[alias]


def _claim(alias: str) -> tuple[Future[ProbeResult], bool]:
    """The alias's probe in flight (joined), or a new future this caller must settle."""
    with _in_flight_lock:
        running = _in_flight.get(alias)
        if running is not None:
            return running, False
        future: Future[ProbeResult] = Future()
        _in_flight[alias] = future
        return future, True


def in_flight() -> list[str]:
    """Aliases with a probe still running (a straggler after a timeout, say)."""
    with _in_flight_lock:
        return sorted(_in_flight)


def _timed_out(alias: str, timeout: float) -> ProbeResult:
    target = _target(alias, timeout)
    return target.result(
        "timeout",
        error_type="TimeoutError",
        error=f"no answer within {timeout:g} s",
        total_ms=round(timeout * 1000, 3),
    )


def _check_alias(alias: str) -> None:
    if alias not in connections.settings:
        raise KeyError(f"unknown database alias {alias!r}")


def probe(alias: str, *, timeout: float | None = None) -> ProbeResult:
    """Probe one alias in the calling thread (uncached). Raises KeyError for an unknown alias."""
    _check_alias(alias)
    bound = get_settings().timeout if timeout is None else timeout
    future, mine = _claim(alias)
    if mine:
        _settle(alias, future, None, bound)
        return future.result()
    try:
        return future.result(timeout=bound)
    except FutureTimeout:
        return _timed_out(alias, bound)


def probe_all(
    aliases: Iterable[str] | None = None, *, timeout: float | None = None
) -> list[ProbeResult]:
    """Probe aliases concurrently (uncached) under one deadline, in settings order."""
    bound = get_settings().timeout if timeout is None else timeout
    deadline = time.monotonic() + bound
    wanted = list(connections.settings) if aliases is None else list(dict.fromkeys(aliases))
    for alias in wanted:
        _check_alias(alias)
    order = {alias: index for index, alias in enumerate(connections.settings)}
    wanted.sort(key=order.__getitem__)
    # Resolved here, before any probe thread starts: on a cold process, building a
    # target (backend import, wrapper, deepcopy) in one thread while another is timing
    # its connect would add that work to the other's connect_ms.
    targets = {alias: _target(alias, bound) for alias in wanted}
    futures: dict[str, Future[ProbeResult]] = {}
    for alias in wanted:
        future, mine = _claim(alias)
        futures[alias] = future
        if mine:
            # Daemon threads: a straggler stuck in a driver call must not hold up exit.
            threading.Thread(
                target=_settle,
                args=(alias, future, targets[alias], bound),
                name=f"dbhealth-probe-{alias}",
                daemon=True,
            ).start()
    wait_futures(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
    return [
        futures[alias].result() if futures[alias].done() else _timed_out(alias, bound)
        for alias in wanted
    ]


# --- the same bounded connection, for readers other than the probe -----------------------


@contextmanager
def bounded_connection(alias: str, *, timeout: float | None = None) -> Iterator[tuple[Vendor, Any]]:
    """A fresh driver connection to ``alias`` with the probe's time bounds, closed after.

    For server vitals and migration checks: yields (vendor, DB-API connection). Raises
    LookupError when the alias's backend has no entry in the vendor table, else what the
    driver raises (``error_text`` shows it without secrets).
    """
    _check_alias(alias)
    target = _target(alias, get_settings().timeout if timeout is None else timeout)
    if target.setup_error is not None:
        raise target.setup_error
    if target.driver is None or target.params is None:
        raise LookupError(f"no bounded connection for the {target.vendor!r} backend")
    try:
        connection = target.driver.connect(target.params)
    except Exception as error:
        _release(error)
        raise
    try:
        yield target.driver, connection
    finally:
        _close_quietly(connection)


def error_text(alias: str, error: BaseException) -> str:
    """``error`` as a probe result shows it: one line, without the alias's passwords."""
    return clean_message(_error_text(error), _secrets_of(connections.settings.get(alias, {})))
