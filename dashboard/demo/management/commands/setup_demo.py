"""Prepare the demo site: migrate every reachable alias, seed it, create the admin login."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS

from dashboard.probes import probe_all


class Command(BaseCommand):
    help = "Migrate every reachable alias, seed demo data and create the 'admin' superuser."

    def handle(self, *args: Any, **options: Any) -> None:
        ready: list[str] = []
        for result in probe_all():
            # A new SQLite file is created by migrate; a probe never creates one.
            creates_file = result.vendor == "sqlite" and "unable to open" in (result.error or "")
            if creates_file:
                Path(result.name).parent.mkdir(parents=True, exist_ok=True)
            elif not result.ok:
                self.stderr.write(
                    self.style.WARNING(f"{result.alias}: skipped, {result.status}: {result.error}")
                )
                continue
            call_command("migrate", database=result.alias, interactive=False, verbosity=0)
            self.stdout.write(f"{result.alias}: migrated ({result.vendor}, {result.location}).")
            ready.append(result.alias)
        if ready:
            call_command("seed_demo", database=ready, stdout=self.stdout, stderr=self.stderr)
        if DEFAULT_DB_ALIAS in ready:
            self.ensure_admin()
        else:
            self.stderr.write(self.style.WARNING("No admin login: the default alias is not up."))

    def ensure_admin(self) -> None:
        User = get_user_model()
        if User.objects.filter(username="admin").exists():
            self.stdout.write(
                "Admin login: admin (exists; its password was printed when it was created, "
                "reset it with `.venv/bin/python manage.py changepassword admin`)."
            )
            return
        chosen = str(getattr(settings, "DEMO_ADMIN_PASSWORD", "") or "")
        password = chosen or secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "admin@localhost", password)
        shown = "from DJANGO_SUPERUSER_PASSWORD" if chosen else password
        self.stdout.write(self.style.SUCCESS(f"Admin login: admin / {shown}  (printed once)"))
