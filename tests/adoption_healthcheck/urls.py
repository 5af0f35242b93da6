from __future__ import annotations

from django.urls import path
from health_check.views import HealthCheckView

from dashboard.contrib.health_check import every_alias

urlpatterns = [
    # Every alias, and beside them one of django-health-check's own checks.
    path("ht/", HealthCheckView.as_view(checks=[*every_alias(), "health_check.checks.Cache"])),
    # The servers the site cannot do without, for a load balancer.
    path("ht/ready/", HealthCheckView.as_view(checks=every_alias(["default", "reporting"]))),
]
