"""The benchmark's output: one markdown table for people, one JSON file for machines."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent.parent / "bench-results"


@dataclass
class Line:
    """One line of the table: a measurement, what it is compared with, and its target."""

    row: str
    benchmark: str
    dbhealth: str
    reference: str
    result: str
    target: str
    holds: bool | None  # None: not measured (say why in ``result``)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return {True: "yes", False: "**no**", None: "n/a"}[self.holds]


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def ms(value: float) -> str:
    """Milliseconds with three significant digits, readable from 0.01 ms to seconds."""
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    if value >= 1:
        return f"{value:.2f} ms"
    return f"{value:.3f} ms"


def machine() -> dict[str, Any]:
    model = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for text in cpuinfo:
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(memory_gib, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def markdown(lines: list[Line]) -> str:
    header = "| # | benchmark | dbhealth | reference | result | target | holds |"
    rule = "|---|---|---|---|---|---|---|"
    body = [
        f"| {x.row} | {x.benchmark} | {x.dbhealth} | {x.reference} | {x.result} | {x.target} "
        f"| {x.verdict} |"
        for x in lines
    ]
    return "\n".join([header, rule, *body])


def write_json(lines: list[Line], notes: list[str], started: datetime) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"bench-{started.strftime('%Y%m%d-%H%M%S')}.json"
    document = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "lines": [asdict(line) | {"holds": line.holds} for line in lines],
        "notes": notes,
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", encoding="utf-8")
    return path
