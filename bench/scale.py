"""Row 7: ``probe_all()`` on a database-per-tenant site, bounded in time and in load.

The site: 1 + 200 PostgreSQL and 200 MariaDB databases, one alias each, on servers of
the benchmark's own (``bench.tenants``), each behind a proxy that adds 5 ms to every
reply (``tests.faultproxy``), so a connection costs what it costs across a network.
Every measurement runs in a fresh process (``bench.scale_child``), in the order raw,
dbhealth, dbhealth, raw so that a drift of the machine's load lands on both alike:

- dbhealth: ``probe_all()``, a few rounds per process;
- the floor: the raw drivers in a pool of 16 threads, the same connects with the
  probe's kwargs, the same ping statement, close;
- all along, the site's own workers: a process that connects straight to each server
  every 10 ms (connect, ``SELECT 1``, close) and counts what is refused.

The proxies count the connections open at once, whoever makes them. The targets read
the scheduler's limits from the ``DBHEALTH`` settings of the code under test (its
defaults and the site's additions); code that has no such setting is held to the
documented default.
"""

from __future__ import annotations

import json
import select
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.children import ROOT, Answer, run_json, site_env
from bench.report import Line
from bench.tenants import ClusterError, TenantServers, tenant_servers
from tests.faultproxy import FaultProxy

TENANTS = 200
# The product's default probe timeout: what a site that sets nothing gets.
TIMEOUT = 2.0
REPLY_DELAY_MS = 5.0
RAW_THREADS = 16
ROUNDS = 3
PHASES = ["raw", "dbhealth", "dbhealth", "raw"]
WATCH_INTERVAL = 0.010
WALL_TARGET = 1.2
CHILD_LIMIT = 180.0
# The scheduler's settings and their documented defaults.
PER_SERVER_SETTING, PER_SERVER_DEFAULT = "MAX_PROBES_PER_SERVER", 8
TOTAL_SETTING, TOTAL_DEFAULT = "MAX_PROBES", 16


def _configured(site_dbhealth: dict[str, Any], name: str, documented: int) -> int:
    from dashboard.conf import DEFAULTS

    return int({**DEFAULTS, **site_dbhealth}.get(name, documented))


def _databases(servers: TenantServers, postgres_port: int, mariadb_port: int) -> dict[str, Any]:
    def alias(engine: str, port: int, name: str) -> dict[str, Any]:
        return {
            "ENGINE": f"django.db.backends.{engine}",
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "NAME": name,
            "USER": servers.user,
            "PASSWORD": "",
        }

    main, *tenants = servers.postgres_names
    databases = {"default": alias("postgresql", postgres_port, main)}
    for name in tenants:
        databases[f"pg_{name}"] = alias("postgresql", postgres_port, name)
    for name in servers.mariadb_names:
        databases[f"maria_{name}"] = alias("mysql", mariadb_port, name)
    return databases


class Watcher:
    """The ``watch`` child: started before the first phase, told each phase, stopped last."""

    def __init__(self, servers: TenantServers) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.scale_child", "watch", str(servers.postgres_port),
             str(servers.mariadb_port), servers.user, str(WATCH_INTERVAL)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        line = self.process.stdout.readline().strip() if ready else ""
        if line != "ready":
            self.close()
            raise RuntimeError(f"the watching client did not start: {line or 'no answer'}")

    def phase(self, name: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(name + "\n")
        self.process.stdin.flush()

    def report(self) -> dict[str, Any]:
        try:
            out, err = self.process.communicate("stop\n", timeout=30)
        except subprocess.TimeoutExpired:
            self.close()
            return {"phases": {}, "problem": "the watching client did not stop"}
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if not lines:
            return {"phases": {}, "problem": (err.strip().splitlines() or ["no output"])[-1]}
        report: dict[str, Any] = json.loads(lines[-1])
        return report

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


def run(timeout: float = TIMEOUT) -> list[Line]:
    try:
        with tenant_servers(TENANTS) as servers:
            return _run(servers, timeout)
    except ClusterError as error:
        return [_not_available(f"this machine cannot start its own servers: {error}")]


def _not_available(reason: str) -> Line:
    return Line("7", f"scale: 1 + {TENANTS} PostgreSQL + {TENANTS} MariaDB tenant databases",
                "", "", f"not available: {reason}", "", None)  # fmt: skip


def _run(servers: TenantServers, timeout: float) -> list[Line]:
    proxies = {
        "PostgreSQL": FaultProxy(servers.postgres_port, lifetime=900),
        "MariaDB": FaultProxy(servers.mariadb_port, lifetime=900),
    }
    try:
        for proxy in proxies.values():
            proxy.set_mode("delay", ms=REPLY_DELAY_MS)
        databases = _databases(servers, proxies["PostgreSQL"].port, proxies["MariaDB"].port)
        dbhealth_settings = {"TIMEOUT": timeout}
        with tempfile.TemporaryDirectory(prefix="dbhealth-bench-scale-") as directory:
            env = site_env(Path(directory), databases, dbhealth_settings)
            measured = _phases(servers, proxies, env, timeout)
    finally:
        for proxy in proxies.values():
            proxy.close()
    return _lines(measured, dbhealth_settings, len(databases))


def _phases(
    servers: TenantServers, proxies: dict[str, FaultProxy], env: dict[str, str], timeout: float
) -> dict[str, Any]:
    runs: dict[str, list[Answer]] = {"raw": [], "dbhealth": []}
    peaks: dict[str, dict[str, int]] = {"raw": {}, "dbhealth": {}}
    watcher = Watcher(servers)
    try:
        for phase in PHASES:
            watcher.phase(phase)
            for proxy in proxies.values():
                proxy.reset_peak()
            if phase == "raw":
                args = ["raw", str(ROUNDS), str(timeout), str(RAW_THREADS)]
            else:
                args = ["probe", str(ROUNDS), str(timeout)]
            runs[phase].append(run_json("bench.scale_child", args, CHILD_LIMIT, env))
            for server, proxy in proxies.items():
                peaks[phase][server] = max(peaks[phase].get(server, 0), proxy.peak)
        watcher.phase("after")
        watched = watcher.report()
    except BaseException:
        watcher.close()
        raise
    return {"runs": runs, "peaks": peaks, "watched": watched}


def _short(error: str) -> str:
    """An error as the table shows it: PostgreSQL's reason without the address before it."""
    head, fatal, reason = error.partition("FATAL:")
    text = f"{head.split(':', 1)[0]}: {reason.strip()}" if fatal else error
    return text[:140]


def _rounds(answers: list[Answer]) -> tuple[list[dict[str, Any]], list[str]]:
    rounds = [r for answer in answers if answer.data for r in answer.data["rounds"]]
    problems = [answer.problem for answer in answers if answer.data is None]
    return rounds, problems


def _lines(measured: dict[str, Any], site_dbhealth: dict[str, Any], aliases: int) -> list[Line]:
    per_server = _configured(site_dbhealth, PER_SERVER_SETTING, PER_SERVER_DEFAULT)
    total = _configured(site_dbhealth, TOTAL_SETTING, TOTAL_DEFAULT)
    ours, our_problems = _rounds(measured["runs"]["dbhealth"])
    raw, raw_problems = _rounds(measured["runs"]["raw"])
    site = (
        f"{aliases} aliases (1 + {TENANTS} PostgreSQL, {TENANTS} MariaDB), "
        f"+{REPLY_DELAY_MS:g} ms per reply"
    )
    data = {
        "aliases": aliases,
        "dbhealth_rounds": ours,
        "raw_rounds": raw,
        "problems": our_problems + raw_problems,
        "peaks": measured["peaks"],
        "watched": measured["watched"],
        PER_SERVER_SETTING: per_server,
        TOTAL_SETTING: total,
    }
    if not ours or not raw:
        reason = "; ".join(our_problems + raw_problems) or "no rounds measured"
        return [_not_available(reason)]

    # 1. Healthy aliases reported otherwise.
    not_up = [r["aliases"] - r["statuses"].get("up", 0) for r in ours]
    errors: dict[str, int] = {}
    for r in ours:
        for text, count in r["errors"].items():
            errors[text] = errors.get(text, 0) + count
    worst_error = max(errors, key=errors.__getitem__) if errors else ""
    raw_failed = sum(r["failed"] for r in raw)
    down_line = Line(
        row="7",
        benchmark=f"scale, {site}: healthy aliases reported down or timeout per `probe_all()`",
        dbhealth=f"{max(not_up)} worst of {len(ours)} rounds ({sum(not_up)} in all)",
        reference=f"raw pool of {RAW_THREADS}: {raw_failed} failed connects in {len(raw)} rounds",
        result=(
            f"most frequent: “{_short(worst_error)}” ×{errors[worst_error]}"
            if errors
            else "every alias up in every round"
        ),  # fmt: skip
        target="0",
        holds=sum(not_up) == 0 and not our_problems,
        data=data,
    )

    # 2. What the site's own workers meet meanwhile.
    phases = measured["watched"].get("phases", {})

    def refused(phase: str) -> tuple[int, int, str]:
        entry = phases.get(phase, {})
        failures: dict[str, int] = entry.get("failures", {})
        by_server = ", ".join(f"{server} {count}" for server, count in failures.items() if count)
        return (sum(failures.values()), sum(entry.get("attempts", {}).values()),
                f" ({by_server})" if by_server else "")  # fmt: skip

    ours_refused, ours_attempts, ours_servers = refused("dbhealth")
    raw_refused, raw_attempts, raw_servers = refused("raw")
    first_error = next(iter(phases.get("dbhealth", {}).get("errors", {})), "")
    refused_line = Line(
        row="7",
        benchmark=f"scale, {site}: connects refused to a client beside the probes "
        f"(straight to each server every {WATCH_INTERVAL * 1000:g} ms)",
        dbhealth=f"{ours_refused} of {ours_attempts} during dbhealth's rounds{ours_servers}",
        reference=f"{raw_refused} of {raw_attempts} during the raw pool's{raw_servers}",
        result=f"e.g. “{_short(first_error)}”"
        if first_error
        else measured["watched"].get("problem", "none refused"),
        target="0",
        holds=ours_refused == 0 and ours_attempts > 0,
        data=data,
    )

    # 3. Connections open at once, as the proxies saw them.
    peaks = measured["peaks"]
    peak_line = Line(
        row="7",
        benchmark=f"scale, {site}: most probe connections open at once per server "
        "(counted at the proxy)",
        dbhealth=", ".join(f"{server} {peak}" for server, peak in peaks["dbhealth"].items()),
        reference=f"raw pool of {RAW_THREADS}: "
        + ", ".join(f"{server} {peak}" for server, peak in peaks["raw"].items()),
        result=f"{PER_SERVER_SETTING} {per_server}, {TOTAL_SETTING} {total}",
        target=f"≤ {per_server} per server",
        holds=max(peaks["dbhealth"].values()) <= per_server,
        data=data,
    )

    # 4. Time, against the floor.
    our_walls = [r["wall_s"] for r in ours]
    raw_walls = [r["wall_s"] for r in raw]
    ratio = statistics.median(our_walls) / statistics.median(raw_walls)
    first_rounds = [r["wall_s"] for answer in measured["runs"]["dbhealth"] if answer.data
                    for r in answer.data["rounds"][:1]]  # fmt: skip
    wall_line = Line(
        row="7",
        benchmark=f"scale, {site}: wall time of one round, fresh processes",
        dbhealth=f"median {statistics.median(our_walls):.3f} s of {len(our_walls)} "
        f"(first rounds {', '.join(f'{w:.3f}' for w in first_rounds)} s)",
        reference=f"raw pool of {RAW_THREADS} threads: median "
        f"{statistics.median(raw_walls):.3f} s of {len(raw_walls)}",
        result=f"{ratio:.2f}×",
        target=f"≤ {WALL_TARGET}×",
        holds=ratio <= WALL_TARGET,
        data=data,
    )
    return [down_line, refused_line, peak_line, wall_line]
