"""This project's URLs plus ``POST /bench/reset/``, for the sites of ``bench.site_settings``.

A row that measures cold answers calls the reset between measurements: it empties the
served process's cache (results, history, its short-lived local copies) and waits,
bounded, for probes still running there, so the next answer starts from nothing and
joins no straggler.
"""

from __future__ import annotations

import time

from django.core.cache import caches
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.urls import urlpatterns as project_urlpatterns
from dashboard.conf import get_settings
from dashboard.probes import in_flight
from dashboard.results import forget_local

STRAGGLER_WAIT_SECONDS = 10.0


@csrf_exempt
@require_POST
def reset(request: HttpRequest) -> JsonResponse:
    deadline = time.monotonic() + STRAGGLER_WAIT_SECONDS
    while in_flight() and time.monotonic() < deadline:
        time.sleep(0.02)
    caches[get_settings().cache].clear()
    forget_local()
    return JsonResponse({"in_flight": in_flight()})


urlpatterns = [path("bench/reset/", reset), *project_urlpatterns]
