"""Endpoints for load balancers and orchestrators."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe


@never_cache
@require_safe
def live(request: HttpRequest) -> JsonResponse:
    """Process liveness: answers while the process can serve; touches no database."""
    return JsonResponse({"status": "pass"}, content_type="application/health+json")
