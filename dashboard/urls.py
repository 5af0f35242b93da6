"""Machine-facing URLs; include at the site root: ``path("", include("dashboard.urls"))``."""

from __future__ import annotations

from django.urls import URLPattern, path

from dashboard import health, metrics

app_name = "dashboard"

urlpatterns: list[URLPattern] = [
    path("health/", health.health, name="health"),
    path("health/live/", health.live, name="health_live"),
    path("metrics", metrics.metrics, name="metrics"),
]
