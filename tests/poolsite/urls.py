from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as project_urls


def hold(request: HttpRequest) -> HttpResponse:
    """Holds one connection of this worker's pool for ``?seconds=``."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [float(request.GET.get("seconds", "0"))])
    return HttpResponse("held\n", content_type="text/plain")


urlpatterns = [path("hold/", hold), *project_urls]
