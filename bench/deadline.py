"""Row 3: one ``probe_all()`` over 16 aliases, two of them silent listeners, timeout 1 s.

Each round waits (bounded) for the previous round's stragglers to end, so every round
opens fresh connections to the silent servers instead of joining a straggler.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from bench.report import Line
from dashboard.probes import in_flight, probe_all

TARGET_FACTOR = 1.2


def wait_for_stragglers(limit: float = 5.0) -> None:
    """Let the probes still running from a round end (bounded), so the next dials afresh."""
    deadline = time.monotonic() + limit
    for thread in threading.enumerate():
        if thread.name.startswith("dbhealth-probe-"):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
    while in_flight() and time.monotonic() < deadline:
        time.sleep(0.05)


def run(aliases: list[str], silent: list[str], timeout: float, rounds: int = 5) -> list[Line]:
    walls: list[float] = []
    wrong: Counter[str] = Counter()
    for _ in range(rounds):
        wait_for_stragglers()
        started = time.perf_counter()
        results = probe_all(aliases, timeout=timeout)
        walls.append(time.perf_counter() - started)
        for result in results:
            expected = "timeout" if result.alias in silent else "up"
            if result.status != expected:
                wrong[f"{result.alias}:{result.status}"] += 1
    wait_for_stragglers()
    worst = max(walls)
    limit = timeout * TARGET_FACTOR
    statuses = "all as expected" if not wrong else "unexpected: " + ", ".join(sorted(wrong))
    return [
        Line(
            row="3",
            benchmark=(
                f"deadline under faults: `probe_all()` of {len(aliases)} aliases, "
                f"{len(silent)} silent, timeout {timeout:g} s"
            ),
            dbhealth=f"{worst:.3f} s worst of {rounds}",
            reference=f"median {sorted(walls)[len(walls) // 2]:.3f} s",
            result=f"{worst / timeout:.2f}× the timeout; statuses {statuses}",
            target=f"≤ {limit:.1f} s",
            holds=worst <= limit and not wrong,
            data={"walls_s": walls, "unexpected": dict(wrong)},
        )
    ]
