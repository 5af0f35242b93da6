from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import request_finished, request_started
from django.db.backends.signals import connection_created


class DashboardConfig(AppConfig):
    default = True
    name = "dashboard"
    verbose_name = "Database health"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from dashboard import checks as dbhealth_checks
        from dashboard import history, persistent, pools, readiness, workers
        from dashboard.conf import get_settings
        from dashboard.metrics import observe_probe
        from dashboard.probes import probe_finished

        # A settings mistake stops start-up here, in every process (gunicorn runs no
        # system checks): get_settings() refuses bad values, then what names nothing.
        get_settings()
        errors = dbhealth_checks.reference_errors()
        if errors:
            raise ImproperlyConfigured(f"{errors[0].msg} {errors[0].hint}")
        for check in dbhealth_checks.ALL:
            checks.register(check, "dbhealth")
        probe_finished.connect(observe_probe, dispatch_uid="dashboard.metrics.observe_probe")
        probe_finished.connect(history.record, dispatch_uid="dashboard.history.record")
        probe_finished.connect(readiness.record, dispatch_uid="dashboard.readiness.record")
        workers.register("pools", pools.SECTION)
        workers.register("persistent", persistent.SECTION)
        connection_created.connect(
            persistent.note_connection_created,
            dispatch_uid="dashboard.persistent.note_connection_created",
        )
        # After Django's close_old_connections (connected when django.db was imported):
        # a connection past its age or broken by an error is closed before it is noted.
        request_finished.connect(
            persistent.note_request_end, dispatch_uid="dashboard.persistent.note_request_end"
        )
        request_started.connect(
            workers.start_publishing, dispatch_uid="dashboard.workers.start_publishing"
        )


class DBHealthAdminConfig(admin_apps.AdminConfig):
    """Use in place of ``django.contrib.admin`` to make the db-health site the default."""

    default = False
    default_site = "dashboard.sites.DBHealthAdminSite"
