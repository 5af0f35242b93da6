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


_built: tuple[object, DBHealthSettings] | None = None


def _probes(value: Any) -> int:
    # A count below 1 (or not a count) is read as 1, so every page still answers; system
    # check dbhealth.E004 names the setting.
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def get_settings() -> DBHealthSettings:
    """The app's settings, built once per ``settings.DBHEALTH`` object (probes and
    /health/ read them on every call; ``override_settings`` swaps the object)."""
    global _built
    configured = getattr(settings, "DBHEALTH", {})
    if _built is not None and _built[0] is configured:
        return _built[1]
    merged = {**DEFAULTS, **configured}
    built = DBHealthSettings(
        timeout=float(merged["TIMEOUT"]),
        cache_ttl=float(merged["CACHE_TTL"]),
        poll_interval=float(merged["POLL_INTERVAL"]),
        critical_aliases=tuple(merged["CRITICAL_ALIASES"]),
        token=str(merged["TOKEN"]),
        routes={str(k).lower(): str(v) for k, v in dict(merged["ROUTES"]).items()},
        warn_ms=float(merged["WARN_MS"]),
        history_length=int(merged["HISTORY_LENGTH"]),
        cache=str(merged["CACHE"]),
        cache_backoff=float(merged["CACHE_BACKOFF"]),
        metrics_public=bool(merged["METRICS_PUBLIC"]),
        max_probes_per_server=int(merged["MAX_PROBES_PER_SERVER"]),
        max_probes=int(merged["MAX_PROBES"]),
        fall=_probes(merged["FALL"]),
        rise=_probes(merged["RISE"]),
        flap_changes=_probes(merged["FLAP_CHANGES"]),
        flap_window=float(merged["FLAP_WINDOW"]),
        key_range_threshold=float(merged["KEY_RANGE_THRESHOLD"]),
        xid_age_threshold=float(merged["XID_AGE_THRESHOLD"]),
        allow_cancel=bool(merged["ALLOW_CANCEL"]),
        metrics_dir=str(merged["METRICS_DIR"] or ""),
        pool_ttl=float(merged["POOL_TTL"]),
    )
    _built = (configured, built)
    return built
