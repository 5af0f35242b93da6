"""Prepare the demo site: migrate and seed the demo aliases, create the admin login.

The demo writes only to DEMO_ALIASES (this project's settings: the embedded SQLite files
when no DATABASE_URL* is set, otherwise only the aliases a .env names there). Every other
alias is watched by the dashboard and never migrated or written to by this command.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, connections

from dashboard.demo.management.commands.seed_demo import demo_aliases
from dashboard.probes import probe_all


class Command(BaseCommand):
    help = "Migrate and seed the demo aliases (DEMO_ALIASES) and create the 'admin' superuser."

    def handle(self, *args: Any, **options: Any) -> None:
        chosen = demo_aliases()
        self.announce(chosen)
        ready: list[str] = []
        for result in probe_all(chosen) if chosen else []:
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
        elif DEFAULT_DB_ALIAS in chosen:
            self.stderr.write(self.style.WARNING("No admin login: the default alias is not up."))
        else:
            self.stdout.write(
                "No admin login: default is not a demo alias. To log in, keep default on a "
                "local SQLite file and set DEMO_ALIASES=default (.env.example), or create "
                "the admin's tables there yourself (manage.py migrate, createsuperuser). "
                "/health/, /metrics and `manage.py dbhealth` work without them."
            )

    def announce(self, chosen: list[str]) -> None:
        """Say which aliases will be written to, and which left alone, before touching any."""
        others = [alias for alias in connections if alias not in chosen]
        if chosen:
            self.stdout.write(
                f"Demo aliases (DEMO_ALIASES): {', '.join(chosen)}. Migrating and seeding "
                "only these."
            )
        else:
            self.stdout.write("No demo alias (DEMO_ALIASES is empty): migrating nothing.")
        if others:
            self.stdout.write(
                f"Left alone, only watched: {', '.join(others)}. To put the demo on one, "
                "name it in DEMO_ALIASES (.env.example)."
            )

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
