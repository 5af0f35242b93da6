"""``manage.py dbhealth``: probe every alias now and answer like a Nagios plugin.

Exit status 0 OK, 1 WARNING (a non-critical alias down, or slower than WARN_MS),
2 CRITICAL (a critical alias down), 3 UNKNOWN (bad arguments or an unknown alias).
Always probes (never the cache); ``--watch`` repeats until Ctrl-C. ``--json`` adds each
alias's server vitals, activity, migrations drift and incident snapshots (what its
server was doing when it last turned down or slow); a maintenance danger (an integer
key near the end of its range, transaction-ID wraparound, an invalid index) is a
WARNING; ``--check-migrations`` makes an alias with unapplied migrations a WARNING.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from argparse import ArgumentTypeError
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.color import Style, color_style, no_style

from dashboard import drift, healthjson, maintenance, persistent, pools, report, results
from dashboard.conf import RANGES, get_settings
from dashboard.deadline import Deadline
from dashboard.nagios import State, describe, is_slow, perfdata, state_of, status_line
from dashboard.report import Report

# STATUS is the last probe; VERDICT the state the alias is held at (FALL/RISE), HELD since when.
COLUMNS = (
    "ALIAS", "STATUS", "VENDOR", "WHERE", "DATABASE", "CONNECT", "QUERY", "VERDICT", "HELD",
    "VERSION", "ERROR",
)  # fmt: skip
CLEAR_SCREEN = "\x1b[H\x1b[2J"


class _Interrupts:
    """Ctrl-C during a round asks to stop when the round ends (its probes and locks are
    let go in order); a second Ctrl-C, or one between rounds, stops at once."""

    def __init__(self) -> None:
        self.in_round = False
        self.stop_after_round = False

    def interrupted(self, signum: int, frame: Any) -> None:
        if self.in_round and not self.stop_after_round:
            self.stop_after_round = True
            return
        raise KeyboardInterrupt


class NagiosArgumentParser(CommandParser):
    """Bad arguments are UNKNOWN (3): argparse's own 2 would read as CRITICAL."""

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            self.print_usage(sys.stderr)
            self.exit(int(State.UNKNOWN), f"{self.prog}: error: {message}\n")
        raise CommandError(f"Error: {message}", returncode=State.UNKNOWN)


def positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise ArgumentTypeError(f"must be a number of seconds above 0, got {value!r}")
    return seconds


def timeout_seconds(value: str) -> float:
    """A round's deadline, within the range ``DBHEALTH['TIMEOUT']`` accepts."""
    seconds = positive_seconds(value)
    low, high = RANGES["TIMEOUT"]
    if not low <= seconds <= high:
        raise ArgumentTypeError(f"must be between {low:g} and {high:g} seconds, got {value!r}")
    return seconds


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _aligned(
    cells: list[str], widths: list[int], colour_status: Callable[[str], str] | None = None
) -> str:
    padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=True)]
    if colour_status is not None:
        padded[1] = colour_status(padded[1])
    return "  ".join(padded).rstrip()


class Command(BaseCommand):
    help = "Probe every database alias now; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."
    # A monitoring command must answer even when an unrelated system check fails.
    requires_system_checks: list[str] = []

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds a plain CommandParser; ours differs only in error().
        parser.__class__ = NagiosArgumentParser
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--alias",
            action="append",
            metavar="ALIAS",
            help="Probe only this alias (repeatable). Default: every alias.",
        )
        parser.add_argument(
            "--timeout",
            type=timeout_seconds,
            metavar="SECONDS",
            help="Deadline for the whole probe round. Default: DBHEALTH['TIMEOUT'].",
        )
        parser.add_argument(
            "--watch",
            type=positive_seconds,
            metavar="SECONDS",
            help="Probe again every SECONDS until Ctrl-C; exit with the last round's status.",
        )
        parser.add_argument(
            "--check-migrations",
            action="store_true",
            help="Exit 1 (WARNING) when an alias that is up has unapplied migrations.",
        )
        output = parser.add_mutually_exclusive_group()
        output.add_argument(
            "--json", action="store_true", help="Print the detailed health+json document."
        )
        output.add_argument(
            "--nagios", action="store_true", help="Print one Nagios plugin line with perfdata."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        wanted: list[str] | None = options["alias"]
        unknown = sorted(set(wanted or ()).difference(results.aliases()))
        if unknown:
            raise CommandError(
                f"Unknown database alias {unknown[0]!r}; "
                f"configured: {', '.join(results.aliases())}.",
                returncode=State.UNKNOWN,
            )
        colour = options["force_color"] or (not options["no_color"] and self.stdout.isatty())
        style = color_style(force_color=True) if colour else no_style()
        if options["watch"] is None:
            state = self._round(wanted, options, style)
        else:
            state = self._watch(wanted, options, style, options["watch"])
        if state is not State.OK:
            raise SystemExit(int(state))

    def _watch(
        self, wanted: list[str] | None, options: dict[str, Any], style: Style, every: float
    ) -> State:
        """Rounds until Ctrl-C. The first Ctrl-C ends the watch after the round in progress
        (bounded by the timeout), so no lock or probe is abandoned half way; a second one
        stops at once."""
        state = State.UNKNOWN  # interrupted before a round ended: nothing was checked
        watch = _Interrupts()
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, watch.interrupted) if in_main else None
        try:
            while True:
                watch.in_round = True
                state = self._round(wanted, options, style, watching=every)
                watch.in_round = False
                if watch.stop_after_round:
                    break
                time.sleep(every)  # nothing is held here: Ctrl-C stops at once
        except KeyboardInterrupt:
            pass
        finally:
            if in_main:
                signal.signal(signal.SIGINT, previous)
        self.stdout.write("")
        return state

    def _round(
        self,
        wanted: list[str] | None,
        options: dict[str, Any],
        style: Style,
        *,
        watching: float | None = None,
    ) -> State:
        config = get_settings()
        timeout = options["timeout"] or config.timeout
        # One deadline for the whole round: probes, migrations and vitals spend from it.
        found = report.build(
            wanted,
            deadline=Deadline.after(timeout),
            fresh=True,
            with_drift=options["json"] or options["check_migrations"],
            vitals_for=results.aliases() if options["json"] else (),
            activity_for=results.aliases() if options["json"] else (),
            incidents_for=results.aliases() if options["json"] else (),
            # Keys near overflow or wraparound are a WARNING whatever else is asked.
            maintenance_for=results.aliases(),
        )
        probed = found.results
        state = state_of(found, config.warn_ms)
        drifts = found.drifts
        concerns = drift.problems(drifts.values()) if options["check_migrations"] else []
        concerns += maintenance.problems(found.maintenances)
        seen = {row.alias: row.pool for row in found.rows if row.pool is not None}
        concerns += pools.problems(seen.values())
        kept = {row.alias: row.persistent for row in found.rows if row.persistent is not None}
        concerns += persistent.problems(kept.values())
        if concerns:
            state = max(state, State.WARNING)
        if options["json"]:
            document = healthjson.document(found, detailed=True)
            document["notes"].extend(line for line in concerns if line not in document["notes"])
            for row in found.rows:
                (entry,) = document["checks"][healthjson.check_key(row.alias)]
                entry["migrations"] = row.drift.as_json() if row.drift else None
                entry["vitals"] = row.vitals.as_json() if row.vitals and row.result.ok else None
                entry["activity"] = row.activity.as_json() if row.activity else None
                entry["maintenance"] = row.maintenance.as_json() if row.maintenance else None
                entry["incidents"] = [snapshot.as_json() for snapshot in row.incidents]
            indent = None if watching else 2
            self.stdout.write(json.dumps(document, indent=indent))
        elif options["nagios"] and concerns:
            text = "; ".join([*concerns, describe(found, config.warn_ms)])
            performance = perfdata(probed, config.warn_ms, timeout * 1000)
            self.stdout.write(f"DBHEALTH {state.name} - {text} | {performance}")
        elif options["nagios"]:
            self.stdout.write(status_line(found, warn_ms=config.warn_ms, timeout=timeout))
        else:
            if watching is not None:
                if self.stdout.isatty():
                    # Probe first, then clear: the old table stays up while a round runs.
                    self.stdout.write(CLEAR_SCREEN, ending="")
                now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
                self.stdout.write(f"dbhealth at {now}, every {watching:g} s (Ctrl-C stops)\n")
            self._table(found, config.warn_ms, style)
            for alias, pool in seen.items():
                self.stdout.write(f"{alias} pool: {pool.text}")
            for alias, view in kept.items():
                self.stdout.write(f"{alias} {view.text}")
            text = "; ".join([*concerns, describe(found, config.warn_ms)])
            self.stdout.write(self._styled(style, state)(f"{state.name}: {text}"))
        self.stdout.flush()
        return state

    def _table(self, found: Report, warn_ms: float, style: Style) -> None:
        rows = [
            [
                row.alias + ("*" if row.is_critical else ""),
                row.result.status,
                row.result.vendor,
                row.result.location,
                "" if row.result.is_file else row.result.name,
                _ms(row.result.connect_ms),
                _ms(row.result.query_ms),
                row.verdict + (" flapping" if row.is_flapping else ""),
                row.held or "-",
                row.result.server_version or "-",
                row.result.error or "",
            ]
            for row in found.rows
        ]
        widths = [max(len(row[i]) for row in [list(COLUMNS), *rows]) for i in range(len(COLUMNS))]
        self.stdout.write(_aligned(list(COLUMNS), widths))
        for result, row in zip(found.results, rows, strict=True):
            colour = style.SUCCESS if result.ok else style.ERROR
            if result.status == "timeout" or is_slow(result, warn_ms):
                colour = style.WARNING
            # Pad first, colour after: escape codes would count towards the width.
            self.stdout.write(_aligned(row, widths, colour_status=colour))
        if any(row.is_critical for row in found.rows):
            self.stdout.write("* critical alias: down means CRITICAL")

    @staticmethod
    def _styled(style: Style, state: State) -> Callable[[str], str]:
        return {
            State.OK: style.SUCCESS,
            State.WARNING: style.WARNING,
            State.CRITICAL: style.ERROR,
        }.get(state, style.NOTICE)
