"""Row 7: ``/health/live/`` while 20 ``/health/`` requests wait on a silent database.

gunicorn serves this project from its own settings, configured through the
environment as a deployment is: one alias on a listener that accepts TCP and never
answers, a locmem cache and ``DBHEALTH_CACHE_TTL=0``, so every ``/health/`` request
waits out the whole probe deadline (the worst case; with a cache they wait one
deadline per TTL). Twenty clients keep twenty such requests waiting at all times;
meanwhile one client asks ``/health/live/`` every 50 ms and times each answer. The
recommended deployment (``config/gunicorn.conf.py``: gthread workers) is measured
against gunicorn's default sync workers (two), in the same run.
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.endpoint import serving, stop_gunicorn
from bench.load import get_status
from bench.report import Line, ms
from tests.servers import unused_port

ROOT = Path(__file__).resolve().parent.parent
WAITING = 20
TARGET_MS = 100.0
DEPLOYMENTS = {
    "recommended": ["-c", "config/gunicorn.conf.py"],
    "sync": ["--worker-class", "sync", "--workers", "2"],
}


def _start(port: int, silent_port: int, flags: list[str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": f"postgres://postgres:bench-Pw-9fK2@127.0.0.1:{silent_port}/silent",
        "CACHE_URL": "locmemcache://liveness",
        "DBHEALTH_TIMEOUT": "1",
        "DBHEALTH_CACHE_TTL": "0",
    }
    command = [sys.executable, "-m", "gunicorn", *flags, "config.wsgi:application",
               "--bind", f"127.0.0.1:{port}", "--log-level", "warning"]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


def _measure(port: int, seconds: float) -> dict[str, Any]:
    """Live answer times (s) while ``WAITING`` clients keep ``/health/`` requests waiting."""
    stop = threading.Event()
    health: list[int] = []

    def waiter() -> None:
        while not stop.is_set():
            health.append(get_status(port, "/health/", timeout=30))

    waiters = [threading.Thread(target=waiter, name=f"health-{n}") for n in range(WAITING)]
    for thread in waiters:
        thread.start()
    time.sleep(1.5)  # every waiter has a request in the server before timing starts
    live: list[float] = []
    failed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        failed += get_status(port, "/health/live/", timeout=30) != 200
        live.append(time.monotonic() - started)
        time.sleep(0.05)
    stop.set()
    for thread in waiters:
        thread.join()
    return {
        "live_s": live,
        "live_failed": failed,
        "health_requests": len(health),
        "health_503": health.count(503),
    }


def run(silent_port: int, budget: float) -> list[Line]:
    found: dict[str, dict[str, Any]] = {}
    for name, flags in DEPLOYMENTS.items():
        port = unused_port()
        server = _start(port, silent_port, flags)
        try:
            if not serving(port):
                reason = f"not available: gunicorn ({name}) did not start"
                return [
                    Line("7", "liveness under waiting /health/ requests", "", "", reason, "", None)
                ]
            found[name] = _measure(port, seconds=max(5.0, budget / 2))
        finally:
            stop_gunicorn(server, wait=30)
    ours, sync = found["recommended"], found["sync"]
    median = statistics.median(ours["live_s"]) * 1000
    worst = max(ours["live_s"]) * 1000
    sync_median = statistics.median(sync["live_s"]) * 1000
    return [
        Line(
            row="7",
            benchmark=f"`/health/live/` while {WAITING} `/health/` requests wait on a silent "
            "database (gunicorn -c config/gunicorn.conf.py: 2 gthread workers × 32 threads; "
            "TIMEOUT 1 s, no cache)",
            dbhealth=f"median {ms(median)}, worst {ms(worst)} ({len(ours['live_s'])} requests)",
            reference=f"2 sync workers: median {ms(sync_median)}",
            result=f"/health/ answered 503 {ours['health_503']} of {ours['health_requests']} "
            f"times meanwhile; /health/live/ failed {ours['live_failed']} times",
            target=f"median < {TARGET_MS:g} ms",
            holds=median < TARGET_MS and ours["live_failed"] == 0,
            data={
                name: {**values, "live_median_ms": statistics.median(values["live_s"]) * 1000}
                for name, values in found.items()
            },
        )
    ]
