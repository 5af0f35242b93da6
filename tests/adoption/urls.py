from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from tests.adoption import backoffice, plain_admin

urlpatterns = [
    path("admin/", admin.site.urls),
    path("backoffice/", backoffice.site.urls),
    path("plain/", plain_admin.site.urls),
    path("", include("dashboard.urls")),  # dbhealth: /health/, /health/live/, /metrics
]
