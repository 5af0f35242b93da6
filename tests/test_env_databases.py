from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env_databases import databases_from_env, routes_from_env

SECRET = "hunter2-canary"
ROOT = Path(__file__).resolve().parent.parent


def test_no_variable_gives_two_sqlite_aliases(tmp_path: Path) -> None:
    databases = databases_from_env({}, tmp_path)

    assert list(databases) == ["default", "second_db"]
    assert databases["second_db"]["NAME"] == str(tmp_path / "second_db.sqlite3")
    assert {db["ENGINE"] for db in databases.values()} == {"django.db.backends.sqlite3"}


def test_each_database_url_name_adds_a_lower_cased_alias(tmp_path: Path) -> None:
    databases = databases_from_env(
        {
            "DATABASE_URL": f"postgres://app:{SECRET}@db.internal:5433/shop",
            "DATABASE_URL_SECOND_DB": "mysql://root@127.0.0.1:3306/shop_eu",
            "DATABASE_URL_LOCAL": "sqlite:////tmp/local.sqlite3",
            "DATABASE_URLS_IGNORED": "x",
        },
        tmp_path,
    )

    assert list(databases) == ["default", "local", "second_db"]
    assert databases["default"]["HOST"] == "db.internal"
    assert databases["default"]["PORT"] == 5433
    assert databases["second_db"]["ENGINE"] == "django.db.backends.mysql"
    assert databases["local"]["NAME"] == "/tmp/local.sqlite3"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"postgres://u:{SECRET}@host:notaport/db", "not a valid URL"),
        (f"oracle://u:{SECRET}@host/db", "unsupported scheme 'oracle'"),
        (f"postgres://u:{SECRET}@/db", "names no host"),
        (f"mysql://u:{SECRET}@host:3306/", "names no database"),
        ("   ", "set but empty"),
        (f"just-a-{SECRET}", "unsupported scheme 'none'"),
    ],
)
def test_malformed_url_names_the_variable_and_hides_the_password(
    tmp_path: Path, value: str, expected: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        databases_from_env(
            {"DATABASE_URL": "sqlite:////tmp/a.db", "DATABASE_URL_EU": value}, tmp_path
        )

    message = str(caught.value)
    assert message.startswith("DATABASE_URL_EU")
    assert expected in message
    assert SECRET not in message


def test_named_alias_without_default_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL \\(the default alias\\)"):
        databases_from_env({"DATABASE_URL_EU": "sqlite:////tmp/a.db"}, tmp_path)


def test_routes_parse_and_reject_garbage() -> None:
    assert routes_from_env("demo.AuditEvent=second_db, reports=analytics,") == {
        "demo.auditevent": "second_db",
        "reports": "analytics",
    }
    with pytest.raises(ImproperlyConfigured, match="not of the form"):
        routes_from_env("demo.auditevent")


def test_start_up_with_a_bad_url_fails_cleanly_without_the_password() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://app:{SECRET}@db:port/x",
    }
    completed = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )

    output = completed.stdout + completed.stderr
    assert completed.returncode != 0
    assert "Configuration error: DATABASE_URL is not a valid URL" in output
    assert "Traceback" not in output
    assert SECRET not in output


def test_non_numeric_timeout_is_refused_naming_the_variable() -> None:
    env = {"PATH": "/usr/bin:/bin", "DBHEALTH_TIMEOUT": "soon"}
    completed = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )

    assert completed.returncode != 0
    assert "DBHEALTH_TIMEOUT must be a number of seconds, got 'soon'" in completed.stderr
