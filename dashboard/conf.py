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
    # Serve /metrics without a token or staff session (a private network only).
    "METRICS_PUBLIC": False,
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
    metrics_public: bool


_built: tuple[object, DBHealthSettings] | None = None


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
