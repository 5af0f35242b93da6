"""Probe results as a Nagios plugin answer: a state (the exit status) and one line.

Pure functions of a ``Report``, used by ``manage.py dbhealth``. A critical alias held
down (``dashboard.readiness``) is CRITICAL; a non-critical alias down, or any alias
slower than ``warn_ms``, is WARNING. UNKNOWN is left for a command that could not check at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

from dashboard.probes import ProbeResult
from dashboard.report import AliasReport, Report


class State(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


def is_slow(result: ProbeResult, warn_ms: float) -> bool:
    return result.ok and result.latency_ms is not None and result.latency_ms > warn_ms


def _says_more(row: AliasReport) -> bool:
    """Whether the held state says more than the last probe (not just "1 failed probe")."""
    return row.readiness is not None and (row.readiness.probes > 1 or row.readiness.pending > 0)


def state_of(found: Report, warn_ms: float) -> State:
    """From the verdicts the aliases are held at, plus any alias slower than ``warn_ms``."""
    verdict = found.summary.verdict
    if verdict == "fail":
        return State.CRITICAL
    if verdict == "warn" or any(is_slow(result, warn_ms) for result in found.results):
        return State.WARNING
    return State.OK


def problems(found: Report, warn_ms: float) -> list[str]:
    """What makes the state worse than OK, critical aliases first; then what the verdict
    is holding against (a failed probe of an alias still held up), and flapping."""
    failing = sorted(
        (row for row in found.rows if row.verdict != "pass"), key=lambda row: not row.is_critical
    )
    listed = [
        f"{row.alias} {row.result.status if not row.result.ok else 'down, last probe up'}"
        + (" (critical)" if row.is_critical else "")
        + (f", {row.held}" if _says_more(row) else "")
        for row in failing
    ]
    listed += [
        f"{row.alias} held up ({row.held})"
        for row in found.rows
        if row.verdict == "pass" and row.readiness is not None and row.readiness.pending
    ]
    listed += [f"{row.alias} {row.flapping_text}" for row in found.rows if row.is_flapping]
    listed += [
        f"{r.alias} slow ({r.latency_ms:.1f} ms > {warn_ms:g} ms)"
        for r in found.results
        if is_slow(r, warn_ms)
    ]
    return listed


def perfdata(results: Sequence[ProbeResult], warn_ms: float, crit_ms: float) -> str:
    """``'alias_ms'=value;warn;crit;0;`` per alias; ``U`` when there is no reading."""
    fields = []
    for result in results:
        value = "U" if result.latency_ms is None else f"{result.latency_ms:.3f}ms"
        label = f"{result.alias}_ms".replace("'", "''")
        fields.append(f"'{label}'={value};{warn_ms:g};{crit_ms:g};0;")
    return " ".join(fields)


def describe(found: Report, warn_ms: float) -> str:
    """``dead down (down for 12 s, 3 failed probes); 2 up, 1 down of 3; slowest ...``"""
    return "; ".join([*problems(found, warn_ms), found.summary.text])


def status_line(found: Report, *, warn_ms: float, timeout: float) -> str:
    """``DBHEALTH WARNING - dead down; ... | 'default_ms'=3.1ms;1000;2000;0; ...``"""
    state = state_of(found, warn_ms)
    text = describe(found, warn_ms)
    return f"DBHEALTH {state.name} - {text} | {perfdata(found.results, warn_ms, timeout * 1000)}"
