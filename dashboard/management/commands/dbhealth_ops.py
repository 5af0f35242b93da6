"""``manage.py dbhealth_ops``: the ops kit shipped with the app, wherever pip put it.

Without options it lists the files; ``--rules`` prints the Prometheus alert rules and
``--dashboard`` the Grafana dashboard, ready to redirect into a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

OPS_DIR = Path(__file__).resolve().parent.parent.parent / "ops"
FILES = {
    "rules": ("prometheus-rules.yml", "Prometheus alert rules (rule_files:)"),
    "rules_tests": ("prometheus-rules.test.yml", "their unit tests (promtool test rules)"),
    "dashboard": ("grafana-dashboard.json", "Grafana dashboard (Dashboards > Import)"),
}


class Command(BaseCommand):
    help = "Print the shipped Prometheus alert rules or Grafana dashboard, or list where they are."

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--rules", action="store_true", help="print the alert rules (YAML)")
        which.add_argument("--dashboard", action="store_true", help="print the dashboard (JSON)")

    def handle(self, *args: Any, **options: Any) -> None:
        for key in ("rules", "dashboard"):
            if options[key]:
                self.stdout.write((OPS_DIR / FILES[key][0]).read_text(), ending="")
                return
        for name, what in FILES.values():
            self.stdout.write(f"{OPS_DIR / name}  {what}")
