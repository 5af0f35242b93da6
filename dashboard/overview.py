"""The db-health page's model for 3 aliases or 300: summary first, grouped by server, filtered.

A pure function of a ``Report`` and the page's filter (from the query string, so an
on-call link can point at "down aliases on db-eu-2"): counts by condition, the aliases
that need attention before the healthy ones, and the aliases grouped by server (vendor +
host + port; each SQLite file its own). A healthy group of many aliases collapses to one
line with a count, so 200 tenants on one server cost one row to render and to poll.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from dashboard import vendors
from dashboard.history import Window
from dashboard.report import AliasReport, Report

# The conditions an alias can be in, in the order the summary names them.
CONDITIONS = ("down", "timeout", "read-only", "behind", "slow", "up")
# A healthy group of at least this many aliases shows as one line with a count.
COLLAPSE_AT = 5
# On a page with more aliases than this, every healthy group is one line, and the healthy
# single-alias groups of a vendor (SQLite files, say) share one line.
BIG_PAGE = 20


def conditions(row: AliasReport, warn_ms: float) -> tuple[str, ...]:
    """What an operator would say about this alias: ``("up", "slow")``, ``("down",)``..."""
    result = row.result
    found: list[str] = [result.status]
    if result.ok and result.latency_ms is not None and result.latency_ms > warn_ms:
        found.append("slow")
    if result.read_only:
        found.append("read-only")
    if row.drift is not None and row.drift.state == "behind":
        found.append("behind")
    return tuple(found)


def needs_attention(row: AliasReport, warn_ms: float) -> bool:
    return conditions(row, warn_ms) != ("up",)


@dataclass(frozen=True)
class Filter:
    """What the page shows: every field empty means everything."""

    condition: str = ""
    vendor: str = ""
    server: str = ""
    critical: bool = False
    search: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filter:
        condition = str(query.get("status", "")).strip().lower()
        return cls(
            condition=condition if condition in CONDITIONS else "",
            vendor=str(query.get("vendor", "")).strip().lower()[:40],
            server=str(query.get("server", "")).strip()[:300],
            critical=str(query.get("critical", "")) in ("1", "on", "true"),
            search=str(query.get("q", "")).strip()[:100],
        )

    @property
    def active(self) -> bool:
        return bool(self.condition or self.vendor or self.server or self.critical or self.search)

    def query_string(self, **changes: str) -> str:
        values = {
            "status": self.condition,
            "vendor": self.vendor,
            "server": self.server,
            "critical": "1" if self.critical else "",
            "q": self.search,
            **changes,
        }
        return urlencode({key: value for key, value in values.items() if value})

    def matches(self, row: AliasReport, server: str, warn_ms: float) -> bool:
        if self.condition and self.condition not in conditions(row, warn_ms):
            return False
        if self.vendor and row.result.vendor != self.vendor:
            return False
        if self.server and server != self.server:
            return False
        if self.critical and not row.is_critical:
            return False
        return not self.search or self.search.lower() in row.alias.lower()


@dataclass(frozen=True)
class ServerGroup:
    server: str
    vendor: str
    location: str
    rows: tuple[AliasReport, ...]
    # Counts by condition of the rows shown.
    counts: Mapping[str, int] = field(default_factory=dict)
    collapsed: bool = False

    @property
    def healthy(self) -> bool:
        return not any(self.counts.get(c) for c in CONDITIONS if c != "up")

    @property
    def versions(self) -> list[str]:
        return sorted({r.result.server_version for r in self.rows if r.result.server_version})


@dataclass(frozen=True)
class Overview:
    counts: Mapping[str, int]
    total: int
    attention: tuple[AliasReport, ...]
    groups: tuple[ServerGroup, ...]
    vendors: tuple[str, ...]
    servers: tuple[tuple[str, str], ...]  # (server key, where) for the filter's select
    server_count: int
    filter: Filter
    shown: int

    @property
    def summary_parts(self) -> list[tuple[str, int]]:
        return [(c, self.counts[c]) for c in CONDITIONS if self.counts.get(c)]

    @property
    def summary_links(self) -> list[tuple[str, int, str]]:
        """(condition, count, the query string that filters to it) for the summary line."""
        return [(c, n, self.filter.query_string(status=c)) for c, n in self.summary_parts]


def server_of(row: AliasReport) -> str:
    return row.result.server


def build(
    found: Report,
    page_filter: Filter,
    *,
    warn_ms: float,
    windows: Callable[[list[str]], Mapping[str, Window]] | None = None,
) -> Overview:
    """The page for ``found``; ``windows`` reads the latency history of the aliases that
    are shown in full (a collapsed group's history is never read)."""
    counts: Counter[str] = Counter()
    for row in found.rows:
        counts.update(conditions(row, warn_ms))
    shown = [row for row in found.rows if page_filter.matches(row, server_of(row), warn_ms)]
    by_server: dict[str, list[AliasReport]] = {}
    for row in shown:
        by_server.setdefault(server_of(row), []).append(row)
    big = len(found.rows) > BIG_PAGE
    groups = tuple(
        _group(server, rows, page_filter, warn_ms, big=big) for server, rows in by_server.items()
    )
    if big and not page_filter.active:
        groups = _merged_singles(groups)
    # Groups with trouble first; within them, settings order.
    groups = tuple(sorted(groups, key=lambda group: group.healthy))
    if windows is not None:
        groups = _with_history(groups, windows)
    attention = tuple(row for row in shown if needs_attention(row, warn_ms))
    # SQLite files are no servers to pick from: each holds one alias.
    every_server = {
        server_of(row): row.result.location for row in found.rows if not row.result.is_file
    }
    return Overview(
        counts=dict(counts),
        total=len(found.rows),
        attention=attention,
        groups=groups,
        vendors=tuple(sorted({row.result.vendor for row in found.rows})),
        servers=tuple(sorted(every_server.items(), key=lambda item: item[1])),
        server_count=len({server_of(row) for row in found.rows}),
        filter=page_filter,
        shown=len(shown),
    )


def _group(
    server: str, rows: Iterable[AliasReport], page_filter: Filter, warn_ms: float, *, big: bool
) -> ServerGroup:
    listed = tuple(rows)
    counts: Counter[str] = Counter()
    for row in listed:
        counts.update(conditions(row, warn_ms))
    first = listed[0].result
    group = ServerGroup(
        server=server,
        vendor=first.vendor,
        location=first.location,
        rows=listed,
        counts=dict(counts),
    )
    # Asked for by name (a server filter, a search): shown in full, however healthy.
    collapse = group.healthy and (big or len(listed) >= COLLAPSE_AT) and not page_filter.active
    if collapse:
        return ServerGroup(
            server=server,
            vendor=first.vendor,
            location=first.location,
            rows=(),
            counts=dict(counts),
            collapsed=True,
        )
    return group


def _with_history(
    groups: tuple[ServerGroup, ...], windows: Callable[[list[str]], Mapping[str, Window]]
) -> tuple[ServerGroup, ...]:
    read = windows([row.alias for group in groups for row in group.rows])
    return tuple(
        dataclasses.replace(
            group,
            rows=tuple(dataclasses.replace(row, history=read.get(row.alias)) for row in group.rows),
        )
        for group in groups
    )


def _merged_singles(groups: tuple[ServerGroup, ...]) -> tuple[ServerGroup, ...]:
    """Collapsed one-alias groups of a vendor as one line: 250 SQLite files, all up."""
    singles: dict[str, list[ServerGroup]] = {}
    kept: list[ServerGroup] = []
    for group in groups:
        if group.collapsed and group.counts == {"up": 1}:
            singles.setdefault(group.vendor, []).append(group)
        else:
            kept.append(group)
    for vendor, alike in singles.items():
        if len(alike) == 1:
            kept.append(alike[0])
            continue
        noun = "files" if vendors.is_file(vendor) else "servers"
        kept.append(
            ServerGroup(
                server="",
                vendor=vendor,
                location=f"{len(alike)} {noun} with one alias each",
                rows=(),
                counts={"up": len(alike)},
                collapsed=True,
            )
        )
    return tuple(kept)
