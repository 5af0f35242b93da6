"""The db-health admin page, the table partial HTMX polls, "Ping now", and the alias page.

The page and the partial render the same table template; HTMX swaps only the
table. Without JavaScript the page is a plain page and "Ping now" a plain form.
The alias page shows its server vitals read within the page's own deadline (riding on
the probe's connection when it probes); the vitals partial reads them again on demand.
Every view makes one deadline and spends it on everything it shows (``dashboard.report``).
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
from django_htmx.http import push_url

from dashboard import cancel, history, overview, permissions, report
from dashboard import results as results_source
from dashboard.conf import get_settings
from dashboard.deadline import Deadline
from dashboard.report import Report

TABLE_TEMPLATE = "dashboard/_alias_table.html"
ROW_TEMPLATE = "dashboard/_alias_row.html"
VITALS_TEMPLATE = "dashboard/_vitals.html"
# id of the page's filter form; HTMX sends it as HX-Trigger when the filter changes.
FILTER_ID = "dbhealth-filter"


def _deadline() -> Deadline:
    """The one deadline of this answer: everything the view runs spends from it."""
    return Deadline.after(get_settings().timeout)


def _page_report() -> Report:
    # History is read later, for the aliases the page shows in full only.
    return report.build(deadline=_deadline(), with_drift=True)


def _table_context(
    found: Report, *, request: HttpRequest, pinged: str | None = None
) -> dict[str, Any]:
    config = get_settings()
    page_filter = overview.Filter.from_query(request.GET)
    return {
        "overview": overview.build(
            found,
            page_filter,
            warn_ms=config.warn_ms,
            windows=lambda aliases: history.windows(aliases, current=found.results),
        ),
        "conditions": overview.CONDITIONS,
        **permissions.template_flags(request),
        "history_length": config.history_length,
        "summary": found.summary,
        "critical_aliases": found.critical_aliases,
        "poll_interval": config.poll_interval,
        "timeout": config.timeout,
        "pinged": pinged,
    }


def db_health_page(request: HttpRequest, site: AdminSite) -> TemplateResponse:
    context = {
        **site.each_context(request),
        **_table_context(_page_report(), request=request),
        "title": "Database health",
    }
    return TemplateResponse(request, "dashboard/db_health.html", context)


def db_health_table(request: HttpRequest, site: AdminSite) -> TemplateResponse:
    response = TemplateResponse(
        request, TABLE_TEMPLATE, _table_context(_page_report(), request=request)
    )
    if request.headers.get("HX-Trigger") == FILTER_ID:
        # The filter is in the page's URL, so an on-call link can point at it.
        query = overview.Filter.from_query(request.GET).query_string()
        page_url = reverse("admin:dbhealth", current_app=site.name)
        push_url(response, f"{page_url}?{query}" if query else page_url)
    return response


def _unknown_alias(request: HttpRequest, alias: str, site: AdminSite) -> HttpResponseRedirect:
    messages.error(request, f"There is no database alias named “{alias[:80]}”.")
    return HttpResponseRedirect(reverse("admin:dbhealth", current_app=site.name))


def ping_alias(request: HttpRequest, alias: str, site: AdminSite) -> HttpResponse:
    """Probe one alias now; waits for that alias only and (HTMX) re-renders its row."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not permissions.can_ping(request):
        raise PermissionDenied("Pinging an alias needs the permission dashboard.ping_alias.")
    if alias not in results_source.aliases():
        return _unknown_alias(request, alias, site)
    flags = permissions.template_flags(request)
    found = report.build([alias], deadline=_deadline(), fresh=True, with_drift=True,
                         with_history=True)  # fmt: skip
    pinged = found.row(alias).result
    if getattr(request, "htmx", False):
        context = {**_table_context(found, request=request, pinged=alias), "row": found.row(alias)}
        return TemplateResponse(request, ROW_TEMPLATE, context)
    if pinged.ok:
        messages.success(request, f"Pinged {alias}: up, {pinged.latency_ms:.1f} ms.")
    elif flags["show_details"]:
        messages.error(request, f"Pinged {alias}: {pinged.status}, {pinged.error}")
    else:
        messages.error(request, f"Pinged {alias}: {pinged.status}.")
    return HttpResponseRedirect(reverse("admin:dbhealth", current_app=site.name))


def _alias_report(alias: str, *, with_details: bool) -> Report:
    # Without the permission to see them, nothing is read that the page would not show.
    details = [alias] if with_details else []
    return report.build(
        [alias],
        deadline=_deadline(),
        with_drift=with_details,
        with_history=True,
        vitals_for=details,
        activity_for=details,
        maintenance_for=details,
        incidents_for=details,
    )


def alias_page(request: HttpRequest, alias: str, site: AdminSite) -> HttpResponse:
    """One alias: its probe, history, migrations and server vitals, by one deadline."""
    if alias not in results_source.aliases():
        return _unknown_alias(request, alias, site)
    config = get_settings()
    flags = permissions.template_flags(request)
    # Sessions name users, clients and queries: details, not a status.
    may_see_activity = flags["show_details"]
    row = _alias_report(alias, with_details=may_see_activity).row(alias)
    context = {
        **site.each_context(request),
        **flags,
        "title": f"Database alias “{alias}”",
        "alias": alias,
        "row": row,
        "result": row.result,
        "verdict": row.verdict,
        "is_critical": row.is_critical,
        "history": row.history,
        "history_length": config.history_length,
        "drift": row.drift,
        "vitals": row.vitals,
        "may_see_activity": may_see_activity,
        "may_cancel": may_see_activity and cancel.may_cancel(request),
        "activity": row.activity,
        "maintenance": row.maintenance,
        "incidents": row.incidents,
        "timeout": config.timeout,
    }
    return TemplateResponse(request, "dashboard/alias_detail.html", context)


def alias_vitals(request: HttpRequest, alias: str, site: AdminSite) -> TemplateResponse:
    """The vitals partial ("Read again"): a fresh read, by its own deadline."""
    if not permissions.can_view_details(request):
        raise PermissionDenied("Server vitals need the permission dashboard.view_details.")
    if alias not in results_source.aliases():
        raise Http404(f"There is no database alias named “{alias[:80]}”.")
    found = report.build([alias], deadline=_deadline(), vitals_for=[alias]).row(alias)
    context = {
        "alias": alias,
        "result": found.result,
        "vitals": found.vitals,
        "timeout": get_settings().timeout,
    }
    return TemplateResponse(request, VITALS_TEMPLATE, context)
