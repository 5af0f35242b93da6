"""Probe results as an ``application/health+json`` document (IETF health-check draft).

Pure functions of a ``Report``: ``/health/`` and ``dbhealth --json`` print
what these return. Anonymous callers get statuses and latencies; the detailed form
adds where each alias is, what runs there and why it failed.
"""

from __future__ import annotations

from typing import Any

from dashboard.persistent import PersistentView
from dashboard.pools import PoolView
from dashboard.report import AliasReport, Report
from dashboard.summary import Verdict

MEDIA_TYPE = "application/health+json"
MEASUREMENT = "responseTime"
# The draft's predefined measurement for a pool's connections.
POOL_MEASUREMENT = "connections"

# The draft's status values decide the HTTP code: only "fail" is an error.
HTTP_STATUS: dict[Verdict, int] = {"pass": 200, "warn": 200, "fail": 503}


def check_key(alias: str) -> str:
    """``"<componentName>:<measurementName>"``; a ':' in an alias is a system check error."""
    return f"{alias}:{MEASUREMENT}"


def check(row: AliasReport, *, detailed: bool) -> dict[str, Any]:
    """One alias's entry of ``checks``: observedValue is connect + query in ms; ``status``
    is the verdict the alias is held at, ``lastProbe`` what its last probe alone says."""
    result = row.result
    entry: dict[str, Any] = {
        "componentId": result.alias,
        "componentType": "datastore",
        "observedValue": result.latency_ms,
        "observedUnit": "ms",
        "status": row.verdict,
        "time": result.checked_at.isoformat(),
        "lastProbe": row.probe_verdict,
        "flapping": row.is_flapping,
    }
    if row.readiness is not None:
        entry["since"] = row.readiness.since_at.isoformat()
        entry["probesSince"] = row.readiness.probes
        entry["output"] = "; ".join(text for text in (row.held, row.flapping_text) if text)
    if detailed:
        entry.update(
            {
                "probe": result.status,
                "vendor": result.vendor,
                "host": result.host,
                "port": result.port,
                "database": result.name,
                "connectMs": result.connect_ms,
                "queryMs": result.query_ms,
                "version": result.server_version,
                "errorType": result.error_type,
                "error": result.error,
            }
        )
    return entry


def pool_check(pool: PoolView, *, detailed: bool) -> dict[str, Any]:
    """``"<alias>:connections"``: the app's own pool, connections in use over every worker."""
    entry: dict[str, Any] = {
        "componentId": pool.alias,
        "componentType": "datastore",
        "observedValue": pool.in_use,
        "observedUnit": "connections",
        "status": "warn" if pool.warns else "pass",
    }
    if pool.problem:
        entry["output"] = pool.problem
    if detailed:
        entry["pool"] = pool.as_json()
    return entry


def persistent_check(kept: PersistentView, *, detailed: bool) -> dict[str, Any]:
    """``"<alias>:connections"`` of an alias that keeps connections (it has no pool):
    the open ones over every worker's threads."""
    entry: dict[str, Any] = {
        "componentId": kept.alias,
        "componentType": "datastore",
        "observedValue": len(kept.open_connections),
        "observedUnit": "connections",
        "status": "warn" if kept.warns else "pass",
    }
    if kept.problem:
        entry["output"] = kept.problem
    if detailed:
        entry["persistent"] = kept.as_json()
    return entry


def document(found: Report, *, detailed: bool) -> dict[str, Any]:
    """The whole answer; an alias with a pool or persistent connections adds a
    ``<alias>:connections`` check (the app's path, beside the fresh probe's
    ``responseTime``)."""
    checks = {check_key(row.alias): [check(row, detailed=detailed)] for row in found.rows}
    notes = [found.summary.text]
    for row in found.rows:
        if row.pool is not None:
            checks[f"{row.alias}:{POOL_MEASUREMENT}"] = [pool_check(row.pool, detailed=detailed)]
            if row.pool.problem:
                notes.append(row.pool.problem)
        elif row.persistent is not None:
            entry = persistent_check(row.persistent, detailed=detailed)
            checks[f"{row.alias}:{POOL_MEASUREMENT}"] = [entry]
            if row.persistent.problem:
                notes.append(row.persistent.problem)
    return {
        "status": found.summary.verdict,
        "description": "database aliases",
        "notes": notes,
        "checks": checks,
    }


def error_document(message: str) -> dict[str, Any]:
    """The body of a 400 or 401: the draft's shape, with the reason in ``output``."""
    return {"status": "fail", "output": message}
