"""Resource hygiene: thousands of probe rounds leave nothing behind.

Every round opens and closes a connection per alias in a thread of its own, so a
leaked socket, thread, server session or cached object would pile up here.
"""

from __future__ import annotations

import gc
import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from dashboard.probes import probe_all
from tests.conftest import mysql_sessions, postgres_sessions, sessions_settled_to

ALIASES = ["default", "second_db", "local"]  # PostgreSQL, MariaDB, SQLite
ROUNDS = 5_000
# Thread stacks, driver and allocator pools settle in the first rounds; measure after them.
WARM_UP = 200
MAX_RSS_GROWTH_KIB = 10 * 1024
FIGURES = Path(__file__).resolve().parent.parent / "test-artifacts" / "resources.json"


@dataclass(frozen=True)
class Footprint:
    postgres_sessions: int
    mysql_sessions: int
    threads: int
    open_fds: int
    rss_kib: int


def footprint() -> Footprint:
    for thread in threading.enumerate():
        if thread.name.startswith("dbhealth-probe-"):
            thread.join(timeout=10)  # a finished round's thread may still be unwinding
    gc.collect()
    status = Path("/proc/self/status").read_text()
    (rss_line,) = [line for line in status.splitlines() if line.startswith("VmRSS:")]
    return Footprint(
        postgres_sessions=postgres_sessions(),
        mysql_sessions=mysql_sessions(),
        threads=threading.active_count(),
        open_fds=len(os.listdir("/proc/self/fd")),
        rss_kib=int(rss_line.split()[1]),
    )


def test_5000_probe_rounds_leave_sessions_threads_descriptors_and_memory_as_they_were(
    no_stragglers: None,
) -> None:
    for _ in range(WARM_UP):
        probe_all(ALIASES)
    before = footprint()

    failed = [result for _ in range(ROUNDS) for result in probe_all(ALIASES) if not result.ok]

    after = footprint()
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(
        json.dumps({"rounds": ROUNDS, "before": asdict(before), "after": asdict(after)}, indent=2)
    )
    assert failed == []
    sessions = (before.postgres_sessions, before.mysql_sessions)
    assert sessions_settled_to(sessions) == sessions
    assert after.threads == before.threads
    assert after.open_fds == before.open_fds
    assert after.rss_kib - before.rss_kib < MAX_RSS_GROWTH_KIB, (before, after)
