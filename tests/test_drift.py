"""Migrations drift: unapplied migrations per alias, read-only, on the page and in the command."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from django.db.migrations import Migration
from django.test import Client

from dashboard import drift
from dashboard.probes import probe
from tests.conftest import SLACK_SECONDS, postgres_like
from tests.test_command import run

ON_DISK = len(drift._on_disk())


@pytest.fixture
def fresh_sqlite(tmp_path: Path, add_alias: Any) -> Iterator[Callable[[str], Path]]:
    """``fresh_sqlite("alias")``: an alias on an empty SQLite file, never migrated."""
    made: list[str] = []

    def make(alias: str) -> Path:
        path = tmp_path / f"{alias}.sqlite3"
        sqlite3.connect(path).close()
        add_alias(alias, ENGINE="django.db.backends.sqlite3", NAME=str(path))
        made.append(alias)
        return path

    yield make
    for alias in made:
        if alias in connections.settings:
            connections[alias].close()


def _record_applied(path: Path, *keys: tuple[str, str]) -> None:
    """Write rows as ``migrate`` does (the test's own Django connections stop at the
    aliases it started with)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS django_migrations (id integer PRIMARY KEY"
            " AUTOINCREMENT, app varchar(255), name varchar(255), applied datetime)"
        )
        conn.executemany(
            "INSERT INTO django_migrations (app, name, applied) VALUES (?, ?, datetime())", keys
        )
        conn.commit()
    finally:
        conn.close()


def _tables(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    finally:
        conn.close()


def test_the_migrated_test_databases_are_up_to_date() -> None:
    drifts = drift.for_results([probe(a) for a in ("default", "second_db", "local")])

    assert {alias: d.state for alias, d in drifts.items()} == {
        "default": "current",
        "second_db": "current",
        "local": "current",
    }
    assert all(d.count == 0 and d.text == "up to date" for d in drifts.values())


def test_a_never_migrated_alias_is_behind_by_every_migration_and_nothing_is_written(
    fresh_sqlite: Callable[[str], Path],
) -> None:
    path = fresh_sqlite("fresh")

    found = drift.check("fresh")

    assert found.state == "behind" and found.count == ON_DISK
    assert "contenttypes.0001_initial" in found.unapplied
    assert "demo.0001_initial" in found.unapplied
    assert found.text == f"{ON_DISK} unapplied"
    # Read-only: no django_migrations table was created to find that out.
    assert _tables(path) == []


def test_migrating_part_of_it_leaves_the_rest_counted(fresh_sqlite: Callable[[str], Path]) -> None:
    path = fresh_sqlite("fresh")
    _record_applied(path, *[key for key in drift._on_disk() if key[0] == "contenttypes"])

    found = drift.check("fresh")

    assert found.state == "behind"
    assert not any(name.startswith("contenttypes.") for name in found.unapplied)
    assert found.count == ON_DISK - 2  # contenttypes has two migrations


def test_only_apps_the_router_allows_on_the_alias_count(
    fresh_sqlite: Callable[[str], Path], settings: Any
) -> None:
    fresh_sqlite("fresh")
    settings.DBHEALTH = {**settings.DBHEALTH, "ROUTES": {"demo": "second_db"}}

    found = drift.check("fresh")

    assert "demo" not in drift.allowed_apps("fresh") and "demo" in drift.allowed_apps("second_db")
    assert not any(name.startswith("demo.") for name in found.unapplied)
    assert found.count == ON_DISK - 1


def test_a_down_alias_is_not_checked_and_says_why(
    add_alias: Any, closed_port: int, canary: str
) -> None:
    add_alias("dead", **postgres_like(PORT=str(closed_port), PASSWORD=canary))
    started = time.monotonic()

    (found,) = drift.for_results([probe("dead")]).values()

    assert found.state == "unknown" and found.text == "unknown (not checked: the alias is down)"
    assert found.count is None
    assert time.monotonic() - started < settings.DBHEALTH["TIMEOUT"] + SLACK_SECONDS


def test_a_check_is_reused_from_the_cache_until_asked_fresh(
    fresh_sqlite: Callable[[str], Path],
) -> None:
    path = fresh_sqlite("fresh")
    result = probe("fresh")
    before = drift.for_results([result])["fresh"]
    _record_applied(path, *drift._on_disk())

    cached = drift.for_results([result])["fresh"]
    now = drift.for_results([result], cached=False)["fresh"]

    assert cached == before and cached.state == "behind"
    assert now.state == "current"


def _migration(app: str, name: str, replaces: list[tuple[str, str]] | None = None) -> Migration:
    migration = Migration(name, app)
    migration.replaces = replaces or []
    return migration


def test_squashed_migrations_count_as_migrate_sees_them() -> None:
    replaced = [("shop", "0001_initial"), ("shop", "0002_price")]
    disk = {
        ("shop", "0001_initial"): _migration("shop", "0001_initial"),
        ("shop", "0002_price"): _migration("shop", "0002_price"),
        ("shop", "0001_squashed_0002"): _migration("shop", "0001_squashed_0002", replaced),
        ("shop", "0003_stock"): _migration("shop", "0003_stock"),
    }

    def pending(*applied: tuple[str, str]) -> list[str]:
        return [name for _, name in drift.unapplied(disk, set(applied), {"shop"})]

    # Nothing applied: the squash is one migration, plus what follows it.
    assert pending() == ["0001_squashed_0002", "0003_stock"]
    # All it replaces applied: the squash counts as applied.
    assert pending(*replaced) == ["0003_stock"]
    # Half of it applied: the rest of the replaced ones are still to apply.
    assert pending(("shop", "0001_initial")) == ["0002_price", "0003_stock"]
    assert drift.unapplied(disk, set(), {"other"}) == []


# --- in the command and on the page -----------------------------------------------------------


def test_json_carries_migrations_and_vitals_for_every_alias() -> None:
    status, out = run("--json")

    document = json.loads(out)
    assert status == 0
    for alias in ("default", "second_db", "local"):
        (entry,) = document["checks"][f"{alias}:responseTime"]
        assert entry["migrations"]["state"] == "current"
        assert entry["migrations"]["unapplied"] == 0
        readings = {r["key"]: r for r in entry["vitals"]["readings"]}
        assert readings["version"]["available"] is True
    (postgres,) = document["checks"]["default:responseTime"]
    readings = {r["key"]: r for r in postgres["vitals"]["readings"]}
    assert readings["replication_lag"]["text"] == "not a replica"
    assert readings["connections"]["value"]["max"] >= readings["connections"]["value"]["used"]


def test_check_migrations_exits_1_naming_the_alias_that_is_behind(
    fresh_sqlite: Callable[[str], Path],
) -> None:
    ok_status, ok_out = run("--check-migrations")
    fresh_sqlite("fresh")

    status, out = run("--check-migrations")
    nagios_status, nagios = run("--check-migrations", "--nagios")
    json_status, document = run("--check-migrations", "--json")
    plain_status, _ = run()

    assert ok_status == 0 and "unapplied" not in ok_out
    assert status == nagios_status == json_status == 1
    assert f"WARNING: fresh: {ON_DISK} unapplied migrations; 4 up of 4" in out
    assert nagios.startswith(f"DBHEALTH WARNING - fresh: {ON_DISK} unapplied migrations; ")
    assert f"fresh: {ON_DISK} unapplied migrations" in json.loads(document)["notes"]
    assert plain_status == 0  # without the flag, drift does not change the exit status


def test_a_down_alias_with_check_migrations_keeps_its_own_status(
    add_alias: Any, closed_port: int
) -> None:
    add_alias("dead", **postgres_like(PORT=str(closed_port)))

    status, out = run("--check-migrations")

    assert status == 1  # a non-critical alias down: WARNING, as without the flag
    assert "unapplied" not in out


def test_the_page_shows_each_alias_s_drift(
    staff_client: Client, fresh_sqlite: Callable[[str], Path]
) -> None:
    fresh_sqlite("fresh")

    html = staff_client.get("/admin/db-health/").content.decode()

    assert f'data-field="migrations" data-unapplied="{ON_DISK}"' in html
    assert f">{ON_DISK} unapplied</span>" in html
    assert 'title="contenttypes.0001_initial, ' in html
    assert html.count('data-unapplied="0"') == 3
    detail = staff_client.get("/admin/db-health/fresh/").content.decode()
    assert "<code>demo.0001_initial</code>" in detail
