"""Where the interfaces get probe results from.

``latest()`` is what pages and endpoints show; ``fresh()`` always probes (the
"Ping now" button and the ``dbhealth`` command).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connections

from dashboard.probes import ProbeResult, probe_all


def aliases() -> list[str]:
    """Every configured alias, in settings order."""
    return list(connections.settings)


def latest(aliases: Iterable[str] | None = None) -> list[ProbeResult]:
    return probe_all(aliases)


def fresh(
    aliases: Iterable[str] | None = None, *, timeout: float | None = None
) -> list[ProbeResult]:
    return probe_all(aliases, timeout=timeout)
