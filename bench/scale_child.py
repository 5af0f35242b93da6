"""Subprocess side of row 7: each measurement in a fresh process, one JSON line out.

``python -m bench.scale_child probe ROUNDS TIMEOUT``: Django set up with the tenant
site (``bench.site_settings``), then ``probe_all()`` over every alias, ROUNDS times.

``python -m bench.scale_child raw ROUNDS TIMEOUT THREADS``: the floor. The raw drivers
in a pool of THREADS threads make the same connections (the kwargs a probe uses), run
the same ping statement and close, ROUNDS times.

``python -m bench.scale_child watch PG_PORT MARIADB_PORT USER INTERVAL``: the site's own
workers, as seen by the servers. Every INTERVAL seconds a connection to each server
(straight, not through the delaying proxy) runs ``SELECT 1`` and closes; every failure
is counted. Each line on stdin names the phase the counts go to from then on; ``stop``
(or the end of stdin) ends it. No Django here.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# A watcher gives up on itself after this long, should its parent never say stop.
WATCH_LIMIT_SECONDS = 600.0
ERRORS_KEPT = 5


def _setup_django() -> None:
    import django

    django.setup()


def probe_rounds(rounds: int, timeout: float) -> dict[str, Any]:
    _setup_django()
    from bench.deadline import wait_for_stragglers
    from dashboard.probes import probe_all

    measured = []
    for _ in range(rounds):
        wait_for_stragglers()
        started = time.perf_counter()
        results = probe_all(timeout=timeout)
        wall = time.perf_counter() - started
        errors = Counter(f"{r.status}: {r.error}" for r in results if r.status != "up")
        measured.append(
            {
                "wall_s": wall,
                "aliases": len(results),
                "statuses": dict(Counter(r.status for r in results)),
                "errors": dict(errors.most_common(ERRORS_KEPT)),
            }
        )
    wait_for_stragglers()
    return {"rounds": measured}


def raw_rounds(rounds: int, timeout: float, threads: int) -> dict[str, Any]:
    _setup_django()
    from django.db import connections

    from bench.overhead import probe_params, raw_connect
    from dashboard.vendors import VENDORS

    plans = []
    for alias in connections.settings:
        vendor, params = probe_params(alias, timeout)
        plans.append((vendor, params, VENDORS[vendor].ping_sql))

    def once(plan: tuple[str, dict[str, Any], str]) -> str:
        vendor, params, ping = plan
        try:
            connection = raw_connect(vendor, params)
            try:
                cursor = connection.cursor()
                cursor.execute(ping)
                cursor.fetchone()
            finally:
                connection.close()
        except Exception as error:
            return f"{type(error).__name__}: {str(error).strip()[:200]}"
        return ""

    measured = []
    with ThreadPoolExecutor(threads, thread_name_prefix="raw-pool") as pool:
        for _ in range(rounds):
            started = time.perf_counter()
            outcomes = list(pool.map(once, plans))
            wall = time.perf_counter() - started
            errors = Counter(outcome for outcome in outcomes if outcome)
            measured.append(
                {
                    "wall_s": wall,
                    "aliases": len(plans),
                    "failed": sum(errors.values()),
                    "errors": dict(errors.most_common(ERRORS_KEPT)),
                }
            )
    return {"rounds": measured}


class Tally:
    """Connects and failures per phase and server, fed by the loop, read at the end."""

    def __init__(self) -> None:
        self.phase = "start"
        self.attempts: Counter[tuple[str, str]] = Counter()
        self.failures: Counter[tuple[str, str]] = Counter()
        self.errors: dict[str, Counter[str]] = {}
        self.stopped = threading.Event()

    def listen(self) -> None:
        """Read phase names from stdin until ``stop`` or its end."""
        for line in sys.stdin:
            name = line.strip()
            if name == "stop":
                break
            if name:
                self.phase = name
        self.stopped.set()

    def count(self, server: str, error: BaseException | None) -> None:
        key = (self.phase, server)
        self.attempts[key] += 1
        if error is not None:
            self.failures[key] += 1
            text = f"{server}: {type(error).__name__}: {str(error).strip()[:200]}"
            self.errors.setdefault(self.phase, Counter())[text] += 1

    def report(self) -> dict[str, Any]:
        phases: dict[str, Any] = {}
        for (phase, server), attempts in self.attempts.items():
            entry = phases.setdefault(phase, {"attempts": {}, "failures": {}, "errors": {}})
            entry["attempts"][server] = attempts
            entry["failures"][server] = self.failures[(phase, server)]
        for phase, errors in self.errors.items():
            phases[phase]["errors"] = dict(errors.most_common(ERRORS_KEPT))
        return {"phases": phases}


def watch(postgres_port: int, mariadb_port: int, user: str, interval: float) -> dict[str, Any]:
    import MySQLdb
    import psycopg

    def postgres() -> None:
        with psycopg.connect(
            host="127.0.0.1", port=postgres_port, user=user, dbname="dbhb_main",
            connect_timeout=2,
        ) as conn:  # fmt: skip
            conn.execute("SELECT 1").fetchone()

    def mariadb() -> None:
        conn = MySQLdb.connect(
            host="127.0.0.1", port=mariadb_port, user=user, database="dbhb_t000",
            connect_timeout=2, read_timeout=2, write_timeout=2,
        )  # fmt: skip
        try:
            cursor = conn.cursor()
            cursor.execute("SELECT 1")
            cursor.fetchone()
        finally:
            conn.close()

    tally = Tally()
    threading.Thread(target=tally.listen, name="watch-stdin", daemon=True).start()
    servers = {"PostgreSQL": postgres, "MariaDB": mariadb}
    give_up = time.monotonic() + WATCH_LIMIT_SECONDS
    next_tick = time.monotonic()
    announced = False
    while not tally.stopped.is_set() and time.monotonic() < give_up:
        for name, connect in servers.items():
            try:
                connect()
                tally.count(name, None)
            except Exception as error:
                tally.count(name, error)
        if not announced:
            print("ready", flush=True)
            announced = True
        # A tick that overran is followed at once, never by a burst that catches up.
        next_tick = max(next_tick + interval, time.monotonic())
        tally.stopped.wait(max(0.0, next_tick - time.monotonic()))
    return tally.report()


def main(argv: list[str]) -> None:
    match argv:
        case ["probe", rounds, timeout]:
            report = probe_rounds(int(rounds), float(timeout))
        case ["raw", rounds, timeout, threads]:
            report = raw_rounds(int(rounds), float(timeout), int(threads))
        case ["watch", postgres_port, mariadb_port, user, interval]:
            report = watch(int(postgres_port), int(mariadb_port), user, float(interval))
        case _:
            raise SystemExit(f"usage: see {__doc__}")
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
