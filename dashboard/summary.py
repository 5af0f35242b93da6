"""Turn probe results into one verdict: pass, warn or fail, and a line for humans.

Pure functions of ``ProbeResult`` lists (and the state each alias is held at, see
``dashboard.readiness``), shared by the admin page, /health/ and the
``dbhealth`` command so every interface gives the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from dashboard.probes import ProbeResult

Verdict = Literal["pass", "warn", "fail"]


def alias_verdict(
    result: ProbeResult, critical_aliases: Iterable[str], *, passing: bool | None = None
) -> Verdict:
    """``passing`` is the state the alias is held at (``dashboard.readiness``); without
    one, the probe decides."""
    if result.ok if passing is None else passing:
        return "pass"
    return "fail" if result.alias in set(critical_aliases) else "warn"


@dataclass(frozen=True)
class Summary:
    total: int
    up: int
    down: int
    timeout: int
    verdict: Verdict
    slowest: ProbeResult | None

    @property
    def text(self) -> str:
        parts = [f"{self.up} up"]
        if self.down:
            parts.append(f"{self.down} down")
        if self.timeout:
            parts.append(f"{self.timeout} timed out")
        line = f"{', '.join(parts)} of {self.total}"
        if self.slowest is not None and self.slowest.latency_ms is not None:
            line += f"; slowest {self.slowest.alias} ({self.slowest.latency_ms:.1f} ms)"
        return line


def summarize(
    results: Sequence[ProbeResult],
    critical_aliases: Iterable[str],
    held: Mapping[str, Verdict] | None = None,
) -> Summary:
    """``held``: the verdict each alias is held at, where it differs from its last probe."""
    critical = set(critical_aliases)
    verdicts = {
        (held or {}).get(result.alias) or alias_verdict(result, critical) for result in results
    }
    verdict: Verdict = "fail" if "fail" in verdicts else "warn" if "warn" in verdicts else "pass"
    up = [result for result in results if result.ok]
    return Summary(
        total=len(results),
        up=len(up),
        down=sum(result.status == "down" for result in results),
        timeout=sum(result.status == "timeout" for result in results),
        verdict=verdict,
        slowest=max(up, key=lambda result: result.latency_ms or 0.0, default=None),
    )
