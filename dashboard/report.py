"""One answer about the aliases, built once per request and rendered by every presenter.

``build()`` spends one ``Deadline`` (made by the view or the command) on everything the
answer needs: the probe results (cached or fresh, single flight), migrations drift
(riding on the probes' own connections where a probe is made), server vitals, activity,
maintenance dangers, the latency history, and the verdict each alias is held at
(``dashboard.readiness``: only FALL failed or RISE good probes in a row change it); an
alias it shows turning down or slow leaves an incident snapshot (``dashboard.incidents``),
from the same deadline. The HTML page, health+json, the Nagios line and the metrics all
read the same ``Report``; they are pure functions of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from dashboard import (
    activity,
    drift,
    history,
    incidents,
    maintenance,
    persistent,
    pools,
    readiness,
    results,
    vitals,
)
from dashboard.activity import Activity
from dashboard.conf import get_settings
from dashboard.deadline import Deadline
from dashboard.drift import Drift
from dashboard.history import Window
from dashboard.incidents import Snapshot
from dashboard.maintenance import Maintenance
from dashboard.persistent import PersistentView
from dashboard.pools import PoolView
from dashboard.probes import Extra, ProbeResult
from dashboard.readiness import Readiness
from dashboard.summary import Summary, Verdict, alias_verdict, summarize
from dashboard.vitals import Vitals


@dataclass(frozen=True)
class AliasReport:
    """Everything one answer says about one alias."""

    result: ProbeResult
    # The verdict the alias is held at; ``probe_verdict`` is what its last probe alone says.
    verdict: Verdict
    is_critical: bool
    history: Window | None = None
    drift: Drift | None = None
    vitals: Vitals | None = None
    readiness: Readiness | None = None
    probe_verdict: Verdict = "pass"
    is_flapping: bool = False
    activity: Activity | None = None
    maintenance: Maintenance | None = None
    # The application's own pool, combined across workers (None: no pool published).
    pool: PoolView | None = None
    # Its persistent connections (CONN_MAX_AGE), combined across workers' threads.
    persistent: PersistentView | None = None
    # What its server was doing when the alias last turned down or slow, newest first.
    incidents: tuple[Snapshot, ...] = ()

    @property
    def alias(self) -> str:
        return self.result.alias

    @property
    def held(self) -> str:
        """``down for 3 min 12 s, 41 failed probes; last probe good, 1 of 2 before it
        turns up``; empty before the first probe is recorded."""
        if self.readiness is None:
            return ""
        config = get_settings()
        holding = self.readiness.holding(fall=config.fall, rise=config.rise)
        return "; ".join(part for part in (self.readiness.describe(), holding) if part)

    @property
    def flapping_text(self) -> str:
        """``flapping: 4 changes in 10 min``; empty when the alias is steady."""
        if not self.is_flapping or self.readiness is None:
            return ""
        window = get_settings().flap_window
        changes = self.readiness.changes_within(window)
        return f"flapping: {changes} changes in {readiness.duration(window)}"


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
    def maintenances(self) -> list[Maintenance]:
        return [row.maintenance for row in self.rows if row.maintenance is not None]

    @property
    def drifts(self) -> dict[str, Drift]:
        return {row.alias: row.drift for row in self.rows if row.drift is not None}


def from_results(
    found: Iterable[ProbeResult],
    *,
    drifts: Mapping[str, Drift] | None = None,
    windows: Mapping[str, Window] | None = None,
    vitals_read: Mapping[str, Vitals] | None = None,
    activity_read: Mapping[str, Activity] | None = None,
    maintenance_read: Mapping[str, Maintenance] | None = None,
    pools_seen: Mapping[str, PoolView] | None = None,
    persistent_seen: Mapping[str, PersistentView] | None = None,
    critical_aliases: Iterable[str] | None = None,
    held: Mapping[str, Readiness] | None = None,
    snapshots: Mapping[str, tuple[Snapshot, ...]] | None = None,
) -> Report:
    """A report of literal results (what ``build`` ends with; tests build them directly).

    ``held``: the readiness of the aliases; an alias without one is judged by its probe."""
    listed = list(found)
    config = get_settings()
    critical = tuple(config.critical_aliases if critical_aliases is None else critical_aliases)
    rows = []
    for result in listed:
        pool = (pools_seen or {}).get(result.alias)
        if pool is not None:
            pool = replace(pool, fresh_up=result.ok)
        state = (held or {}).get(result.alias)
        passing = None if state is None else state.passing
        flapping = state is not None and state.is_flapping(config.flap_changes, config.flap_window)
        rows.append(
            AliasReport(
                result=result,
                verdict=with_pool(
                    alias_verdict(result, critical, passing=passing),
                    pool,
                    (persistent_seen or {}).get(result.alias),
                ),
                is_critical=result.alias in critical,
                history=(windows or {}).get(result.alias),
                drift=(drifts or {}).get(result.alias),
                vitals=(vitals_read or {}).get(result.alias),
                readiness=state,
                probe_verdict=alias_verdict(result, critical),
                is_flapping=flapping,
                activity=(activity_read or {}).get(result.alias),
                maintenance=(maintenance_read or {}).get(result.alias),
                pool=pool,
                persistent=(persistent_seen or {}).get(result.alias),
                incidents=(snapshots or {}).get(result.alias, ()),
            )
        )
    verdicts = {row.alias: row.verdict for row in rows}
    return Report(
        rows=tuple(rows), summary=summarize(listed, critical, verdicts), critical_aliases=critical
    )


def with_pool(
    verdict: Verdict, pool: PoolView | None, kept: PersistentView | None = None
) -> Verdict:
    """A starved, slow or inherited pool, one a borrow got nothing usable from, or
    connections kept without health checks are a warning; never a failure on their own."""
    warns = (pool is not None and pool.warns) or (kept is not None and kept.warns)
    return "warn" if verdict == "pass" and warns else verdict


def build(
    wanted: Iterable[str] | None = None,
    *,
    deadline: Deadline,
    fresh: bool = False,
    with_drift: bool = False,
    with_history: bool = False,
    vitals_for: Iterable[str] = (),
    activity_for: Iterable[str] = (),
    maintenance_for: Iterable[str] = (),
    incidents_for: Iterable[str] = (),
) -> Report:
    """Probe (or read cached) results and what else the answer needs, all by ``deadline``.

    Whichever answer first shows an alias turning down or slow keeps a snapshot of its
    server's activity (``dashboard.incidents``); ``incidents_for`` are shown with theirs."""
    wanted = None if wanted is None else list(wanted)  # read by the borrows and the probes
    vitals_wanted = set(vitals_for)
    extras: dict[str, Extra] = {}
    if with_drift:
        extras["drift"] = drift.extra
    if vitals_wanted:
        extras["vitals"] = vitals.extra
    activity_wanted = set(activity_for)
    if activity_wanted:
        extras["activity"] = activity.extra
    maintenance_wanted = set(maintenance_for)
    if maintenance_wanted:
        extras["maintenance"] = maintenance.extra
    # Borrows from this worker's own pools run beside the fresh probes, by the same deadline.
    borrowing = pools.start_paths(wanted, deadline, fresh=fresh)
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
    vitals_read = _ridden("vitals", Vitals, vitals, found, vitals_wanted, riding, deadline)
    activity_read = _ridden(
        "activity", Activity, activity, found, activity_wanted, riding, deadline
    )
    maintenance_read = _ridden(
        "maintenance", Maintenance, maintenance, found, maintenance_wanted, riding, deadline
    )
    windows = history.windows([r.alias for r in found], current=found) if with_history else None
    # Outcomes of the probes made here are stored before the answer leaves (bounded by the
    # deadline), so the next answer, from any worker, counts them.
    readiness.flush(deadline.remaining())
    held = readiness.states([r.alias for r in found], current=found)
    incidents.take(found, held, deadline=deadline, already_read=activity_read)
    activity.remember(activity_read.values())
    wanted_incidents = set(incidents_for)
    snapshots = incidents.recent(r.alias for r in found if r.alias in wanted_incidents)
    return from_results(
        found,
        drifts=drifts,
        windows=windows,
        vitals_read=vitals_read,
        activity_read=activity_read,
        maintenance_read=maintenance_read,
        held=held,
        pools_seen=pools.combined(
            [r.alias for r in found], own_paths=pools.collect_paths(borrowing, deadline)
        ),
        persistent_seen=persistent.combined(r.alias for r in found),
        snapshots=snapshots,
    )


Read = TypeVar("Read", Vitals, Activity, Maintenance)


def _ridden(
    name: str,
    kind: type[Read],
    module: Any,
    found: list[ProbeResult],
    wanted: set[str],
    riding: Mapping[str, Mapping[str, Any]],
    deadline: Deadline,
) -> dict[str, Read]:
    """What ``module.extra`` read for the wanted aliases that are up: all started at once,
    collected by the deadline (from the probe's connection where they rode on it)."""
    futures: dict[str, Any] = {}
    read: dict[str, Read] = {}
    for result in found:
        if result.alias not in wanted:
            continue
        if not result.ok:
            state = "did not answer" if result.status == "timeout" else "is down"
            read[result.alias] = kind(result.alias, error=f"not read: the alias {state}")
            continue
        future = riding.get(result.alias, {}).get(name)
        futures[result.alias] = future or module.start(result.alias, deadline)
    for alias, future in futures.items():
        read[alias] = module.collect(alias, future, deadline)
    return read
