"""One answer about the aliases, built once per request and rendered by every presenter.

``build()`` spends one ``Deadline`` (made by the view or the command) on everything the
answer needs: the probe results (cached or fresh, single flight), migrations drift
(riding on the probes' own connections where a probe is made), server vitals, and the
latency history. The HTML page, health+json, the Nagios line and the metrics all read
the same ``Report``; they are pure functions of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dashboard import drift, history, pools, results, vitals
from dashboard.conf import get_settings
from dashboard.deadline import Deadline
from dashboard.drift import Drift
from dashboard.history import Window
from dashboard.pools import PoolView
from dashboard.probes import Extra, ProbeResult
from dashboard.summary import Summary, Verdict, alias_verdict, summarize
from dashboard.vitals import Vitals


@dataclass(frozen=True)
class AliasReport:
    """Everything one answer says about one alias."""

    result: ProbeResult
    verdict: Verdict
    is_critical: bool
    history: Window | None = None
    drift: Drift | None = None
    vitals: Vitals | None = None
    # The application's own pool, combined across workers (None: no pool published).
    pool: PoolView | None = None

    @property
    def alias(self) -> str:
        return self.result.alias


@dataclass(frozen=True)
class Report:
    rows: tuple[AliasReport, ...]
    summary: Summary
    critical_aliases: tuple[str, ...]

    @property
    def results(self) -> list[ProbeResult]:
        return [row.result for row in self.rows]

    def row(self, alias: str) -> AliasReport:
        for row in self.rows:
            if row.alias == alias:
                return row
        raise KeyError(alias)

    @property
    def drifts(self) -> dict[str, Drift]:
        return {row.alias: row.drift for row in self.rows if row.drift is not None}


def from_results(
    found: Iterable[ProbeResult],
    *,
    drifts: Mapping[str, Drift] | None = None,
    windows: Mapping[str, Window] | None = None,
    vitals_read: Mapping[str, Vitals] | None = None,
    pools_seen: Mapping[str, PoolView] | None = None,
    critical_aliases: Iterable[str] | None = None,
) -> Report:
    """A report of literal results (what ``build`` ends with; tests build them directly)."""
    listed = list(found)
    critical = tuple(
        get_settings().critical_aliases if critical_aliases is None else critical_aliases
    )
    rows = tuple(
        AliasReport(
            result=result,
            verdict=with_pool(
                alias_verdict(result, critical), (pools_seen or {}).get(result.alias)
            ),
            is_critical=result.alias in critical,
            history=(windows or {}).get(result.alias),
            drift=(drifts or {}).get(result.alias),
            vitals=(vitals_read or {}).get(result.alias),
            pool=(pools_seen or {}).get(result.alias),
        )
        for result in listed
    )
    summary = summarize(listed, critical)
    if summary.verdict == "pass" and any(row.verdict == "warn" for row in rows):
        summary = replace(summary, verdict="warn")
    return Report(rows=rows, summary=summary, critical_aliases=critical)


def with_pool(verdict: Verdict, pool: PoolView | None) -> Verdict:
    """A starved or inherited pool is a warning; it never fails an alias on its own."""
    return "warn" if verdict == "pass" and pool is not None and pool.warns else verdict


def build(
    wanted: Iterable[str] | None = None,
    *,
    deadline: Deadline,
    fresh: bool = False,
    with_drift: bool = False,
    with_history: bool = False,
    vitals_for: Iterable[str] = (),
) -> Report:
    """Probe (or read cached) results and what else the answer needs, all by ``deadline``."""
    vitals_wanted = set(vitals_for)
    extras: dict[str, Extra] = {}
    if with_drift:
        extras["drift"] = drift.extra
    if vitals_wanted:
        extras["vitals"] = vitals.extra
    gathered = results.gather(wanted, deadline, cached=not fresh, extras=extras)
    found = gathered.results
    riding: dict[str, dict[str, Any]] = gathered.extras
    drifts: dict[str, Drift] | None = None
    if with_drift:
        drifts = drift.for_results(
            found,
            deadline=deadline,
            cached=not fresh,
            riding={alias: futures.get("drift") for alias, futures in riding.items()},
        )
    vitals_read = _vitals(found, vitals_wanted, riding, deadline)
    windows = history.windows([r.alias for r in found], current=found) if with_history else None
    return from_results(
        found,
        drifts=drifts,
        windows=windows,
        vitals_read=vitals_read,
        pools_seen=pools.combined(r.alias for r in found),
    )


def _vitals(
    found: list[ProbeResult],
    wanted: set[str],
    riding: Mapping[str, Mapping[str, Any]],
    deadline: Deadline,
) -> dict[str, Vitals]:
    """Vitals of the wanted aliases that are up: all started at once, collected by the
    deadline (from the probe's connection where they rode on it)."""
    futures: dict[str, Any] = {}
    read: dict[str, Vitals] = {}
    for result in found:
        if result.alias not in wanted:
            continue
        if not result.ok:
            state = "did not answer" if result.status == "timeout" else "is down"
            read[result.alias] = Vitals(result.alias, error=f"not read: the alias {state}")
            continue
        future = riding.get(result.alias, {}).get("vitals")
        futures[result.alias] = future or vitals.start(result.alias, deadline)
    for alias, future in futures.items():
        read[alias] = vitals.collect(alias, future, deadline)
    return read
