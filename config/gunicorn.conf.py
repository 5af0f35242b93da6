"""gunicorn for this project: ``gunicorn -c config/gunicorn.conf.py config.wsgi``.

Threaded workers, so that /health/live/ never waits. A /health/ request that finds a
database silent holds its thread for up to DBHEALTH_TIMEOUT; with sync workers two such
requests hold both workers, /health/live/ queues behind them, and a Kubernetes liveness
probe restarts a pod that was only waiting for a database. A gthread worker accepts
every connection and hands it to a free thread: with WORKERS x THREADS well above the
/health/ requests that can wait at once (load balancers, readiness probes, people), the
liveness answer is as quick as on an idle server (``python -m bench --rows 7``).

Flags on the command line win over this file (``--workers 4``, ``--bind ...``).
"""

from __future__ import annotations

import glob
import os
from typing import Any

bind = "127.0.0.1:8000"
worker_class = "gthread"
workers = 2
# Waiting threads cost memory, not CPU. Each thread that uses the site's own database
# keeps a connection of its own when CONN_MAX_AGE > 0: count WORKERS x THREADS
# against the server's connection limit before raising these.
threads = 32
# Well above DBHEALTH_TIMEOUT: a page waits at most one probe deadline.
timeout = 30
graceful_timeout = 30
keepalive = 5

# prometheus-client's multiprocess mode (README "Metrics across workers"): every worker
# writes its counters to files in this directory and /metrics adds them up. Files left
# by an earlier run would be added too, so the master empties it before forking.
METRICS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def on_starting(server: Any) -> None:
    if METRICS_DIR:
        os.makedirs(METRICS_DIR, exist_ok=True)
        for leftover in glob.glob(os.path.join(METRICS_DIR, "*.db")):
            os.remove(leftover)


def child_exit(server: Any, worker: Any) -> None:
    if METRICS_DIR:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, METRICS_DIR)
