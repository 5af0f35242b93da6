"""The demo (``make run`` = ``setup_demo``) writes only to the aliases meant for it.

A .env that points an alias at a real database must find that database as it was:
no tables, no rows. Seeding again never adds rows, and every seeded row is valid.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import router

from dashboard.demo.models import AuditEvent, Customer, Order
from dashboard.routing import alias_override

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def real_postgres() -> Iterator[str]:
    """URL of a fresh PostgreSQL database standing for one a user wants watched, not written."""
    db = settings.DATABASES["default"]
    suffix = os.environ.get("DBHEALTH_TEST_DB_SUFFIX", "")
    name = f"dbhealth_demo{suffix}_{secrets.token_hex(3)}".lower()
    admin = dict(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname="postgres")
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{name}"
    finally:
        with psycopg.connect(**admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_tables(url: str) -> list[str]:
    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return sorted(row[0] for row in rows)


def sqlite_rows(path: Path, sql: str) -> list[Any]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def setup_demo(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SUPERUSER_PASSWORD": "demo-admin-pw",
        **variables,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "setup_demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_watched_database_gets_no_table_and_the_plan_is_said_first(
    tmp_path: Path, real_postgres: str, canary: str
) -> None:
    default = tmp_path / "default.sqlite3"

    done = setup_demo(
        tmp_path,
        DATABASE_URL=f"sqlite:///{default}",
        DATABASE_URL_SHOP=real_postgres,
        DEMO_ALIASES="default",
    )

    assert done.returncode == 0, done.stderr
    assert postgres_tables(real_postgres) == []
    lines = done.stdout.splitlines()
    assert lines[0] == "Demo aliases (DEMO_ALIASES): default. Migrating and seeding only these."
    assert lines[1].startswith("Left alone, only watched: shop.")
    assert sqlite_rows(default, "SELECT count(*) FROM demo_customer") == [(4,)]
    assert canary not in done.stdout + done.stderr


def test_with_real_databases_and_no_demo_alias_nothing_is_migrated(
    tmp_path: Path, real_postgres: str
) -> None:
    done = setup_demo(tmp_path, DATABASE_URL=real_postgres)

    assert done.returncode == 0, done.stderr
    assert postgres_tables(real_postgres) == []
    assert done.stdout.startswith("No demo alias (DEMO_ALIASES is empty): migrating nothing.")
    assert "No admin login: default is not a demo alias" in done.stdout


def test_setting_up_again_after_adding_an_alias_adds_no_row(tmp_path: Path) -> None:
    urls = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'default.sqlite3'}",
        "DATABASE_URL_SECOND_DB": f"sqlite:///{tmp_path / 'second_db.sqlite3'}",
    }
    first = setup_demo(tmp_path, **urls, DEMO_ALIASES="default,second_db")
    before = sqlite_rows(tmp_path / "second_db.sqlite3", "SELECT email FROM demo_customer")

    # "local" sorts between the two: it used to shift second_db onto other people.
    again = setup_demo(
        tmp_path,
        **urls,
        DATABASE_URL_LOCAL=f"sqlite:///{tmp_path / 'local.sqlite3'}",
        DEMO_ALIASES="default,local,second_db",
    )

    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    assert len(before) == 4
    assert sqlite_rows(tmp_path / "second_db.sqlite3", "SELECT email FROM demo_customer") == before
    assert sqlite_rows(tmp_path / "default.sqlite3", "SELECT count(*) FROM demo_customer") == [(4,)]
    assert sqlite_rows(tmp_path / "local.sqlite3", "SELECT count(*) FROM demo_customer") == [(4,)]
    assert "second_db: 4 customers (already there)." in again.stdout


def test_every_seeded_row_passes_its_models_validation() -> None:
    call_command("seed_demo", verbosity=0)

    checked = 0
    for alias in settings.DEMO_ALIASES:
        # Unique checks of full_clean() query the alias the row lives on.
        with alias_override(alias, [Customer, Order, AuditEvent]):
            for model in (Customer, Order, AuditEvent):
                if not router.allow_migrate_model(alias, model):
                    continue  # AuditEvent lives on its pinned alias only
                for row in model.objects.using(alias).all():
                    row.full_clean()
                    checked += 1

    assert checked == 3 * 4 * 2 + 1  # customers and orders on each alias, one audit event


def test_seeding_twice_adds_nothing() -> None:
    call_command("seed_demo", verbosity=0)
    counts = [Customer.objects.using(alias).count() for alias in settings.DEMO_ALIASES]

    call_command("seed_demo", verbosity=0)

    assert [Customer.objects.using(alias).count() for alias in settings.DEMO_ALIASES] == counts


def test_seeding_an_alias_that_is_not_for_the_demo_is_refused(settings: Any) -> None:
    settings.DEMO_ALIASES = ["local"]

    with pytest.raises(CommandError, match="Not a demo alias: default"):
        call_command("seed_demo", database=["default"], verbosity=0)

    assert Customer.objects.using("default").count() == 0
