"""Probe results as a Nagios plugin answer: a state (the exit status) and one line.

Pure functions of ``ProbeResult`` lists, used by ``manage.py dbhealth``. A critical
alias down is CRITICAL; a non-critical alias down, or any alias slower than
``warn_ms``, is WARNING. UNKNOWN is left for a command that could not check at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import IntEnum

from dashboard.probes import ProbeResult
from dashboard.summary import summarize


class State(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


def is_slow(result: ProbeResult, warn_ms: float) -> bool:
    return result.ok and result.latency_ms is not None and result.latency_ms > warn_ms


def state_of(
    results: Sequence[ProbeResult], critical_aliases: Iterable[str], warn_ms: float
) -> State:
    verdict = summarize(results, critical_aliases).verdict
    if verdict == "fail":
        return State.CRITICAL
    if verdict == "warn" or any(is_slow(result, warn_ms) for result in results):
        return State.WARNING
    return State.OK


def problems(
    results: Sequence[ProbeResult], critical_aliases: Iterable[str], warn_ms: float
) -> list[str]:
    """What makes the state worse than OK, critical aliases first."""
    critical = set(critical_aliases)
    failing = sorted(
        (result for result in results if not result.ok), key=lambda r: r.alias not in critical
    )
    found = [
        f"{r.alias} {r.status}" + (" (critical)" if r.alias in critical else "") for r in failing
    ]
    found += [
        f"{r.alias} slow ({r.latency_ms:.1f} ms > {warn_ms:g} ms)"
        for r in results
        if is_slow(r, warn_ms)
    ]
    return found


def perfdata(results: Sequence[ProbeResult], warn_ms: float, crit_ms: float) -> str:
    """``'alias_ms'=value;warn;crit;0;`` per alias; ``U`` when there is no reading."""
    fields = []
    for result in results:
        value = "U" if result.latency_ms is None else f"{result.latency_ms:.3f}ms"
        label = f"{result.alias}_ms".replace("'", "''")
        fields.append(f"'{label}'={value};{warn_ms:g};{crit_ms:g};0;")
    return " ".join(fields)


def describe(
    results: Sequence[ProbeResult], critical_aliases: Iterable[str], warn_ms: float
) -> str:
    """``dead down; 2 up, 1 down of 3; slowest default (3.1 ms)``"""
    critical = tuple(critical_aliases)
    return "; ".join([*problems(results, critical, warn_ms), summarize(results, critical).text])


def status_line(
    results: Sequence[ProbeResult],
    critical_aliases: Iterable[str],
    *,
    warn_ms: float,
    timeout: float,
) -> str:
    """``DBHEALTH WARNING - dead down; ... | 'default_ms'=3.1ms;1000;2000;0; ...``"""
    critical = tuple(critical_aliases)
    state = state_of(results, critical, warn_ms)
    text = describe(results, critical, warn_ms)
    return f"DBHEALTH {state.name} - {text} | {perfdata(results, warn_ms, timeout * 1000)}"
