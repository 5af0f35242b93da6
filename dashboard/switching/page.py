"""What the alias banner and switcher show on one admin page.

Built from the last known probe results (``results.last_known``), so a page never
waits for a probe of an alias it only names in the switcher: each option says how its
alias was when last checked, and how long ago. Only the alias the page shows waits,
bounded by the probe timeout, and only when nothing at all is known about it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import DatabaseError, connections
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.text import capfirst

from dashboard import results, vendors
from dashboard.aliases import ALIAS_VAR, table_exists, table_known
from dashboard.probes import ProbeResult
from dashboard.switching.readonly import read_only_reason, refusals

_STATES = {"up": "up", "down": "down", "timeout": "did not answer", "unknown": "not checked yet"}


def age_words(seconds: float) -> str:
    if seconds < 90:
        return f"{max(0, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"


@dataclass(frozen=True)
class AliasOption:
    """One alias as last checked: ``status`` is the probe's, or ``unknown`` if never probed."""

    alias: str
    vendor: str
    status: str
    location: str
    name: str
    age_seconds: float | None = None
    read_only: str | None = None  # why writes are refused; None: nothing says they are

    @classmethod
    def of(
        cls, alias: str, result: ProbeResult | None, refusal: str | None, now: datetime
    ) -> AliasOption:
        if result is None:
            return cls(alias, connections[alias].vendor, "unknown", "", "")
        return cls(
            alias,
            result.vendor,
            result.status,
            result.location,
            result.name,
            age_seconds=(now - result.checked_at).total_seconds(),
            read_only=read_only_reason(result, refusal),
        )

    @property
    def is_file(self) -> bool:
        return vendors.is_file(self.vendor)

    @property
    def state(self) -> str:
        """The status in words: ``up``, ``read-only``, ``down``, ``did not answer``, ..."""
        if self.status == "up" and self.read_only:
            return "read-only"
        return _STATES.get(self.status, self.status)

    @property
    def checked(self) -> str:
        return "" if self.age_seconds is None else f"checked {age_words(self.age_seconds)} ago"

    @property
    def label(self) -> str:
        """``second_db — mysql, up, checked 12 s ago``: the switcher's option text."""
        return ", ".join(
            part for part in (f"{self.alias} — {self.vendor}", self.state, self.checked) if part
        )


@dataclass(frozen=True)
class AliasPage:
    """What the banner and the switcher show on one admin page."""

    current: AliasOption
    options: tuple[AliasOption, ...]
    pinned: bool
    is_popup: bool
    changelist_url: str
    verbose_name_plural: str
    problem: str | SafeString | None = None
    param: str = ALIAS_VAR

    @property
    def alias(self) -> str:
        return self.current.alias

    @property
    def switchable(self) -> bool:
        return len(self.options) > 1 and not self.is_popup


def unavailable_text(result: ProbeResult, *, details: bool) -> str:
    """``Database shop is down: <the probe's error>``; the error only for users who may see
    details (an error names hosts, ports and users), the others are told where it is."""
    state = "did not answer" if result.status == "timeout" else "is down"
    if details:
        return f"Database {result.alias} {state}: {result.error or result.status}"
    return f"Database {result.alias} {state} (the error is shown to users who may see details)."


def problem_of(result: ProbeResult, opts: Any, *, details: bool) -> str | SafeString | None:
    """Why nothing can be shown from this alias, or None."""
    alias = result.alias
    if not result.ok:
        return unavailable_text(result, details=details)
    try:
        migrated = table_exists(alias, opts.db_table)
    except DatabaseError as error:
        return f"Database {alias} could not be inspected ({type(error).__name__})."
    if not migrated:
        return format_html(
            "{} is not migrated on {} (run <code>manage.py migrate --database={}</code>)",
            capfirst(opts.verbose_name),
            alias,
            alias,
        )
    return None


def _may_list(option: AliasOption, table: str) -> bool:
    """Offer every alias except one known to lack the table (a down one says why)."""
    return option.status != "up" or table_known(option.alias, table) is not False


def build(
    alias: str,
    allowed: list[str],
    opts: Any,
    *,
    listing: bool,
    pinned: bool,
    is_popup: bool,
    changelist_url: str,
    details: bool,
) -> AliasPage:
    shown = allowed if listing else [alias]
    # The shown alias first and on its own: a background refresh of the others (one
    # round, as slow as the slowest) must not be what its first probe waits for.
    current = results.last_known([alias])[alias]
    if current is None:
        current = results.latest([alias])[0]
    others = [other for other in shown if other != alias]
    known = {**results.last_known(others), alias: current}
    refused = refusals(shown)
    now = datetime.now(UTC)
    options = {
        other: AliasOption.of(other, known[other], refused.get(other), now) for other in shown
    }
    return AliasPage(
        current=options[alias],
        options=tuple(
            option
            for other, option in options.items()
            if other == alias or _may_list(option, opts.db_table)
        ),
        pinned=pinned,
        is_popup=is_popup,
        changelist_url=changelist_url,
        verbose_name_plural=str(opts.verbose_name_plural),
        problem=problem_of(current, opts, details=details),
    )
