"""``/metrics``: Prometheus text from the app's own registry (not the global one).

``dbhealth_up`` and ``dbhealth_verdict`` are read from the cached results at scrape time
(a ``report.build`` that is not fresh), so scrapes cannot ping more often than the
cache TTL. The latency histogram and the
failure counter are fed by ``probe_finished``: they count the probes this process ran.
With ``METRICS_DIR`` (prometheus-client's multiprocess mode) the counters are those of
every worker writing to that directory, so a scrape answered by any worker gives the same
sums.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from prometheus_client import CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from dashboard import activity, drift, maintenance, persistent, pools, report, results, vitals
from dashboard.conf import get_settings
from dashboard.deadline import Deadline
from dashboard.permissions import Access, caller_access, has_session
from dashboard.probes import ProbeResult
from dashboard.summary import Verdict

logger = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
# A scrape that races a worker creating its counters file is read again this often.
SCRAPE_ATTEMPTS = 3
SCRAPE_RETRY_SECONDS = 0.05

LATENCY = Histogram(
    "dbhealth_latency_seconds",
    "Time a probe took to connect and run its statement (what an application feels"
    " opening a connection), per alias.",
    ["alias"],
    # Few buckets, because every one is a series per alias (a site may have hundreds):
    # a local file, a LAN server, a busy or distant one, near WARN_MS, near the timeout.
    buckets=(0.002, 0.01, 0.05, 0.25, 1, 5),
    registry=REGISTRY,
)
FAILURES = Counter(
    "dbhealth_probe_failures",
    "Probes that found an alias down or timed out.",
    ["alias", "status"],
    registry=REGISTRY,
)


VERDICT_VALUE: dict[Verdict, float] = {"pass": 1.0, "warn": 0.5, "fail": 0.0}


class UpCollector:
    """``dbhealth_up{alias,vendor}`` (1 when the latest result is up, else 0), the two
    phases of that latest probe, ``dbhealth_connect_seconds`` and ``dbhealth_query_seconds``,
    and the held verdict: ``dbhealth_verdict`` and ``dbhealth_flapping``."""

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily(
            "dbhealth_up",
            "Whether the alias answered its latest probe.",
            labels=["alias", "vendor"],
        )
        phases = {
            "connect": GaugeMetricFamily(
                "dbhealth_connect_seconds", "Connect time of the latest probe.", labels=["alias"]
            ),
            "query": GaugeMetricFamily(
                "dbhealth_query_seconds",
                "Statement round trip of the latest probe.",
                labels=["alias"],
            ),
        }
        verdict = GaugeMetricFamily(
            "dbhealth_verdict",
            "The verdict the alias is held at (FALL/RISE probes in a row change it):"
            " 1 pass, 0.5 warn (a non-critical alias down), 0 fail.",
            labels=["alias"],
        )
        flapping = GaugeMetricFamily(
            "dbhealth_flapping",
            "1 while the alias's verdict changed FLAP_CHANGES times within FLAP_WINDOW.",
            labels=["alias"],
        )
        found = report.build(deadline=Deadline.after(get_settings().timeout))
        for row in found.rows:
            result = row.result
            gauge.add_metric([result.alias, result.vendor], 1.0 if result.ok else 0.0)
            if result.connect_ms is not None:
                phases["connect"].add_metric([result.alias], result.connect_ms / 1000)
            if result.query_ms is not None:
                phases["query"].add_metric([result.alias], result.query_ms / 1000)
            verdict.add_metric([row.alias], VERDICT_VALUE[row.verdict])
            flapping.add_metric([row.alias], 1.0 if row.is_flapping else 0.0)
        yield gauge
        yield from phases.values()
        yield verdict
        yield flapping


UP_COLLECTOR = UpCollector()
REGISTRY.register(UP_COLLECTOR)


def observe_probe(sender: Any, result: ProbeResult, **kwargs: Any) -> None:
    """Receiver of ``probe_finished`` (connected in ``DashboardConfig.ready``)."""
    if result.latency_ms is not None:
        LATENCY.labels(alias=result.alias).observe(result.latency_ms / 1000)
    if not result.ok:
        FAILURES.labels(alias=result.alias, status=result.status).inc()


def _refused(request: HttpRequest) -> HttpResponse | None:
    """401 without credentials (or with a wrong token), 403 for a session lacking
    ``dashboard.view_details``; None for the token or that permission."""
    access = caller_access(request)
    if access is Access.DETAILS:
        return None
    if access is Access.STATUSES and has_session(request):
        return HttpResponse(
            "Your account lacks the permission to see database details.\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    response = HttpResponse(
        "A bearer token or a session allowed to see database details is required.\n",
        status=401,
        content_type="text/plain; charset=utf-8",
    )
    response["WWW-Authenticate"] = 'Bearer realm="dbhealth"'
    return response


@csrf_exempt
@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """Token or view_details, like the details of /health/, unless ``METRICS_PUBLIC``."""
    refused = None if get_settings().metrics_public else _refused(request)
    if refused is not None:
        return refused
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    for attempt in range(SCRAPE_ATTEMPTS):
        try:
            return HttpResponse(encoder(scrape_registry()), content_type=content_type)
        except Exception:
            # In multiprocess mode a worker may be creating its file while this one reads
            # the directory (a file of zero length for a moment): read it again.
            logger.warning("reading the metrics failed (attempt %d)", attempt + 1, exc_info=True)
            time.sleep(SCRAPE_RETRY_SECONDS)
    return HttpResponse(
        "The metrics could not be read just now; scrape again.\n",
        status=503,
        content_type="text/plain; charset=utf-8",
    )


def scrape_registry() -> CollectorRegistry:
    """What one scrape exposes. In multiprocess mode the counters and histograms come from
    every worker's files; the collectors that read the shared cache are the same in every
    worker, so they are added once, as they are."""
    directory = get_settings().metrics_dir
    if not directory:
        return REGISTRY
    if not os.path.isdir(directory):
        # dbhealth.W005 names it; a scrape still answers with this process's figures.
        logger.warning("METRICS_DIR is not a directory: /metrics shows this process only")
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    for collector in SHARED_COLLECTORS:
        registry.register(collector)
    return registry


# --- what the shipped alert rules and Grafana dashboard need (dashboard/ops/) -----------------
# Settings, and what the page or the command left in the cache: a scrape never checks
# migrations or reads vitals itself, so it opens no connection for these.


class OpsCollector:
    """``dbhealth_critical``, ``dbhealth_warn_latency_seconds``, migrations and lag."""

    def collect(self) -> Iterable[Metric]:
        config = get_settings()
        aliases = results.aliases()
        critical = GaugeMetricFamily(
            "dbhealth_critical",
            "1 for an alias in CRITICAL_ALIASES (its failure fails /health/), else 0.",
            labels=["alias"],
        )
        for alias in aliases:
            critical.add_metric([alias], 1.0 if alias in config.critical_aliases else 0.0)
        yield critical
        yield GaugeMetricFamily(
            "dbhealth_warn_latency_seconds",
            "A probe slower than this (WARN_MS) is a warning.",
            value=config.warn_ms / 1000,
        )
        unapplied = GaugeMetricFamily(
            "dbhealth_migrations_unapplied",
            "Migrations migrate would still apply, as the page or the dbhealth command last"
            " found (kept for a minute).",
            labels=["alias"],
        )
        checked = drift.cached(aliases)
        for alias in aliases:
            count = checked[alias].count if alias in checked else None
            if count is not None:
                unapplied.add_metric([alias], float(count))
        yield unapplied
        lag = GaugeMetricFamily(
            "dbhealth_replication_lag_seconds",
            "Seconds a replica is behind its primary, as its vitals were last read (kept for"
            " a minute).",
            labels=["alias"],
        )
        for alias, seconds in vitals.cached_lag(aliases).items():
            lag.add_metric([alias], seconds)
        yield lag


OPS_COLLECTOR = OpsCollector()
REGISTRY.register(OPS_COLLECTOR)


# --- maintenance dangers (dashboard.maintenance), from the cache only ------------------------


class MaintenanceCollector:
    """``dbhealth_maintenance_dangers{alias,kind}``: keys near overflow, wraparound, invalid
    indexes, as the alias page or the dbhealth command last found them."""

    def collect(self) -> Iterable[Metric]:
        dangers = GaugeMetricFamily(
            "dbhealth_maintenance_dangers",
            "Maintenance dangers of each kind the last read found (kept for ten minutes).",
            labels=["alias", "kind"],
        )
        for alias, counts in maintenance.cached_counts(results.aliases()).items():
            for kind, count in counts.items():
                dangers.add_metric([alias, kind], float(count))
        yield dangers


MAINTENANCE_COLLECTOR = MaintenanceCollector()
REGISTRY.register(MAINTENANCE_COLLECTOR)


# --- server activity (dashboard.activity), from the cache only -------------------------------


class ActivityCollector:
    """Sessions by state, blocked sessions, the longest query and idle transaction, and the
    share of max_connections in use, per server (``server="postgresql:db1:5432"``: the
    sessions are the server's, whichever of its aliases read them, so 250 tenant aliases
    on one server are one set of series and one alert), as the alias page or the dbhealth
    command last read them: a scrape never lists sessions itself."""

    def collect(self) -> Iterable[Metric]:
        kept = "as the activity was last read (kept for a minute)"
        sessions = GaugeMetricFamily(
            "dbhealth_sessions",
            f"Sessions on the server by state (active, idle, idle_in_transaction, other), {kept}.",
            labels=["server", "state"],
        )
        blocked = GaugeMetricFamily(
            "dbhealth_blocked_sessions",
            f"Sessions waiting on a lock another session holds, {kept}.",
            labels=["server"],
        )
        longest = GaugeMetricFamily(
            "dbhealth_longest_query_seconds",
            f"How long the longest running query had run, {kept}.",
            labels=["server"],
        )
        idle = GaugeMetricFamily(
            "dbhealth_longest_idle_in_transaction_seconds",
            f"How long the oldest transaction left idle had been open, {kept}.",
            labels=["server"],
        )
        used = GaugeMetricFamily(
            "dbhealth_connections_used_ratio",
            f"Connections open on the server over its max_connections, {kept}.",
            labels=["server"],
        )
        servers = {activity.server_of(alias) for alias in results.aliases()}
        for server, figures in sorted(activity.cached_server_figures(servers).items()):
            for state, count in figures.sessions.items():
                sessions.add_metric([server, state], float(count))
            blocked.add_metric([server], float(figures.blocked))
            longest.add_metric([server], figures.longest_query_seconds)
            idle.add_metric([server], figures.longest_idle_in_transaction_seconds)
            if figures.connections_used_ratio is not None:
                used.add_metric([server], figures.connections_used_ratio)
        yield from (sessions, blocked, longest, idle, used)


ACTIVITY_COLLECTOR = ActivityCollector()
REGISTRY.register(ACTIVITY_COLLECTOR)


class PoolCollector:
    """The application's own pools, summed over every worker that published its figures,
    under OpenTelemetry's database client names (``db.client.connection.count{state}``
    becomes ``db_client_connection_count{alias,state}``)."""

    def collect(self) -> Iterable[Metric]:
        def family(name: str, text: str, labels: list[str] | None = None) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, labels=["alias", *(labels or [])])

        count = family(
            "db_client_connection_count",
            "Connections of the application's pool, idle or used, over every worker.",
            ["state"],
        )
        pending = family(
            "db_client_connection_pending_requests",
            "Requests waiting for a connection of the pool, over every worker.",
        )
        maximum = family("db_client_connection_max", "Pool max_size summed over the workers.")
        idle_min = family("db_client_connection_idle_min", "Pool min_size summed over the workers.")
        workers = family(
            "dbhealth_pool_workers", "Workers whose pool figures are in the shared cache."
        )
        # Counters since each worker started; a worker that exits leaves the sums.
        waited = family(
            "dbhealth_pool_wait_seconds",
            "Time requests waited for a pool connection, summed over the live workers.",
        )
        errors = family(
            "dbhealth_pool_errors",
            "Pool requests that failed or timed out, summed over the live workers.",
        )
        # How the last borrow through each worker's pool went (dashboard.poolpath).
        path = family(
            "dbhealth_pool_path_workers",
            "Workers whose last borrow from the application's pool ended each way:"
            " ok, exhausted (nothing lent in time) or failed (what it lent failed).",
            ["status"],
        )
        for alias, pool in pools.combined(results.aliases()).items():
            for status in ("ok", "exhausted", "failed"):
                took = sum(1 for figures in pool.workers if figures.path_status == status)
                path.add_metric([alias, status], float(took))
            count.add_metric([alias, "idle"], float(pool.available))
            count.add_metric([alias, "used"], float(pool.in_use))
            pending.add_metric([alias], float(pool.requests_waiting))
            maximum.add_metric([alias], float(pool.max_size))
            idle_min.add_metric([alias], float(pool.min_size))
            workers.add_metric([alias], float(len(pool.workers)))
            waited.add_metric([alias], pool.wait_ms / 1000)
            errors.add_metric([alias], float(pool.errors))
        yield from (count, pending, maximum, idle_min, workers, waited, errors, path)
        yield from _persistent_families()


def _persistent_families() -> Iterable[Metric]:
    """Persistent connections (``CONN_MAX_AGE``) the workers' request threads hold."""
    held = GaugeMetricFamily(
        "dbhealth_persistent_connections",
        "Open persistent connections of the request threads of every publishing worker, by"
        " what Django's is_usable() last said: usable, unusable or unchecked.",
        labels=["alias", "usable"],
    )
    oldest = GaugeMetricFamily(
        "dbhealth_persistent_connection_max_age_seconds",
        "Age of the oldest open persistent connection over every publishing worker.",
        labels=["alias"],
    )
    words = {True: "usable", False: "unusable", None: "unchecked"}
    for alias, view in persistent.combined(results.aliases()).items():
        found = view.open_connections
        for usable, word in words.items():
            held.add_metric([alias, word], float(sum(1 for c in found if c.usable is usable)))
        ages = [age for c in found if (age := c.age_s()) is not None]
        if ages:
            oldest.add_metric([alias], max(ages))
    yield from (held, oldest)


POOL_COLLECTOR = PoolCollector()
REGISTRY.register(POOL_COLLECTOR)

# Collectors whose figures come from the shared cache, not from this process's counters.
SHARED_COLLECTORS = (
    UP_COLLECTOR,
    OPS_COLLECTOR,
    MAINTENANCE_COLLECTOR,
    ACTIVITY_COLLECTOR,
    POOL_COLLECTOR,
)
