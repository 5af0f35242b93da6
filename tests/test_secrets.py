"""A canary password in every alias and in the bearer token never comes out anywhere.

Aliases carry ``settings.CANARY_PASSWORD``: the real PostgreSQL (trust auth ignores it),
a real MariaDB user created with it, and aliases that fail with it: wrong password,
unknown database, unknown role, refused port, silent server (timeout), broken engine,
bad driver option. The token is ``token-<canary>``. Then every page, partial, JSON
document, metrics text, command output and log record (all loggers, DEBUG) produced
while they are probed is searched for the canary.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import MySQLdb
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.test import Client, override_settings

from tests.conftest import mysql_like, mysql_sessions, postgres_like

SUFFIX = os.environ.get("DBHEALTH_TEST_DB_SUFFIX", "")
MARIADB_USER = f"dbhealth_canary{SUFFIX}"[:80]
MISSING_DB = f"dbhealth_missing{SUFFIX}"
FIGURES = Path(__file__).resolve().parent.parent / "test-artifacts" / "secrets.json"


def _mariadb_root(statements: list[tuple[str, list[str]]]) -> None:
    db = settings.DATABASES["second_db"]
    conn = MySQLdb.connect(
        host=db["HOST"], port=int(db["PORT"]), user=db["USER"], password=db["PASSWORD"]
    )
    try:
        cursor = conn.cursor()
        for sql, args in statements:
            cursor.execute(sql, args)
    finally:
        conn.close()


@pytest.fixture
def mariadb_canary_user(canary: str) -> Iterator[str]:
    """A MariaDB user whose password is the canary, allowed on the test database and on
    one that does not exist (so its error is "Unknown database", not "Access denied")."""
    test_db = settings.DATABASES["second_db"]["NAME"]
    user = f"'{MARIADB_USER}'@'%%'"  # any host; %% because the statements are %-formatted
    _mariadb_root(
        [
            (f"DROP USER IF EXISTS {user}", []),
            (f"CREATE USER {user} IDENTIFIED BY %s", [canary]),
            (f"GRANT ALL ON `{test_db}`.* TO {user}", []),
            (f"GRANT ALL ON `{MISSING_DB}`.* TO {user}", []),
        ]
    )
    try:
        yield MARIADB_USER
    finally:
        _mariadb_root([(f"DROP USER IF EXISTS {user}", [])])


@pytest.fixture
def canary_aliases(
    add_alias: Any, canary: str, mariadb_canary_user: str, closed_port: int, silent_port: int
) -> dict[str, str]:
    """alias -> the failure it should show (or "up")."""
    maria = {"USER": mariadb_canary_user, "PASSWORD": canary}
    wanted = {
        "maria_canary": ("up", mysql_like(**maria)),
        "maria_wrong_password": (
            "Access denied",
            mysql_like(USER=mariadb_canary_user, PASSWORD=f"{canary}-wrong"),
        ),
        "maria_unknown_db": ("Unknown database", mysql_like(**maria, NAME=MISSING_DB)),
        "maria_silent": ('"probe": "timeout"', mysql_like(**maria, PORT=str(silent_port))),
        "pg_unknown_db": ("does not exist", postgres_like(PASSWORD=canary, NAME=MISSING_DB)),
        "pg_unknown_role": (
            "does not exist",
            postgres_like(PASSWORD=canary, USER="dbhealth_nobody"),
        ),
        "pg_refused": ("refused", postgres_like(PASSWORD=canary, PORT=str(closed_port))),
        "pg_silent": ('"probe": "timeout"', postgres_like(PASSWORD=canary, PORT=str(silent_port))),
        "pg_bad_option": (
            "sslmode",
            postgres_like(PASSWORD=canary, OPTIONS={"sslmode": "bogus"}),
        ),
        "broken_engine": (
            "nosuchdb",
            {"ENGINE": "django.db.backends.nosuchdb", "NAME": "x", "PASSWORD": canary},
        ),
    }
    for alias, (_, config) in wanted.items():
        add_alias(alias, **config)
    return {alias: shown for alias, (shown, _) in wanted.items()}


class Crawl:
    """Everything the site said, by where it said it."""

    def __init__(self) -> None:
        self.outputs: dict[str, str] = {}

    def keep(self, name: str, text: str | bytes) -> str:
        self.outputs[name] = text.decode(errors="replace") if isinstance(text, bytes) else text
        return self.outputs[name]

    def response(self, name: str, client: Client, method: str, path: str, **kwargs: Any) -> str:
        response = client.generic(method, path, **kwargs)
        # Headers too: a token echoed in WWW-Authenticate would be a leak.
        return self.keep(name, response.serialize())

    def page(self, name: str, client: Client, path: str, **kwargs: Any) -> str:
        response = client.get(path, follow=True, **kwargs)
        return self.keep(name, response.serialize())

    def command(self, name: str, *args: str) -> str:
        out, err = io.StringIO(), io.StringIO()
        try:
            call_command(*args, stdout=out, stderr=err)
        except (SystemExit, CommandError) as stopped:
            err.write(f"\n[exit: {stopped}]")
        return self.keep(name, out.getvalue() + err.getvalue())


def test_the_canary_never_appears_in_any_output(
    canary_aliases: dict[str, str],
    canary: str,
    staff_client: Client,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    no_stragglers: None,
    django_db_blocker: Any,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every logger's records
    token = str(settings.DBHEALTH["TOKEN"])
    assert canary in token
    bearer = {"Authorization": f"Bearer {token}"}
    maria_before = mysql_sessions()
    anonymous = Client()
    crawl = Crawl()

    # unblock(): the alias switcher inspects the added aliases through the site's own
    # connections, which Django's test case refuses for aliases it did not start with.
    with (
        override_settings(DBHEALTH={**settings.DBHEALTH, "TIMEOUT": 1.0, "CACHE_TTL": 30.0}),
        django_db_blocker.unblock(),
    ):
        page = crawl.page("db-health page", staff_client, "/admin/db-health/")
        for path in ("/admin/", "/admin/db-health/table/", "/admin/login/"):
            crawl.page(f"page {path}", staff_client, path)
        crawl.page("login page, anonymous", anonymous, "/admin/login/")
        for caller, client, headers in [
            ("anonymous", anonymous, {}),
            ("staff", staff_client, {}),
            ("token", anonymous, bearer),
            ("wrong token", anonymous, {"Authorization": f"Bearer {canary}"}),
        ]:
            for path in ("/health/", "/health/live/", "/metrics"):
                crawl.response(f"{path} as {caller}", client, "GET", path, headers=headers)
        crawl.response(
            "/metrics openmetrics",
            anonymous,
            "GET",
            "/metrics",
            headers={**bearer, "Accept": "application/openmetrics-text"},
        )
        for alias in ["default", "second_db", "local", *canary_aliases]:
            crawl.response(f"/health/?alias={alias}", anonymous, "GET", "/health/",
                           data={"alias": alias}, headers=bearer)  # fmt: skip
            ping = f"/admin/db-health/{alias}/ping/"
            crawl.response(f"ping {alias} (htmx)", staff_client, "POST", ping,
                           headers={"HX-Request": "true"})  # fmt: skip
            pinged = staff_client.post(ping, follow=True)  # the message on the page after
            crawl.keep(f"ping {alias} (form)", pinged.serialize())
            crawl.page(f"customers on {alias}", staff_client, f"/admin/demo/customer/?_db={alias}")
        for options in ([], ["--json"], ["--nagios"]):
            crawl.command(f"dbhealth {' '.join(options)}", "dbhealth", *options)
        for alias in canary_aliases:
            crawl.command(
                f"dbhealth --json --alias {alias}", "dbhealth", "--json", "--alias", alias
            )
        crawl.command("dbhealth --alias nope", "dbhealth", "--alias", "nope")
        crawl.command("check", "check")
        for connection in connections.all(initialized_only=True):
            if connection.alias in canary_aliases:
                connection.close()  # the switcher's introspection opened some

    captured = capfd.readouterr()
    crawl.keep("stdout and stderr", captured.out + captured.err)
    crawl.keep("log messages and tracebacks", caplog.text)
    crawl.keep("log records, every attribute", "\n".join(repr(vars(r)) for r in caplog.records))

    # The failures really were there to leak from.
    for alias, shown in canary_aliases.items():
        status = re.search(rf'data-alias="{alias}" data-status="(\w+)"', page)
        assert status and (status.group(1) == "up") == (shown == "up"), alias
        assert shown == "up" or shown in crawl.outputs[f"dbhealth --json --alias {alias}"], alias
    leaks = sorted(name for name, text in crawl.outputs.items() if canary in text)
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(
        json.dumps(
            {
                "outputs_scanned": len(crawl.outputs),
                "characters_scanned": sum(map(len, crawl.outputs.values())),
                "log_records": len(caplog.records),
                "leaks": leaks,
            },
            indent=2,
        )
    )
    assert leaks == []
    assert mysql_sessions() == maria_before  # the canary user's sessions are all closed
