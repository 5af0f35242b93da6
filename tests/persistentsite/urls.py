from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as project_urls


def touch(request: HttpRequest) -> HttpResponse:
    """One query on this thread's persistent connection (opened by the first)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("touched\n", content_type="text/plain")


urlpatterns = [path("touch/", touch), *project_urls]
