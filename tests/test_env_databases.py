from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from config.env_databases import databases_from_env, routes_from_env

SECRET = "hunter2-canary"
ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


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


# --- every way of starting the site refuses a bad configuration the same way ----------

BAD_CONFIGURATIONS = [
    pytest.param(
        {"DATABASE_URL_EU": f"postgres://u:{SECRET}@host:notaport/db"},
        "DATABASE_URL_EU is not a valid URL",
        id="malformed-url",
    ),
    pytest.param(
        {"DATABASE_URL_EU": f"oracle://u:{SECRET}@host/db"},
        "DATABASE_URL_EU has an unsupported scheme 'oracle'",
        id="unknown-engine",
    ),
    pytest.param(
        {"DATABASE_URL_EU": f"postgres://u:{SECRET}@/db"},
        "DATABASE_URL_EU names no host",
        id="empty-host",
    ),
    pytest.param(
        {"DBHEALTH_TIMEOUT": "soon"},
        "DBHEALTH_TIMEOUT must be a number of seconds, got 'soon'",
        id="non-numeric-timeout",
    ),
    # The probe replaces connect_timeout with its own, so without a start-up error the
    # dashboard would show "up" while every query of the site fails on this value.
    pytest.param(
        {"DATABASE_URL_EU": f"mysql://u:{SECRET}@host/db?connect_timeout=soon"},
        "DATABASE_URL_EU",
        id="non-numeric-driver-timeout",
    ),
    # A typo here would make /health/ never fail and `dbhealth` exit 1 instead of 2.
    pytest.param(
        {"DBHEALTH_CRITICAL_ALIASES": "defualt"},
        "DBHEALTH_CRITICAL_ALIASES names 'defualt', which is not a database alias "
        "(aliases: default).",
        id="unknown-critical-alias",
    ),
    # The pinned model's admin list would be a 500.
    pytest.param(
        {"DATABASE_ROUTES": "demo.auditevent=nosuch"},
        "DATABASE_ROUTES sends 'demo.auditevent' to 'nosuch', which is not a database alias",
        id="route-to-unknown-alias",
    ),
    # Known only once apps are loaded: the app raises it and names its own setting.
    pytest.param(
        {"DATABASE_ROUTES": "nosuchapp=default"},
        "DATABASE_ROUTES (DBHEALTH['ROUTES']) pins 'nosuchapp', "
        "but no installed app has the label 'nosuchapp'.",
        id="route-for-unknown-app",
    ),
    pytest.param(
        {"DATABASE_ROUTES": "demo.nosuchmodel=default"},
        "DATABASE_ROUTES (DBHEALTH['ROUTES']) pins 'demo.nosuchmodel', "
        "but app 'demo' has no model 'nosuchmodel'.",
        id="route-for-unknown-model",
    ),
    pytest.param(
        {"DBHEALTH_TIMEOUT": "nan"},
        "DBHEALTH_TIMEOUT must be between 0.1 and 300 seconds, got 'nan'.",
        id="timeout-nan",
    ),
    pytest.param(
        {"DBHEALTH_TIMEOUT": "inf"},
        "DBHEALTH_TIMEOUT must be between 0.1 and 300 seconds, got 'inf'.",
        id="timeout-inf",
    ),
    # psycopg would get TCP_KEEPIDLE=40000, which Linux refuses: a healthy server "down".
    pytest.param(
        {"DBHEALTH_TIMEOUT": "40000"},
        "DBHEALTH_TIMEOUT must be between 0.1 and 300 seconds, got '40000'.",
        id="timeout-too-long",
    ),
    pytest.param(
        {"DBHEALTH_METRICS_PUBLIC": "maybe"},
        "DBHEALTH_METRICS_PUBLIC must be true or false, got 'maybe'.",
        id="not-a-boolean",
    ),
    pytest.param(
        {"DBHEALTH_HISTORY_LENGTH": "12.5"},
        "DBHEALTH_HISTORY_LENGTH must be a whole number of probes, got '12.5'.",
        id="history-not-whole",
    ),
    pytest.param(
        {"DEMO_ALIASES": "default,shop"},
        "DEMO_ALIASES names 'shop', which is not a database alias (aliases: default).",
        id="unknown-demo-alias",
    ),
]


def _start(tmp_path: Path, variables: dict[str, str], *command: str) -> str:
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'default.sqlite3'}",
        "DATABASE_ROUTES": "",
        **variables,
    }
    completed = subprocess.run(
        [sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30
    )
    assert completed.returncode != 0, f"{command} started with {variables}"
    return completed.stdout + completed.stderr


@pytest.mark.parametrize(("variables", "message"), BAD_CONFIGURATIONS)
def test_manage_py_names_the_variable_in_one_line_without_traceback_or_password(
    tmp_path: Path, variables: dict[str, str], message: str
) -> None:
    output = _start(tmp_path, variables, "manage.py", "check")

    assert output.startswith(f"Configuration error: {message}")
    assert output.count("\n") == 1
    assert SECRET not in output


@pytest.mark.parametrize(("variables", "message"), BAD_CONFIGURATIONS)
def test_gunicorn_stops_with_one_line_naming_the_variable(
    tmp_path: Path, variables: dict[str, str], message: str
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "False",
        "SECRET_KEY": "a-production-secret-key-for-this-test-only-0123456789",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'default.sqlite3'}",
        "DATABASE_ROUTES": "",
        **variables,
    }
    server = subprocess.run(
        [str(GUNICORN), "config.wsgi", "--bind", "127.0.0.1:0", "--workers", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    errors = [line for line in server.stderr.splitlines() if "Configuration error" in line]
    assert server.returncode == 4, server.stderr  # "App failed to load": no respawning
    assert len(errors) == 1, server.stderr
    assert errors[0].startswith(f"Configuration error: {message}")
    assert "Traceback" not in server.stderr
    assert SECRET not in server.stdout + server.stderr


def test_runserver_and_dbhealth_refuse_a_bad_url_cleanly(tmp_path: Path) -> None:
    bad = {"DATABASE_URL_EU": f"postgres://u:{SECRET}@host:notaport/db"}

    served = _start(tmp_path, bad, "manage.py", "runserver", "--noreload", "127.0.0.1:0")
    checked = subprocess.run(
        [sys.executable, "manage.py", "dbhealth"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": "sqlite:////nonexistent/x.db", **bad},
        capture_output=True,
        text=True,
        timeout=30,
    )

    for output in (served, checked.stdout + checked.stderr):
        assert output == (
            "Configuration error: DATABASE_URL_EU is not a valid URL"
            " (Port could not be cast to integer value as 'notaport').\n"
        )
    assert checked.returncode == 3  # Nagios UNKNOWN: the check could not run at all


def test_an_alias_with_an_unknown_engine_is_a_down_row_not_a_server_error(
    add_alias: Any, staff_client: Client
) -> None:
    add_alias("legacy", ENGINE="django.db.backends.nosuchdb", NAME="legacy")

    response = staff_client.get("/admin/db-health/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-alias="legacy" data-status="down"' in html
    assert "nosuchdb" in html
    assert "Traceback" not in html


def test_runserver_with_its_reloader_stops_with_one_line_for_a_mistake_found_at_app_loading(
    tmp_path: Path,
) -> None:
    # The reloader used to catch it and print a traceback in its serving thread, then wait.
    output = _start(
        tmp_path, {"DATABASE_ROUTES": "nosuchapp=default"}, "manage.py", "runserver", "127.0.0.1:0"
    )

    assert output.startswith("Configuration error: DATABASE_ROUTES (DBHEALTH['ROUTES']) pins")
    assert output.count("\n") == 1
