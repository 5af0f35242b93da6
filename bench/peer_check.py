"""Subprocess side of row 5: run dbhealth and the peers' database checks on the same aliases.

``python -m bench.peer_check sample ALIAS...`` interleaves the three contenders on healthy
aliases and prints their medians as JSON. ``python -m bench.peer_check answer NAME
ALIAS...`` runs one contender once and prints when it answered, then exits at once
without waiting for threads still stuck in a driver call. The parent bounds both with
its own timeout, so a peer that never answers cannot hang the benchmark.

Each contender is wrapped in Django's request signals, as one health request would be:
``request_finished`` closes what a check left open on the thread's connections
(``CONN_MAX_AGE`` is 0, Django's default), so no contender reuses a connection.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.signals import request_finished, request_started  # noqa: E402
from health_check.checks import Database  # noqa: E402

from bench.sampling import interleaved  # noqa: E402
from dashboard.probes import probe_all  # noqa: E402


class BoundedDatabase(Database):
    """health-check's Database check with its wall-clock budget set to dbhealth's timeout."""

    timeout = timedelta(seconds=float(settings.DBHEALTH["TIMEOUT"]))


def _as_request(check: Callable[[], dict[str, bool]]) -> Callable[[], dict[str, bool]]:
    def run() -> dict[str, bool]:
        request_started.send(sender=None)
        try:
            return check()
        finally:
            request_finished.send(sender=None)

    return run


def contenders(aliases: list[str], bounded: bool) -> dict[str, Callable[[], dict[str, bool]]]:
    settings.WATCHMAN_DATABASES = {alias: settings.DATABASES[alias] for alias in aliases}
    from watchman import checks as watchman_checks  # reads WATCHMAN_DATABASES on import

    timeout = float(settings.DBHEALTH["TIMEOUT"])
    check_class = BoundedDatabase if bounded else Database
    loop = asyncio.new_event_loop()

    def dbhealth() -> dict[str, bool]:
        return {r.alias: r.ok for r in probe_all(aliases, timeout=timeout)}

    async def gathered(checks: list[Database]) -> list[Any]:
        # What its HealthCheckView.get does: gather every check, sync ones on the executor.
        return await asyncio.gather(*(check.get_result(None) for check in checks))

    def health_check() -> dict[str, bool]:
        checks = [check_class(alias=alias) for alias in aliases]
        results = loop.run_until_complete(gathered(checks))
        return {c.alias: r.error is None for c, r in zip(checks, results, strict=True)}

    def watchman() -> dict[str, bool]:
        found: dict[str, bool] = {}
        for item in watchman_checks.databases()["databases"]:
            for alias, status in item.items():
                found[alias] = bool(status["ok"])
        return found

    return {
        "dbhealth": _as_request(dbhealth),
        "django-health-check": _as_request(health_check),
        "django-watchman": _as_request(watchman),
    }


def sample(aliases: list[str], budget: float) -> dict[str, Any]:
    runs = contenders(aliases, bounded=False)
    broken: dict[str, dict[str, bool]] = {}

    def timed(name: str) -> Callable[[], dict[str, float]]:
        def run() -> dict[str, float]:
            started = time.perf_counter()
            statuses = runs[name]()
            elapsed = time.perf_counter() - started
            if not all(statuses.values()):
                broken[name] = statuses
            return {"wall": elapsed}

        return run

    samples = interleaved(
        {name: timed(name) for name in runs}, budget=budget, warmup=5, batch=10, gap=0.005
    )
    return {
        "medians_s": {name: samples.median(name, "wall") for name in runs},
        "rounds": samples.rounds,
        "settled": samples.settled,
        "broken": broken,
    }


def answer(name: str, aliases: list[str]) -> dict[str, Any]:
    bounded = os.environ.get("DBHEALTH_BENCH_DRIVER_TIMEOUTS") == "1"
    run = contenders(aliases, bounded=bounded)[name]
    started = time.perf_counter()
    statuses = run()
    return {"answered_s": time.perf_counter() - started, "statuses": statuses}


def main(argv: list[str]) -> None:
    mode, *rest = argv
    if mode == "sample":
        budget, *aliases = rest
        print(json.dumps(sample(aliases, float(budget))), flush=True)
    else:
        name, *aliases = rest
        print(json.dumps(answer(name, aliases)), flush=True)
    # Threads of a peer may still be stuck in a driver call: leave without joining them.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
