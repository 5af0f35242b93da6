from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class DashboardConfig(AppConfig):
    default = True
    name = "dashboard"
    verbose_name = "Database health"
    default_auto_field = "django.db.models.BigAutoField"


class DBHealthAdminConfig(admin_apps.AdminConfig):
    """Use in place of ``django.contrib.admin`` to make the db-health site the default."""

    default = False
    default_site = "dashboard.sites.DBHealthAdminSite"
