"""Row 9: the db-health page at 3, 50 and 251 aliases, as ratios to the 3-alias figures.

Each site is one SQLite file per alias, measured in a fresh process
(``bench.page_child``): the cached ``/admin/db-health/`` page's size and render time
(the median of several renders after one warm render that probed everything), the
HTMX table partial's size and ``/metrics``'s size. A page that reads for 3 aliases or
300 should not cost 300/3 times as much to serve from the cache.
"""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path
from typing import Any

from bench.children import run_json, site_env
from bench.report import Line, ms

SIZES = (3, 50, 251)
RENDERS = 15
RENDER_TARGET = 3.0
METRICS_TARGET_KIB = 250
CHILD_LIMIT = 300.0


def _site(directory: Path, aliases: int) -> dict[str, Any]:
    databases: dict[str, Any] = {}
    for number in range(aliases):
        alias = "default" if number == 0 else f"tenant_{number:03d}"
        path = directory / f"{alias}.sqlite3"
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA user_version = 1")  # a real database header
            conn.commit()
        databases[alias] = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)}
    return databases


def _measure(aliases: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dbhealth-bench-size-") as directory:
        # Results cached for longer than the renders take: every timed render is cached.
        dbhealth = {"CACHE_TTL": 600.0, "TIMEOUT": 2.0}
        env = site_env(Path(directory), _site(Path(directory), aliases), dbhealth)
        answer = run_json("bench.page_child", [str(RENDERS)], CHILD_LIMIT, env)
    if answer.data is None:
        return {"aliases": aliases, "problem": answer.problem}
    return answer.data


def _kib(size: int) -> str:
    return f"{size / 1024:.1f} KiB"


def run() -> list[Line]:
    found = {aliases: _measure(aliases) for aliases in SIZES}
    problems = [f"{n} aliases: {m['problem']}" for n, m in found.items() if "problem" in m]
    if problems:
        return [Line("9", "the db-health page at 3, 50 and 251 aliases", "", "",
                     "not available: " + "; ".join(problems), "", None)]  # fmt: skip
    small, large = found[SIZES[0]], found[SIZES[-1]]

    def ratios(key: str) -> str:
        return ", ".join(f"{n}: {found[n][key] / small[key]:.1f}×" for n in SIZES[1:])

    render_ratio = large["median_render_s"] / small["median_render_s"]
    data = {"sizes": found, "renders": RENDERS}
    failed = [n for n, m in found.items() if any(code != 200 for code in m["statuses"])]
    note = f"; not 200 at {failed} aliases" if failed else ""
    render = Line(
        row="9",
        benchmark=f"page at scale: cached `/admin/db-health/` render, median of {RENDERS} "
        f"({', '.join(map(str, SIZES))} SQLite aliases)",
        dbhealth=f"{SIZES[-1]} aliases: {ms(large['median_render_s'] * 1000)}, page "
        f"{_kib(large['page_bytes'])}, table partial {_kib(large['table_bytes'])}",
        reference=f"{SIZES[0]} aliases: {ms(small['median_render_s'] * 1000)}, page "
        f"{_kib(small['page_bytes'])}, table partial {_kib(small['table_bytes'])}",
        result=f"render {ratios('median_render_s')}; page size {ratios('page_bytes')}; "
        f"table size {ratios('table_bytes')}{note}",
        target=f"render < {RENDER_TARGET:g}× at {SIZES[-1]}",
        holds=render_ratio < RENDER_TARGET and not failed,
        data=data,
    )
    metrics_kib = large["metrics_bytes"] / 1024
    metrics = Line(
        row="9",
        benchmark=f"page at scale: `/metrics` size ({', '.join(map(str, SIZES))} aliases)",
        dbhealth=f"{SIZES[-1]} aliases: {_kib(large['metrics_bytes'])}",
        reference=f"{SIZES[0]} aliases: {_kib(small['metrics_bytes'])}",
        result=f"size {ratios('metrics_bytes')}{note}",
        target=f"< {METRICS_TARGET_KIB} KiB at {SIZES[-1]}",
        holds=metrics_kib < METRICS_TARGET_KIB and not failed,
        data=data,
    )
    return [render, metrics]
