"""Who may see what: the app's permissions, asked of a request's user or its bearer token.

Any staff user sees statuses and latencies. Hosts, ports, database names, versions,
errors, vitals and migrations drift need ``dashboard.view_details``; "Ping now" needs
``dashboard.ping_alias``. Superusers hold every permission. Machines (a load balancer,
Prometheus) send ``Authorization: Bearer <DBHEALTH["TOKEN"]>`` instead of a session.
"""

from __future__ import annotations

import hmac
from enum import Enum
from typing import Any

from django.http import HttpRequest

from dashboard.conf import get_settings

VIEW_DETAILS = "dashboard.view_details"
PING_ALIAS = "dashboard.ping_alias"


def _staff_holding(request: HttpRequest, permission: str) -> bool:
    # Staff as well as the permission: a permission granted to an account that cannot
    # open the admin must not unlock details on /health/ either.
    user: Any = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff and user.has_perm(permission))


def can_view_details(request: HttpRequest) -> bool:
    """Hosts, versions, errors, vitals and drift for this request's user."""
    return _staff_holding(request, VIEW_DETAILS)


def can_ping(request: HttpRequest) -> bool:
    """Whether this request's user may probe an alias now ("Ping now")."""
    return _staff_holding(request, PING_ALIAS)


class Access(Enum):
    """What a caller of ``/health/`` or ``/metrics`` may see."""

    DETAILS = "details"  # the bearer token, or a staff session holding view_details
    STATUSES = "statuses"  # no credentials, or a session without view_details
    REFUSED = "refused"  # a bearer token that is not DBHEALTH["TOKEN"]


def caller_access(request: HttpRequest) -> Access:
    """A bearer token decides when one is sent; otherwise the session's permissions do."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        token = get_settings().token
        sent = credentials.strip()
        if token and hmac.compare_digest(sent.encode(), token.encode()):
            return Access.DETAILS
        return Access.REFUSED
    return Access.DETAILS if can_view_details(request) else Access.STATUSES


def has_session(request: HttpRequest) -> bool:
    """Whether a user is logged in (a 403, not a 401, when they lack a permission)."""
    user: Any = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated)


def template_flags(request: HttpRequest) -> dict[str, bool]:
    """What the db-health templates may show this user: ``show_details``, ``can_ping``."""
    return {"show_details": can_view_details(request), "can_ping": can_ping(request)}
