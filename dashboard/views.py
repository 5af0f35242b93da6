"""The db-health admin page, the table partial HTMX polls, "Ping now", and the alias page.

The page and the partial render the same table template; HTMX swaps only the
table. Without JavaScript the page is a plain page and "Ping now" a plain form.
The alias page loads its server vitals with HTMX from a partial; without JavaScript
its "Read server vitals" link reloads the page with the vitals in it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import reverse

from dashboard import drift, history, permissions, vitals
from dashboard import results as results_source
from dashboard.conf import get_settings
from dashboard.probes import ProbeResult
from dashboard.summary import alias_verdict, summarize

TABLE_TEMPLATE = "dashboard/_alias_table.html"
VITALS_TEMPLATE = "dashboard/_vitals.html"


def _table_context(results: list[ProbeResult], *, pinged: str | None = None) -> dict[str, Any]:
    config = get_settings()
    windows = history.windows([result.alias for result in results], current=results)
    drifts = drift.for_results(results)
    return {
        "rows": [
            {
                "result": result,
                "verdict": alias_verdict(result, config.critical_aliases),
                "history": windows[result.alias],
                "drift": drifts[result.alias],
            }
            for result in results
        ],
        "history_length": config.history_length,
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
        **permissions.template_flags(request),
        "title": "Database health",
    }
    return TemplateResponse(request, "dashboard/db_health.html", context)


def db_health_table(request: HttpRequest, site: AdminSite) -> TemplateResponse:
    context = {**_table_context(results_source.latest()), **permissions.template_flags(request)}
    return TemplateResponse(request, TABLE_TEMPLATE, context)


def ping_alias(request: HttpRequest, alias: str, site: AdminSite) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not permissions.can_ping(request):
        raise PermissionDenied("Pinging an alias needs the permission dashboard.ping_alias.")
    flags = permissions.template_flags(request)
    page_url = reverse("admin:dbhealth", current_app=site.name)
    if alias not in results_source.aliases():
        messages.error(request, f"There is no database alias named “{alias}”.")
        return HttpResponseRedirect(page_url)
    (pinged,) = results_source.fresh([alias])
    if getattr(request, "htmx", False):
        current = [
            pinged if result.alias == alias else result for result in results_source.latest()
        ]
        context = {**_table_context(current, pinged=alias), **flags}
        return TemplateResponse(request, TABLE_TEMPLATE, context)
    if pinged.ok:
        messages.success(request, f"Pinged {alias}: up, {pinged.latency_ms:.1f} ms.")
    elif flags["show_details"]:
        messages.error(request, f"Pinged {alias}: {pinged.status}, {pinged.error}")
    else:
        messages.error(request, f"Pinged {alias}: {pinged.status}.")
    return HttpResponseRedirect(page_url)


def _vitals_context(result: ProbeResult) -> dict[str, Any]:
    # A server that failed its probe is not asked again: vitals wait for it to be up.
    return {
        "alias": result.alias,
        "result": result,
        "vitals": vitals.read(result.alias) if result.ok else None,
        "timeout": get_settings().timeout,
    }


def alias_page(request: HttpRequest, alias: str, site: AdminSite) -> HttpResponse:
    flags = permissions.template_flags(request)
    if alias not in results_source.aliases():
        messages.error(request, f"There is no database alias named “{alias}”.")
        return HttpResponseRedirect(reverse("admin:dbhealth", current_app=site.name))
    config = get_settings()
    (result,) = results_source.latest([alias])
    context = {
        **site.each_context(request),
        **flags,
        "title": f"Database alias “{alias}”",
        "alias": alias,
        "result": result,
        "verdict": alias_verdict(result, config.critical_aliases),
        "is_critical": alias in config.critical_aliases,
        "history": history.window(alias, current=result),
        "history_length": config.history_length,
        "drift": drift.for_results([result])[alias] if flags["show_details"] else None,
        "timeout": config.timeout,
        # Without JavaScript, the "Read server vitals" link asks for them in the page.
        "inline_vitals": _vitals_context(result)
        if "vitals" in request.GET and flags["show_details"]
        else None,
    }
    return TemplateResponse(request, "dashboard/alias_detail.html", context)


def alias_vitals(request: HttpRequest, alias: str, site: AdminSite) -> TemplateResponse:
    if not permissions.can_view_details(request):
        raise PermissionDenied("Server vitals need the permission dashboard.view_details.")
    if alias not in results_source.aliases():
        raise Http404(f"There is no database alias named “{alias}”.")
    (result,) = results_source.latest([alias])
    return TemplateResponse(request, VITALS_TEMPLATE, _vitals_context(result))
