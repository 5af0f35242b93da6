"""``python -m bench``: run every benchmark row, print a markdown table, save JSON.

``python -m bench scale`` (or ``--rows 7``) runs one row, by name or number:
overhead (rows 1-2), faults (3), load (4), peers (5), hygiene (6), scale (7),
deadline (8), size (9), liveness (10), busy (11). ``--budget`` bounds each sampling loop (seconds).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from datetime import UTC, datetime

from tests.servers import SilentListener, unused_port

# Notes printed under the table, by the row they explain (shown when it ran).
NOTES = {
    "1": "Rows 1-2: the raw driver gets exactly the kwargs a probe uses (backend "
    "get_connection_params() + the probe's bounds); PostgreSQL's URL carries a password, "
    "but the local server uses trust auth, so neither side performs SCRAM. The probe's "
    "time includes the app's probe_finished receivers (the Prometheus metrics), shown apart.",
    "2": "Row 2: a probe only queries the connection it has just opened, so its round trip is "
    "its own query_ms (cursor + execute + fetch); the raw side times the same calls on the "
    "connection it has just opened (first statement of a session on both sides).",
    "3": "Row 3: each round waits for the previous round's stragglers, so every round dials "
    "the silent servers afresh.",
    "4": "Row 4: pings counted server-side: pg_stat_database.sessions of the benchmark's own "
    "database, and a counting TCP relay in front of MariaDB (its own counters are "
    "server-wide). The ping window starts right after a refresh and lasts 5 TTLs.",
    "5": "Row 5: each check runs as one request would (request_started/finished signals, "
    "CONN_MAX_AGE=0, Django's default); health-check is driven like its view (asyncio "
    "gather, sync checks on the loop's executor), watchman through checks.databases(). "
    "Each runs in a subprocess bounded by the benchmark's own timeout.",
    "6": "Row 6: the rounds include an alias on a port that refuses connections "
    "(the failure path).",
    "7": "Row 7: the tenant databases live on PostgreSQL and MariaDB servers the benchmark starts "
    "for itself with a default install's connection slots (100, 3 of them for superusers; "
    "151), so that a round that takes every slot takes none from the machine's shared servers. "
    "Each server sits behind a proxy adding 5 ms to every reply; each measurement is a fresh "
    "process, in the order raw, dbhealth, dbhealth, raw; the watching client connects straight "
    "to the servers, as the site's own workers would.",
    "8": "Row 8: gunicorn (1 sync worker) serves the site; its cache is emptied, and the probes "
    "still running in it are waited for, before each answer, so every answer is cold. "
    "'Added' is the answer's time with the slow alias minus the same answer with that "
    "alias's proxy passing replies straight through; the black-holed alias is there in both.",
    "9": "Row 9: one SQLite file per alias; each size in a fresh process through Django's test "
    "client, a logged-in superuser, results cached (one warm render first).",
    "10": "Row 10: gunicorn with config/gunicorn.conf.py (gthread) and, for reference, 2 sync "
    "workers; 20 clients keep /health/ requests waiting on a silent alias the whole time.",
    "11": "Row 11: each side in a fresh process through Django's test client, a logged-in "
    "superuser, no result cache (every render probes and reads drift, vitals, activity and "
    "maintenance again), in the order baseline, busy, busy, baseline; the sessions are the "
    "benchmark's own, on its own database, ended before the next vendor's open.",
}

ALL_ROWS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]
ROW_NAMES = {
    "overhead": {"1", "2"},
    "faults": {"3"},
    "load": {"4"},
    "peers": {"5"},
    "hygiene": {"6"},
    "scale": {"7"},
    "deadline": {"8"},
    "size": {"9"},
    "liveness": {"10"},
    "busy": {"11"},
}


def _selected(requested: list[str]) -> set[str]:
    """Row numbers from names and numbers; every row when none is asked for."""
    chosen: set[str] = set()
    for name in (item.strip().lower() for item in requested):
        if name in ROW_NAMES:
            chosen |= ROW_NAMES[name]
        elif name in ALL_ROWS:
            chosen.add(name)
        elif name:
            raise SystemExit(
                f"unknown row {name!r}: use {ALL_ROWS[0]}-{ALL_ROWS[-1]} or {', '.join(ROW_NAMES)}"
            )
    return chosen or set(ALL_ROWS)


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so every row's cleanup (servers, databases) runs.
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help=f"rows to run: {', '.join(ROW_NAMES)}")
    parser.add_argument("--rows", default="", help="comma-separated row numbers to run")
    parser.add_argument("--budget", type=float, default=15.0, help="seconds per sampling loop")
    options = parser.parse_args()
    rows = _selected([*options.names, *options.rows.split(",")])
    signal.signal(signal.SIGTERM, _terminate)

    # Fault servers exist before Django reads the settings that point at them.
    silent = [SilentListener(), SilentListener()]
    os.environ["DBHEALTH_BENCH_SILENT_PORTS"] = ",".join(str(s.port) for s in silent)
    os.environ["DBHEALTH_BENCH_CLOSED_PORT"] = str(unused_port())
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    import django

    django.setup()
    from django.conf import settings

    from bench import (
        answers,
        busy,
        deadline,
        endpoint,
        hygiene,
        liveness,
        overhead,
        page_size,
        peers,
        report,
        scale,
    )
    from bench.servers import SessionCounter, ensure_databases

    ensure_databases(settings.POSTGRES_URL, settings.MYSQL_URL, settings.SQLITE_PATH)
    count = SessionCounter(settings.POSTGRES_URL, settings.MYSQL_URL)
    timeout = float(settings.DBHEALTH["TIMEOUT"])
    healthy = list(settings.HEALTHY_ALIASES)
    started = datetime.now(UTC)
    clock = time.monotonic()
    lines: list[report.Line] = []

    def stage(name: str) -> None:
        print(f"[{time.monotonic() - clock:6.1f} s] {name}", file=sys.stderr, flush=True)

    if rows & {"1", "2"}:
        stage("rows 1-2: probe vs raw driver")
        vendors = {"PostgreSQL": "default", "MariaDB": "mariadb", "SQLite": "sqlite"}
        found = overhead.run(vendors, timeout, options.budget)
        lines += [line for line in found if line.row in rows]
    fourteen = [*settings.POSTGRES_ALIASES, *settings.MYSQL_ALIASES, *settings.SQLITE_ALIASES]
    if "3" in rows:
        stage("row 3: deadline under faults")
        silent_aliases = ["silent_postgres", "silent_mariadb"]
        lines += deadline.run([*fourteen, *silent_aliases], silent_aliases, timeout)
    if "5" in rows:
        stage("row 5: peers")
        lines += peers.run(healthy, fourteen, "silent_postgres", timeout, options.budget, 15.0)
    if "6" in rows:
        stage("row 6: hygiene")
        lines += hygiene.run([*healthy, "refused_postgres"], count, timeout)
    if "4" in rows:
        stage("row 4: cached /health/ under load")
        lines += endpoint.run(count, settings, budget=options.budget)
    if "7" in rows:
        stage("row 7: a database-per-tenant site")
        lines += scale.run()
    if "8" in rows:
        stage("row 8: what a slow alias adds to each answer")
        lines += answers.run(settings)
    if "9" in rows:
        stage("row 9: the page at 3, 50 and 251 aliases")
        lines += page_size.run()
    if "10" in rows:
        stage("row 10: liveness under waiting /health/ requests")
        lines += liveness.run(silent[0].port, options.budget)
    if "11" in rows:
        stage("row 11: the alias page on a server holding 50 sessions")
        lines += busy.run()
    stage("done")

    for listener in silent:
        listener.close()
    lines.sort(key=lambda line: int(line.row))
    table = report.markdown(lines)
    notes = [note for row, note in NOTES.items() if row in rows]
    path = report.write_json(lines, notes, started)
    info = report.machine()
    print(
        f"dbhealth benchmarks, {started:%Y-%m-%d}, {info['nproc']} × {info['cpu']}, "
        f"{info['ram_gib']} GiB RAM, Python {info['python']}\n"
    )
    print(table)
    print()
    for note in notes:
        print(f"- {note}")
    print(f"\nJSON: {path.relative_to(path.parent.parent)}")
    for line in lines:
        if line.holds is not None:
            verdict = "held" if line.holds else "MISSED"
            print(f"row {line.row}: target {line.target} {verdict}: {line.benchmark}")
    held = [line.holds for line in lines if line.holds is not None]
    print(f"targets held: {sum(held)} of {len(held)}")


if __name__ == "__main__":
    main()
