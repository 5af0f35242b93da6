"""Rows 1 and 2: a probe against the raw driver doing the same work, per vendor.

The raw side calls the driver directly (``psycopg.connect``, ``MySQLdb.connect``,
``sqlite3.connect``) with exactly the keyword arguments a probe uses: the backend's
``get_connection_params()`` with the probe's time bounds injected. Both sides run the
same ping statement (``SELECT 1``; SQLite ``PRAGMA schema_version``, which the probe
uses because it reads the file header).

Row 2 ("query round trip on an open connection"): a probe only ever queries the
connection it has just opened, so its round trip is its own ``query_ms`` (cursor,
execute, fetch). The raw side times the same three calls on the connection it has
just opened, i.e. the first statement of a new session on both sides.
"""

from __future__ import annotations

import copy
import sqlite3
import time
from typing import Any

import MySQLdb
import psycopg
from django.db import connections
from django.db.utils import load_backend

from bench.report import Line, median_ms, ms
from bench.sampling import interleaved
from dashboard.probes import ProbeResult, probe, probe_finished
from dashboard.vendors import VENDORS

OVERHEAD_TARGET = 1.3
ROUND_TRIP_TARGET = 1.2
# Seconds a server is left alone after each run, so the next connect meets an idle one.
SERVER_GAP = 0.002


def raw_connect(vendor: str, params: dict[str, Any]) -> Any:
    if vendor == "postgresql":
        return psycopg.connect(**params)
    if vendor == "mysql":
        return MySQLdb.connect(**params)
    return sqlite3.connect(**params)


def probe_params(alias: str, timeout: float) -> tuple[str, dict[str, Any]]:
    """The vendor and driver kwargs a probe of ``alias`` connects with."""
    settings_dict = copy.deepcopy(connections.settings[alias])
    wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(settings_dict, alias)
    vendor = str(wrapper.vendor)
    return vendor, VENDORS[vendor].bounded(wrapper.get_connection_params(), timeout)


def contenders(alias: str, timeout: float) -> dict[str, Any]:
    vendor, params = probe_params(alias, timeout)
    ping = VENDORS[vendor].ping_sql
    clock = time.perf_counter

    last: list[ProbeResult] = []

    def dbhealth() -> dict[str, float]:
        started = clock()
        result = probe(alias)
        total = clock() - started
        if not result.ok or result.query_ms is None:
            raise RuntimeError(f"probe of {alias} failed: {result.error}")
        last[:] = [result]
        return {"total": total, "query": result.query_ms / 1000}

    def receivers() -> dict[str, float]:
        # What the app's probe_finished receivers (metrics) add to every probe.
        started = clock()
        probe_finished.send(sender=ProbeResult, result=last[0])
        return {"total": clock() - started}

    def raw() -> dict[str, float]:
        started = clock()
        connection = raw_connect(vendor, params)
        connected = clock()
        cursor = connection.cursor()
        cursor.execute(ping)
        cursor.fetchone()
        queried = clock()
        connection.close()
        return {"total": clock() - started, "query": queried - connected}

    return {"dbhealth": dbhealth, "raw": raw, "receivers": receivers}


def run(aliases: dict[str, str], timeout: float, budget: float) -> list[Line]:
    """``aliases``: vendor label -> alias. Returns the row 1 lines, then the row 2 lines."""
    overhead: list[Line] = []
    round_trip: list[Line] = []
    for label, alias in aliases.items():
        vendor, _ = probe_params(alias, timeout)
        gap = SERVER_GAP if vendor in ("postgresql", "mysql") else 0.0
        samples = interleaved(contenders(alias, timeout), budget=budget, gap=gap)
        settled = "" if samples.settled else " (not settled)"
        values = samples.values
        probe_total = median_ms(values["dbhealth"]["total"])
        raw_total = median_ms(values["raw"]["total"])
        probe_query = median_ms(values["dbhealth"]["query"])
        raw_query = median_ms(values["raw"]["query"])
        receivers = median_ms(values["receivers"]["total"])
        data = {
            "alias": alias,
            "rounds": samples.rounds,
            "settled": samples.settled,
            "seconds": round(samples.seconds, 1),
            "probe_total_ms": probe_total,
            "raw_total_ms": raw_total,
            "probe_query_ms": probe_query,
            "raw_query_ms": raw_query,
            "receivers_ms": receivers,
        }
        ratio = probe_total / raw_total
        overhead.append(
            Line(
                row="1",
                benchmark=f"probe overhead, {label}: `probe(alias)` vs raw connect + ping + close",
                dbhealth=ms(probe_total),
                reference=f"raw driver {ms(raw_total)}",
                result=f"{ratio:.2f}× (of which signal receivers {ms(receivers)}; "
                f"{samples.rounds} rounds{settled})",
                target=f"≤ {OVERHEAD_TARGET}×",
                holds=ratio <= OVERHEAD_TARGET,
                data=data,
            )
        )
        ratio = probe_query / raw_query
        round_trip.append(
            Line(
                row="2",
                benchmark=f"query round trip, {label}: probe `query_ms` vs raw first statement",
                dbhealth=ms(probe_query),
                reference=f"raw driver {ms(raw_query)}",
                result=f"{ratio:.2f}×",
                target=f"≤ {ROUND_TRIP_TARGET}×",
                holds=ratio <= ROUND_TRIP_TARGET,
                data=data,
            )
        )
    return overhead + round_trip
