"""Fill each demo alias with its own recognisable demo rows (safe to run again)."""

from __future__ import annotations

import re
import zlib
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, router

from dashboard.demo.models import AuditEvent, Customer, Order

PEOPLE = [
    ("Ada Lovelace", "ada"),
    ("Grace Hopper", "grace"),
    ("Alan Turing", "alan"),
    ("Edsger Dijkstra", "edsger"),
    ("Barbara Liskov", "barbara"),
    ("Donald Knuth", "donald"),
    ("Margaret Hamilton", "margaret"),
    ("Ken Thompson", "ken"),
    ("Frances Allen", "frances"),
    ("John Backus", "john"),
    ("Radia Perlman", "radia"),
    ("Tony Hoare", "tony"),
]
REGIONS = {"default": "US", "second_db": "EU"}
# Where each alias's slice of PEOPLE starts. It depends on the alias alone, never on
# how many aliases there are, so seeding again after adding one finds the same rows.
FIRST_PERSON = {"default": 0, "second_db": 4}
PER_ALIAS = 4


def demo_aliases() -> list[str]:
    """The aliases the demo may write to (DEMO_ALIASES in this project's settings)."""
    return list(getattr(settings, "DEMO_ALIASES", []))


def _domain(alias: str) -> str:
    # A domain label holds letters, digits and inner hyphens: "second_db" is "second-db".
    label = re.sub(r"[^a-z0-9]+", "-", alias.lower()).strip("-")[:50] or "alias"
    return f"{label}.example"


def rows_for(alias: str) -> list[tuple[str, str, str]]:
    """(name, email, region) for this alias: a different slice of people per alias."""
    region = REGIONS.get(alias, alias.upper())[:40]
    start = FIRST_PERSON.get(alias, zlib.crc32(alias.encode()) % len(PEOPLE))
    chosen = (PEOPLE + PEOPLE)[start : start + PER_ALIAS]
    return [(f"{name} ({region})", f"{handle}@{_domain(alias)}", region) for name, handle in chosen]


class Command(BaseCommand):
    help = "Seed demo customers and orders on each demo alias, and audit events on their alias."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database",
            action="append",
            dest="aliases",
            help="Seed only this alias (one of DEMO_ALIASES).",
        )

    def handle(self, *args: Any, aliases: list[str] | None = None, **options: Any) -> None:
        allowed = demo_aliases()
        refused = [alias for alias in aliases or [] if alias not in allowed]
        if refused:
            raise CommandError(
                f"Not a demo alias: {', '.join(refused)}. The demo writes only to "
                f"DEMO_ALIASES ({', '.join(allowed) or 'none'})."
            )
        for alias in aliases or allowed:
            try:
                self.seed(alias)
            except DatabaseError as error:
                self.stderr.write(f"{alias}: not seeded ({type(error).__name__}).")

    def seed(self, alias: str) -> None:
        if router.allow_migrate_model(alias, Customer):
            customers = Customer.objects.using(alias)
            # Customers there were seeded before (by any version of this command, whose
            # rows may differ) or are someone's own: either way the alias gets no more.
            if customers.exists():
                self.stdout.write(f"{alias}: {customers.count()} customers (already there).")
            else:
                self.seed_customers(alias)
                self.stdout.write(f"{alias}: {customers.count()} customers.")
        if router.allow_migrate_model(alias, AuditEvent):
            AuditEvent.objects.using(alias).get_or_create(
                action="demo seeded", defaults={"detail": f"Demo rows written to {alias}."}
            )
            self.stdout.write(f"{alias}: audit events live here.")

    def seed_customers(self, alias: str) -> None:
        for number, (name, email, region) in enumerate(rows_for(alias), start=1):
            customer = Customer.objects.using(alias).create(email=email, name=name, region=region)
            Order.objects.using(alias).get_or_create(
                reference=f"{alias[:3].upper()}-{1000 + number}",
                defaults={"customer": customer, "total": Decimal(19 * number) + Decimal("0.99")},
            )
