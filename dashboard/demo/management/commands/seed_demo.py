"""Fill every alias with its own recognisable demo rows (safe to run again)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, connections, router

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
PER_ALIAS = 4


def rows_for(alias: str, index: int) -> list[tuple[str, str, str]]:
    """(name, email, region) for this alias: a different slice of people per alias."""
    region = REGIONS.get(alias, alias.upper())
    start = (index * PER_ALIAS) % len(PEOPLE)
    chosen = (PEOPLE + PEOPLE)[start : start + PER_ALIAS]
    return [(f"{name} ({region})", f"{handle}@{alias}.example", region) for name, handle in chosen]


class Command(BaseCommand):
    help = "Seed demo customers and orders on every alias, and audit events on their alias."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--database", action="append", dest="aliases", help="Seed only this alias."
        )

    def handle(self, *args: Any, aliases: list[str] | None = None, **options: Any) -> None:
        for index, alias in enumerate(connections):
            if aliases and alias not in aliases:
                continue
            try:
                self.seed(alias, index)
            except DatabaseError as error:
                self.stderr.write(f"{alias}: not seeded ({type(error).__name__}).")

    def seed(self, alias: str, index: int) -> None:
        if router.allow_migrate_model(alias, Customer):
            for number, (name, email, region) in enumerate(rows_for(alias, index), start=1):
                customer, _ = Customer.objects.using(alias).get_or_create(
                    email=email, defaults={"name": name, "region": region}
                )
                Order.objects.using(alias).get_or_create(
                    reference=f"{alias[:3].upper()}-{1000 + number}",
                    defaults={
                        "customer": customer,
                        "total": Decimal(19 * number) + Decimal("0.99"),
                    },
                )
            self.stdout.write(f"{alias}: {Customer.objects.using(alias).count()} customers.")
        if router.allow_migrate_model(alias, AuditEvent):
            AuditEvent.objects.using(alias).get_or_create(
                action="demo seeded", defaults={"detail": f"Demo rows written to {alias}."}
            )
            self.stdout.write(f"{alias}: audit events live here.")
