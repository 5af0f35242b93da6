"""Probe results as an ``application/health+json`` document (IETF health-check draft).

Pure functions of ``ProbeResult`` lists: ``/health/`` and ``dbhealth --json`` print
what these return. Anonymous callers get statuses and latencies; the detailed form
adds where each alias is, what runs there and why it failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dashboard.pools import PoolView
from dashboard.probes import ProbeResult
from dashboard.summary import Verdict, alias_verdict, summarize

MEDIA_TYPE = "application/health+json"
MEASUREMENT = "responseTime"
# The draft's predefined measurement for a pool's connections.
POOL_MEASUREMENT = "connections"

# The draft's status values decide the HTTP code: only "fail" is an error.
HTTP_STATUS: dict[Verdict, int] = {"pass": 200, "warn": 200, "fail": 503}


def check_key(alias: str) -> str:
    """``"<componentName>:<measurementName>"``; a ':' in an alias is a system check error."""
    return f"{alias}:{MEASUREMENT}"


def check(
    result: ProbeResult, critical_aliases: Iterable[str], *, detailed: bool
) -> dict[str, Any]:
    """One alias's entry of ``checks``: observedValue is connect + query in ms."""
    entry: dict[str, Any] = {
        "componentId": result.alias,
        "componentType": "datastore",
        "observedValue": result.latency_ms,
        "observedUnit": "ms",
        "status": alias_verdict(result, critical_aliases),
        "time": result.checked_at.isoformat(),
    }
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


def document(
    results: Sequence[ProbeResult],
    critical_aliases: Iterable[str],
    *,
    detailed: bool,
    pools: Mapping[str, PoolView] | None = None,
) -> dict[str, Any]:
    critical = tuple(critical_aliases)
    summary = summarize(results, critical)
    checks = {
        check_key(result.alias): [check(result, critical, detailed=detailed)] for result in results
    }
    notes = [summary.text]
    status: Verdict = summary.verdict
    for result in results:
        pool = (pools or {}).get(result.alias)
        if pool is None:
            continue
        checks[f"{pool.alias}:{POOL_MEASUREMENT}"] = [pool_check(pool, detailed=detailed)]
        if pool.problem:
            notes.append(pool.problem)
            status = "warn" if status == "pass" else status
    return {"status": status, "description": "database aliases", "notes": notes, "checks": checks}


def error_document(message: str) -> dict[str, Any]:
    """The body of a 400 or 401: the draft's shape, with the reason in ``output``."""
    return {"status": "fail", "output": message}
