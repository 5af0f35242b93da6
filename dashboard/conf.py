"""The app's settings: one ``DBHEALTH`` dict in Django settings, defaults here.

Read them through :func:`get_settings` on each use so ``override_settings`` works. A
value of the wrong type or out of its range raises ``ImproperlyConfigured`` naming the
key; ``DashboardConfig.ready`` builds them once so a mistake stops start-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    # Seconds a probe round may take before an alias is reported as "timeout".
    "TIMEOUT": 2.0,
    # Seconds a probe result is served from the cache by the page and /health/.
    "CACHE_TTL": 2.0,
    # Seconds between HTMX refreshes of the db-health table.
    "POLL_INTERVAL": 5.0,
    # Aliases whose failure makes the whole answer "fail"; others only "warn".
    "CRITICAL_ALIASES": ["default"],
    # Bearer token that unlocks hosts, versions and errors on /health/ and /metrics.
    "TOKEN": "",
    # Model or app -> alias pins read by dashboard.routing.AliasRouter.
    "ROUTES": {},
    # A probe slower than this (ms) is reported as a warning by `dbhealth`.
    "WARN_MS": 1000.0,
    # Probes kept per alias for the latency history.
    "HISTORY_LENGTH": 120,
    # The Django cache (name in CACHES) that shares probe results between workers.
    "CACHE": "default",
    # Seconds the app works without that cache after it failed (one warning each time).
    "CACHE_BACKOFF": 5.0,
    # Serve /metrics without a token or staff session (a private network only).
    "METRICS_PUBLIC": False,
    # Probe connections open at once to one server (vendor + host + port), counted across
    # every process sharing the cache: keep it well below the server's connection limit.
    "MAX_PROBES_PER_SERVER": 8,
    # Probe connections open at once from one process (its worker threads).
    "MAX_PROBES": 16,
    # Hysteresis of the verdict: consecutive failed probes before an alias that passes is
    # reported failing (FALL), consecutive good ones before a failing alias passes again
    # (RISE). 1 and 1: every probe decides on its own.
    "FALL": 1,
    "RISE": 1,
    # An alias whose verdict changed FLAP_CHANGES times within FLAP_WINDOW seconds is
    # shown (and exported) as flapping.
    "FLAP_CHANGES": 3,
    "FLAP_WINDOW": 600.0,
    # Share of an integer key's range (int4 sequence, INT AUTO_INCREMENT) used before it
    # is shown as a maintenance danger: at 100 % every insert fails.
    "KEY_RANGE_THRESHOLD": 0.8,
    # Share of PostgreSQL's ~2.1 billion transaction IDs a database's oldest unfrozen
    # row may be behind before wraparound is shown as a danger.
    "XID_AGE_THRESHOLD": 0.5,
    # Let users holding dashboard.cancel_session cancel queries and terminate sessions.
    "ALLOW_CANCEL": False,
    # The directory of prometheus-client's multiprocess mode (the PROMETHEUS_MULTIPROC_DIR
    # the workers were started with): /metrics then adds up the counters of every worker.
    # Empty: each process answers with its own counters.
    "METRICS_DIR": "",
    # Seconds a worker's pool figures stay in the shared cache: a worker that exits drops
    # out of the combined figures within this time (it republishes every third of it).
    "POOL_TTL": 10.0,
    # A pool whose requests waited longer than this (ms) on average for a connection over
    # a worker's last minute is a warning.
    "POOL_WAIT_WARN_MS": 100.0,
}

# (lowest, highest) accepted for each number. TIMEOUT's ceiling is also what the
# drivers accept: psycopg turns it into TCP keepalive seconds, and the kernel refuses
# TCP_KEEPIDLE above 32767, which would show a healthy server as down.
RANGES: dict[str, tuple[float, float]] = {
    "TIMEOUT": (0.1, 300.0),
    "CACHE_TTL": (0.0, 86_400.0),
    "POLL_INTERVAL": (1.0, 3_600.0),
    "WARN_MS": (0.0, 3_600_000.0),
    "HISTORY_LENGTH": (1, 10_000),
    "CACHE_BACKOFF": (0.0, 3_600.0),
    "MAX_PROBES_PER_SERVER": (1, 1_000),
    "MAX_PROBES": (1, 1_000),
    "FLAP_WINDOW": (1.0, 86_400.0),
    "KEY_RANGE_THRESHOLD": (0.01, 1.0),
    "XID_AGE_THRESHOLD": (0.01, 1.0),
    "POOL_TTL": (1.0, 3_600.0),
    "POOL_WAIT_WARN_MS": (0.0, 3_600_000.0),
}


@dataclass(frozen=True)
class DBHealthSettings:
    timeout: float
    cache_ttl: float
    poll_interval: float
    critical_aliases: tuple[str, ...]
    token: str = field(repr=False)
    routes: dict[str, str]
    warn_ms: float
    history_length: int
    cache: str
    cache_backoff: float
    metrics_public: bool
    max_probes_per_server: int
    max_probes: int
    fall: int
    rise: int
    flap_changes: int
    flap_window: float
    key_range_threshold: float
    xid_age_threshold: float
    allow_cancel: bool
    metrics_dir: str
    pool_ttl: float
    pool_wait_warn_ms: float


_built: tuple[object, DBHealthSettings] | None = None


def _probes(value: Any) -> int:
    # A count below 1 (or not a count) is read as 1, so every page still answers; system
    # check dbhealth.E006 names the setting.
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def get_settings() -> DBHealthSettings:
    """The app's settings, built once per ``settings.DBHEALTH`` object (probes and
    /health/ read them on every call; ``override_settings`` swaps the object)."""
    global _built
    configured = getattr(settings, "DBHEALTH", {})
    if _built is not None and _built[0] is configured:
        return _built[1]
    if not isinstance(configured, Mapping):
        raise ImproperlyConfigured("DBHEALTH must be a dict.")
    merged = {**DEFAULTS, **configured}
    built = DBHealthSettings(
        timeout=_number(merged, "TIMEOUT"),
        cache_ttl=_number(merged, "CACHE_TTL"),
        poll_interval=_number(merged, "POLL_INTERVAL"),
        critical_aliases=_names(merged, "CRITICAL_ALIASES"),
        token=_text(merged, "TOKEN"),
        routes=_routes(merged),
        warn_ms=_number(merged, "WARN_MS"),
        history_length=int(_number(merged, "HISTORY_LENGTH", whole=True)),
        cache=_text(merged, "CACHE"),
        metrics_public=_boolean(merged, "METRICS_PUBLIC"),
        cache_backoff=_number(merged, "CACHE_BACKOFF"),
        max_probes_per_server=int(_number(merged, "MAX_PROBES_PER_SERVER", whole=True)),
        max_probes=int(_number(merged, "MAX_PROBES", whole=True)),
        fall=_probes(merged["FALL"]),
        rise=_probes(merged["RISE"]),
        flap_changes=_probes(merged["FLAP_CHANGES"]),
        flap_window=_number(merged, "FLAP_WINDOW"),
        key_range_threshold=_number(merged, "KEY_RANGE_THRESHOLD"),
        xid_age_threshold=_number(merged, "XID_AGE_THRESHOLD"),
        allow_cancel=_boolean(merged, "ALLOW_CANCEL"),
        metrics_dir=_text(merged, "METRICS_DIR"),
        pool_ttl=_number(merged, "POOL_TTL"),
        pool_wait_warn_ms=_number(merged, "POOL_WAIT_WARN_MS"),
    )
    _built = (configured, built)
    return built


def _number(merged: dict[str, Any], key: str, *, whole: bool = False) -> float:
    value = merged[key]
    low, high = RANGES[key]
    kind = "a whole number" if whole else "a number"
    # bool is an int to Python, but True as a timeout is a mistake, not 1 second.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ImproperlyConfigured(f"DBHEALTH['{key}'] must be {kind}, got {value!r}.")
    if whole and not isinstance(value, int):
        raise ImproperlyConfigured(f"DBHEALTH['{key}'] must be {kind}, got {value!r}.")
    if not math.isfinite(value) or not low <= value <= high:
        raise ImproperlyConfigured(
            f"DBHEALTH['{key}'] must be between {low:g} and {high:g}, got {value!r}."
        )
    return float(value)


def _boolean(merged: dict[str, Any], key: str) -> bool:
    value = merged[key]
    if not isinstance(value, bool):
        raise ImproperlyConfigured(f"DBHEALTH['{key}'] must be True or False, got {value!r}.")
    return value


def _text(merged: dict[str, Any], key: str) -> str:
    value = merged[key]
    if not isinstance(value, str):
        # Not repr(value): TOKEN is a secret.
        raise ImproperlyConfigured(f"DBHEALTH['{key}'] must be a string.")
    return value


def _names(merged: dict[str, Any], key: str) -> tuple[str, ...]:
    value = merged[key]
    # Not a bare string: it would be read as a list of one-letter aliases.
    if not isinstance(value, list | tuple) or not all(isinstance(name, str) for name in value):
        raise ImproperlyConfigured(
            f"DBHEALTH['{key}'] must be a list of alias names, got {value!r}."
        )
    return tuple(value)


def _routes(merged: dict[str, Any]) -> dict[str, str]:
    value = merged["ROUTES"]
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ImproperlyConfigured(
            "DBHEALTH['ROUTES'] must map 'app_label' or 'app_label.model' to an alias name, "
            f"got {value!r}."
        )
    return {target.lower(): alias for target, alias in value.items()}
