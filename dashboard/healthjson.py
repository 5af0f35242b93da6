"""Probe results as an ``application/health+json`` document (IETF health-check draft).

Pure functions of ``ProbeResult`` lists: ``/health/`` and ``dbhealth --json`` print
what these return. Anonymous callers get statuses and latencies; the detailed form
adds where each alias is, what runs there and why it failed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dashboard.probes import ProbeResult
from dashboard.summary import Verdict, alias_verdict, summarize

MEDIA_TYPE = "application/health+json"
MEASUREMENT = "responseTime"

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


def document(
    results: Sequence[ProbeResult], critical_aliases: Iterable[str], *, detailed: bool
) -> dict[str, Any]:
    critical = tuple(critical_aliases)
    summary = summarize(results, critical)
    return {
        "status": summary.verdict,
        "description": "database aliases",
        "notes": [summary.text],
        "checks": {
            check_key(result.alias): [check(result, critical, detailed=detailed)]
            for result in results
        },
    }


def error_document(message: str) -> dict[str, Any]:
    """The body of a 400 or 401: the draft's shape, with the reason in ``output``."""
    return {"status": "fail", "output": message}
