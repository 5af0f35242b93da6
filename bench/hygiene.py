"""Row 6: server sessions (and this process's sockets) before and after 1,000 rounds.

The rounds include an alias whose port refuses connections, so the failure path
(a connect that raises) is exercised as often as the happy path.
"""

from __future__ import annotations

import time

from bench.report import Line
from bench.servers import SessionCounter, open_descriptors
from dashboard.probes import probe_all


def _settled(count: SessionCounter, before: tuple[int, int], limit: float = 3.0) -> tuple[int, int]:
    """Session counts, re-read for a bounded time while a closed backend is still exiting."""
    deadline = time.monotonic() + limit
    while True:
        now = (count.postgres(), count.mysql())
        if now == before or time.monotonic() >= deadline:
            return now
        time.sleep(0.1)


def run(
    aliases: list[str], count: SessionCounter, timeout: float, rounds: int = 1000
) -> list[Line]:
    probe_all(aliases, timeout=timeout)
    before = (count.postgres(), count.mysql())
    descriptors_before = open_descriptors()
    failures = 0
    started = time.perf_counter()
    for _ in range(rounds):
        results = probe_all(aliases, timeout=timeout)
        failures += sum(1 for r in results if r.status == "timeout")
    elapsed = time.perf_counter() - started
    after = _settled(count, before)
    descriptors_after = open_descriptors()
    holds = after == before and descriptors_after == descriptors_before and failures == 0
    return [
        Line(
            row="6",
            benchmark=(
                f"hygiene: sessions before/after {rounds:,} `probe_all()` rounds "
                f"({', '.join(aliases)})"
            ),
            dbhealth=f"PostgreSQL {before[0]} → {after[0]}, MariaDB {before[1]} → {after[1]}",
            reference=f"process fds {descriptors_before} → {descriptors_after}",
            result=f"{elapsed / rounds * 1000:.2f} ms per round",
            target="equal",
            holds=holds,
            data={
                "before": before,
                "after": after,
                "fds_before": descriptors_before,
                "fds_after": descriptors_after,
                "timeouts": failures,
                "seconds": round(elapsed, 1),
            },
        )
    ]
