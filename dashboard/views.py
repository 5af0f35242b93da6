"""The db-health admin page, the table partial HTMX polls, and "Ping now".

The page and the partial render the same table template; HTMX swaps only the
table. Without JavaScript the page is a plain page and "Ping now" a plain form.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from dashboard import results as results_source
from dashboard.conf import get_settings
from dashboard.probes import ProbeResult
from dashboard.summary import alias_verdict, summarize

TABLE_TEMPLATE = "dashboard/_alias_table.html"


def _table_context(results: list[ProbeResult], *, pinged: str | None = None) -> dict[str, Any]:
    config = get_settings()
    return {
        "rows": [
            {"result": result, "verdict": alias_verdict(result, config.critical_aliases)}
            for result in results
        ],
        "summary": summarize(results, config.critical_aliases),
        "critical_aliases": config.critical_aliases,
        "poll_interval": config.poll_interval,
        "timeout": config.timeout,
        "pinged": pinged,
    }


def db_health_page(request: HttpRequest, site: AdminSite) -> TemplateResponse:
    context = {
        **site.each_context(request),
        **_table_context(results_source.latest()),
        "title": "Database health",
    }
    return TemplateResponse(request, "dashboard/db_health.html", context)


def db_health_table(request: HttpRequest, site: AdminSite) -> TemplateResponse:
    return TemplateResponse(request, TABLE_TEMPLATE, _table_context(results_source.latest()))


def ping_alias(request: HttpRequest, alias: str, site: AdminSite) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    page_url = reverse("admin:dbhealth", current_app=site.name)
    if alias not in results_source.aliases():
        messages.error(request, f"There is no database alias named “{alias}”.")
        return HttpResponseRedirect(page_url)
    (pinged,) = results_source.fresh([alias])
    if getattr(request, "htmx", False):
        current = [
            pinged if result.alias == alias else result for result in results_source.latest()
        ]
        return TemplateResponse(request, TABLE_TEMPLATE, _table_context(current, pinged=alias))
    if pinged.ok:
        messages.success(request, f"Pinged {alias}: up, {pinged.latency_ms:.1f} ms.")
    else:
        messages.error(request, f"Pinged {alias}: {pinged.status}, {pinged.error}")
    return HttpResponseRedirect(page_url)
