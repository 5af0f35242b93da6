"""Benchmark work that runs in a subprocess, bounded by the benchmark's own clock.

``run_json("bench.peer_check", [...], limit=30)`` runs ``python -m MODULE ARGS`` for at
most ``limit`` seconds and returns the last JSON line it printed, or why there is none:
a child that never answers is killed and reported, so it cannot hang the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Answer:
    """What a subprocess said (its JSON), or why it said nothing."""

    data: dict[str, Any] | None
    wall: float
    problem: str = ""


def run_json(module: str, args: list[str], limit: float, extra_env: dict[str, str]) -> Answer:
    started = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **extra_env},
        text=True,
    ) as child:
        try:
            out, err = child.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            return Answer(None, time.monotonic() - started, f"no answer within {limit:g} s")
        except BaseException:
            child.kill()
            raise
    wall = time.monotonic() - started
    found = [line for line in out.splitlines() if line.startswith("{")]
    if not found:
        last = (err.strip().splitlines() or ["no output"])[-1]
        return Answer(None, wall, f"failed: {last[:120]}")
    return Answer(json.loads(found[-1]), wall)


def site_env(
    directory: Path, databases: dict[str, Any], dbhealth: dict[str, Any]
) -> dict[str, str]:
    """The environment of a process that runs a site with these DATABASES and DBHEALTH
    additions (``bench.site_settings``); the site's file is written into ``directory``."""
    path = directory / "site.json"
    document = {"databases": databases, "dbhealth": dbhealth}
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return {"DJANGO_SETTINGS_MODULE": "bench.site_settings", "DBHEALTH_BENCH_SITE": str(path)}
