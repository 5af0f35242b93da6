"""How to reach one alias with bounded time: its ``Target``, and a fresh driver connection.

A target is built once per alias settings and time bound from what Django's own backend
would pass the driver (``DatabaseWrapper.get_connection_params()``), plus the bounds of
its vendor (``dashboard.vendors``). Connecting with the driver itself skips
``init_connection_state`` (time zone, isolation level, version queries), which keeps a
probe near the cost of a bare connect. Nothing here touches the application's own
connections.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connections
from django.db.utils import load_backend

from dashboard import vendors
from dashboard.redact import secrets_of
from dashboard.result import ProbeResult, Status, location_text, server_key
from dashboard.vendors import Params, Vendor

logger = logging.getLogger(__name__)


class UnknownAlias(KeyError):
    """The one error for an alias that is not in ``DATABASES``."""

    def __init__(self, alias: str) -> None:
        super().__init__(f"unknown database alias {alias!r}")
        self.alias = alias

    def __str__(self) -> str:
        return str(self.args[0])


def check_alias(alias: str) -> None:
    if alias not in connections.settings:
        raise UnknownAlias(alias)


@dataclass(frozen=True)
class Target:
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

    @property
    def server(self) -> str:
        return server_key(self.vendor, self.host, self.port, self.name)

    @property
    def location(self) -> str:
        return location_text(self.vendor, self.host, self.port, self.name)

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


_target_cache: dict[tuple[Any, ...], Target] = {}
_target_lock = threading.Lock()


def target(alias: str, timeout: float) -> Target:
    """The target of ``alias`` (built once per settings and timeout); UnknownAlias if none."""
    check_alias(alias)
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
    secrets = secrets_of(settings_dict)
    try:
        wrapper = load_backend(described["engine"]).DatabaseWrapper(
            copy.deepcopy(settings_dict), alias
        )
        vendor = str(wrapper.vendor)
        known = vendors.get(vendor)
        params = known.bounded(wrapper.get_connection_params(), timeout) if known else None
    except Exception as error:  # a broken ENGINE or OPTIONS is a "down" alias, not a crash
        return Target(
            vendor=described["engine"].rsplit(".", 1)[-1] or "unknown",
            timeout=timeout,
            secrets=secrets,
            params=None,
            setup_error=error,
            **described,
        )
    built = Target(
        vendor=vendor, timeout=timeout, secrets=secrets, params=params, driver=known, **described
    )
    with _target_lock:
        _target_cache[key] = built
    return built


# Settings keys that decide what an alias reaches; passwords stay out of cache keys.
_IDENTITY_KEYS = ("ENGINE", "HOST", "PORT", "NAME", "USER")
_SECRET_OPTIONS = {"password", "passwd"}
_fingerprints: dict[tuple[str, str], str] = {}


def fingerprint(alias: str) -> str:
    """The identity of an alias: what it reaches, without secrets, as a short hash.

    Same settings, same fingerprint in every process; an alias pointed at another server
    gets a new one, so cached results, history and drift never carry over to it.
    """
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


def release(error: BaseException) -> None:
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


def close_quietly(connection: Any) -> None:
    try:
        connection.close()
    except Exception:  # closing a broken connection may raise; it is gone either way
        logger.debug("closing a probe connection failed", exc_info=False)


def open_driver_connection(found: Target) -> tuple[Vendor, Any]:
    """A fresh DB-API connection to ``found`` with its time bounds; the caller closes it.

    Raises LookupError when the backend has no entry in the vendor table, else what the
    driver raises.
    """
    if found.setup_error is not None:
        raise found.setup_error
    if found.driver is None or found.params is None:
        raise LookupError(f"no bounded connection for the {found.vendor!r} backend")
    try:
        return found.driver, found.driver.connect(found.params)
    except Exception as error:
        release(error)
        raise


@contextmanager
def bounded_connection(alias: str, *, timeout: float) -> Iterator[tuple[Vendor, Any]]:
    """A fresh driver connection to ``alias`` with the probe's time bounds, closed after."""
    vendor, connection = open_driver_connection(target(alias, timeout))
    try:
        yield vendor, connection
    finally:
        close_quietly(connection)
