"""The app's settings: one ``DBHEALTH`` dict in Django settings, defaults here.

Read them through :func:`get_settings` on each use so ``override_settings`` works.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

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
    # Worker threads shared by all probe rounds of the process.
    "MAX_WORKERS": 16,
    # A probe slower than this (ms) is reported as a warning by `dbhealth`.
    "WARN_MS": 1000.0,
    # Probes kept per alias for the latency history.
    "HISTORY_LENGTH": 120,
}


@dataclass(frozen=True)
class DBHealthSettings:
    timeout: float
    cache_ttl: float
    poll_interval: float
    critical_aliases: tuple[str, ...]
    token: str = field(repr=False)
    routes: dict[str, str]
    max_workers: int
    warn_ms: float
    history_length: int


def get_settings() -> DBHealthSettings:
    merged = {**DEFAULTS, **getattr(settings, "DBHEALTH", {})}
    return DBHealthSettings(
        timeout=float(merged["TIMEOUT"]),
        cache_ttl=float(merged["CACHE_TTL"]),
        poll_interval=float(merged["POLL_INTERVAL"]),
        critical_aliases=tuple(merged["CRITICAL_ALIASES"]),
        token=str(merged["TOKEN"]),
        routes={str(k).lower(): str(v) for k, v in dict(merged["ROUTES"]).items()},
        max_workers=int(merged["MAX_WORKERS"]),
        warn_ms=float(merged["WARN_MS"]),
        history_length=int(merged["HISTORY_LENGTH"]),
    )
