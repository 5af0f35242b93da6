"""Endpoints for load balancers and orchestrators.

``/health/`` answers from the cached results (a ``report.build`` that is not fresh), so
a burst of probes from a load balancer costs at most one ping per alias per cache TTL;
each alias's status is the verdict it is held at (FALL/RISE, ``dashboard.readiness``).
Both endpoints only read, and callers are machines that send no CSRF token: they are
exempt from CSRF, so any other method gets 405 rather than a CSRF 403.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from dashboard import healthjson, report, results
from dashboard.conf import get_settings
from dashboard.deadline import Deadline
from dashboard.permissions import Access, caller_access


def _health_json(body: dict[str, object], status: int) -> JsonResponse:
    return JsonResponse(body, status=status, content_type=healthjson.MEDIA_TYPE)


def denied() -> JsonResponse:
    response = _health_json(healthjson.error_document("invalid bearer token"), 401)
    response["WWW-Authenticate"] = 'Bearer realm="dbhealth", error="invalid_token"'
    return response


@csrf_exempt
@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    """Every alias (or ``?alias=a&alias=b``) as health+json; 503 when a critical one fails."""
    access = caller_access(request)
    if access is Access.REFUSED:
        return denied()
    wanted = request.GET.getlist("alias") or None
    if wanted is not None:
        unknown = sorted(set(wanted).difference(results.aliases()))
        if unknown:
            message = "unknown database alias: " + ", ".join(repr(a) for a in unknown)
            return _health_json(healthjson.error_document(message), 400)
    found = report.build(wanted, deadline=Deadline.after(get_settings().timeout))
    body = healthjson.document(found, detailed=access is Access.DETAILS)
    return _health_json(body, healthjson.HTTP_STATUS[body["status"]])


@csrf_exempt
@never_cache
@require_safe
def live(request: HttpRequest) -> JsonResponse:
    """Process liveness: answers while the process can serve; no database, no cache."""
    return JsonResponse({"status": "pass"}, content_type=healthjson.MEDIA_TYPE)
