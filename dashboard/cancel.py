"""Cancel a query or terminate a session on a database server, from the alias page.

Only for users holding ``dashboard.cancel_session``, and only where the site sets
``DBHEALTH["ALLOW_CANCEL"]``; anyone else gets 403 and nothing is done. A GET shows a
confirmation naming the session and its (cleaned) query; the POST (with CSRF) does it
on a fresh bounded connection from the probe scheduler and records it in the admin log
with the alias. The session must be one the activity lists now, which never includes
the reading session itself; the caller's own session (this request's connection to the
alias) and the probe's sessions are refused.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from dashboard import activity, probes
from dashboard import results as results_source
from dashboard.activity import Session
from dashboard.conf import get_settings
from dashboard.deadline import Deadline
from dashboard.models import DatabaseHealth
from dashboard.vendors import Vendor

DONE = {"cancel": "Cancelled the query of", "terminate": "Terminated"}
PROBE_APPLICATION = "dbhealth-probe"


def may_cancel(request: HttpRequest) -> bool:
    return get_settings().allow_cancel and request.user.has_perm("dashboard.cancel_session")


def _own_session(alias: str) -> int | None:
    """The server's id of this process's own open connection to ``alias`` (if any)."""
    raw = connections[alias].connection
    if raw is None:
        return None
    info = getattr(raw, "info", None)
    if info is not None and hasattr(info, "backend_pid"):
        return int(info.backend_pid)
    thread_id = getattr(raw, "thread_id", None)
    return int(thread_id()) if callable(thread_id) else None


def _listed(alias: str, session_id: int, deadline: Deadline) -> Session | None:
    found = activity.read(alias, deadline=deadline)
    sessions = [*found.running, *found.idle_in_transaction, *(r.session for r in found.blocking)]
    return next((s for s in sessions if s.id == session_id and s.state != "not listed"), None)


def _refusal(alias: str, session: Session | None, session_id: int) -> str | None:
    if session is None:
        return f"Session {session_id} on {alias} is not running a query or a transaction now."
    if session.id == _own_session(alias):
        return f"Session {session_id} is this site's own connection to {alias}."
    if session.application == PROBE_APPLICATION:
        return f"Session {session_id} is a dbhealth probe."
    return None


def _run(action: str, session_id: int) -> probes.Extra:
    def work(alias: str, vendor: Vendor, connection: Any, deadline: Deadline) -> bool:
        sessions = vendor.sessions
        if sessions is None:
            raise LookupError(f"{vendor.name} has no sessions to {action}")
        # The vendor's statement takes the session id as its one parameter.
        statement = sessions.cancel if action == "cancel" else sessions.terminate
        cursor = connection.cursor()
        try:
            cursor.execute(statement, [session_id])
            row = cursor.fetchone() if cursor.description else None
        finally:
            cursor.close()
        return bool(row[0]) if row else True

    return work


def session_action(
    request: HttpRequest, alias: str, session_id: int, action: str, site: AdminSite
) -> HttpResponse:
    """GET: the confirmation; POST: cancel or terminate, then back to the alias page."""
    if action not in DONE:
        raise Http404("There is no such action.")
    if not may_cancel(request):
        raise PermissionDenied("Cancelling server sessions is not allowed here.")
    if alias not in results_source.aliases():
        raise Http404(f"There is no database alias named “{alias[:80]}”.")
    back = reverse("admin:dbhealth_alias", args=[alias], current_app=site.name)
    deadline = Deadline.after(get_settings().timeout)
    session = _listed(alias, session_id, deadline)
    refused = _refusal(alias, session, session_id)
    if refused is not None or session is None:
        messages.error(request, refused or "Not found.")
        return HttpResponseRedirect(back)
    if request.method != "POST":
        context = {
            **site.each_context(request),
            "title": f"{action.capitalize()} session {session_id} on “{alias}”?",
            "alias": alias,
            "session": session,
            "action": action,
            "back": back,
        }
        return TemplateResponse(request, "dashboard/session_confirm.html", context)
    future = probes.run_on_connection(alias, deadline, _run(action, session_id))
    try:
        done = bool(future.result(timeout=deadline.remaining()))
    except Exception as error:
        messages.error(request, f"Could not {action} session {session_id} on {alias}: "
                                f"{probes.error_text(alias, error)}")  # fmt: skip
        return HttpResponseRedirect(back)
    if not done:
        messages.error(request, f"Session {session_id} on {alias} had already ended.")
        return HttpResponseRedirect(back)
    text = f"{DONE[action]} session {session_id} ({session.user}) on alias {alias}: {session.query}"
    LogEntry.objects.create(
        user_id=cast(int, request.user.pk),  # admin_view let only a logged-in user here
        content_type=ContentType.objects.get_for_model(DatabaseHealth),
        object_id=alias,
        object_repr=f"{alias}: session {session_id}"[:200],
        action_flag=CHANGE,
        change_message=text,
    )
    messages.success(request, text)
    return HttpResponseRedirect(back)
