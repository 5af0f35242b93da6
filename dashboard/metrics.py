"""``/metrics``: Prometheus text from the app's own registry (not the global one).

``dbhealth_up`` is read from the cached ``results.latest()`` at scrape time, so
scrapes cannot ping more often than the cache TTL. The latency histogram and the
failure counter are fed by ``probe_finished``: they count the probes this process ran.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from dashboard import results
from dashboard.conf import get_settings
from dashboard.permissions import Access, caller_access, has_session
from dashboard.probes import ProbeResult

REGISTRY = CollectorRegistry()

LATENCY = Histogram(
    "dbhealth_latency_seconds",
    "Time a probe took to connect, and to run its statement, per alias.",
    ["alias", "phase"],
    # From a local SQLite file (0.1 ms) to a probe that hit its timeout.
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
FAILURES = Counter(
    "dbhealth_probe_failures",
    "Probes that found an alias down or timed out.",
    ["alias", "status"],
    registry=REGISTRY,
)


class UpCollector:
    """``dbhealth_up{alias,vendor}``: 1 when the latest result is up, else 0."""

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily(
            "dbhealth_up",
            "Whether the alias answered its latest probe.",
            labels=["alias", "vendor"],
        )
        for result in results.latest():
            gauge.add_metric([result.alias, result.vendor], 1.0 if result.ok else 0.0)
        yield gauge


REGISTRY.register(UpCollector())


def observe_probe(sender: Any, result: ProbeResult, **kwargs: Any) -> None:
    """Receiver of ``probe_finished`` (connected in ``DashboardConfig.ready``)."""
    if result.connect_ms is not None:
        LATENCY.labels(alias=result.alias, phase="connect").observe(result.connect_ms / 1000)
    if result.query_ms is not None:
        LATENCY.labels(alias=result.alias, phase="query").observe(result.query_ms / 1000)
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
    return HttpResponse(encoder(REGISTRY), content_type=content_type)
