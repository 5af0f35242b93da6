"""The admin's autocomplete on a switched form: JSON always, even when the alias is down.

select2 asks ``/admin/autocomplete/?...&_db=<alias>`` while someone types. An alias
its last probe found down is answered at once, without a connection attempt (one
never probed is probed first, bounded by the probe timeout); one that fails during
the search is answered when it fails. Either way the answer is
``{"error": ..., "results": [], "pagination": {"more": false}}`` with status 503.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse

from dashboard import permissions, results
from dashboard.aliases import ALIAS_VAR
from dashboard.probes import error_text
from dashboard.switching.page import unavailable_text


def _unavailable(message: str) -> JsonResponse:
    return JsonResponse(
        {"error": message, "results": [], "pagination": {"more": False}}, status=503
    )


def guarded(view: Callable[[HttpRequest], HttpResponse], request: HttpRequest) -> HttpResponse:
    alias = request.GET.get(ALIAS_VAR)
    if alias is None or alias not in connections.settings:
        return view(request)
    known = results.last_known([alias])[alias]
    if known is None:  # nothing known at all: one probe, bounded, before a site connection
        known = results.latest([alias])[0]
    if not known.ok:
        details = permissions.can_view_details(request)
        return _unavailable(unavailable_text(known, details=details))
    try:
        return view(request)
    except DatabaseError as error:
        return _unavailable(f"Database {alias} failed: {error_text(alias, error)}")
