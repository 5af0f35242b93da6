from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.checks import ERROR, run_checks

from tests.conftest import mysql_like, postgres_like
from tests.test_command import REPO, servers_env


def dbhealth_messages(**filters: str) -> list:
    found = run_checks(tags=["dbhealth"])
    return [m for m in found if all(getattr(m, k) == v for k, v in filters.items())]


def ids(messages: list) -> list[str]:
    return sorted(message.id for message in messages)


def test_a_route_to_an_unknown_alias_is_an_error(settings) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "ROUTES": {"demo.auditevent": "archive"}}

    (error,) = dbhealth_messages(id="dbhealth.E001")

    assert error.level == ERROR
    assert "'demo.auditevent'" in error.msg and "'archive'" in error.msg


def test_an_unknown_critical_alias_is_an_error(settings) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "CRITICAL_ALIASES": ["default", "primary"]}

    (error,) = dbhealth_messages(id="dbhealth.E002")

    assert "'primary'" in error.msg


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("nosuchapp", "no installed app has the label 'nosuchapp'"),
        ("demo.nosuchmodel", "app 'demo' has no model 'nosuchmodel'"),
    ],
)
def test_a_route_for_an_app_or_model_that_is_not_installed_is_an_error(
    settings, target, expected
) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "ROUTES": {target: "second_db"}}

    (error,) = dbhealth_messages(id="dbhealth.E004")

    assert expected in error.msg


def test_a_bad_value_is_an_error_not_a_crash_of_the_checks(settings) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "TIMEOUT": float("inf"), "METRICS_PUBLIC": True}

    (error,) = dbhealth_messages(id="dbhealth.E005")

    assert error.msg.startswith("DBHEALTH['TIMEOUT'] must be between 0.1 and 300")


def test_an_alias_name_with_a_colon_is_an_error(add_alias) -> None:
    add_alias("eu:orders", ENGINE="django.db.backends.sqlite3", NAME=":memory:")

    (error,) = dbhealth_messages(id="dbhealth.E003")

    assert error.obj == "DATABASES['eu:orders']"


@pytest.mark.parametrize("like", [postgres_like, mysql_like])
def test_a_server_alias_without_a_connect_timeout_is_a_warning(add_alias, like) -> None:
    add_alias("bare", **like(OPTIONS={}))
    add_alias("bounded", **like(OPTIONS={"connect_timeout": 5}))
    add_alias("file", ENGINE="django.db.backends.sqlite3", NAME=":memory:")

    flagged = {m.obj for m in dbhealth_messages(id="dbhealth.W001")}

    assert "DATABASES['bare']" in flagged
    assert "DATABASES['bounded']" not in flagged
    assert "DATABASES['file']" not in flagged


def test_persistent_connections_without_health_checks_are_a_warning(add_alias) -> None:
    add_alias("kept", **postgres_like(CONN_MAX_AGE=60))
    add_alias("forever", **postgres_like(CONN_MAX_AGE=None))
    add_alias("checked", **postgres_like(CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=True))

    flagged = {m.obj for m in dbhealth_messages(id="dbhealth.W002")}

    assert {"DATABASES['kept']", "DATABASES['forever']"} <= flagged
    assert "DATABASES['checked']" not in flagged


@pytest.mark.parametrize(("debug", "warned"), [(False, True), (True, False)])
def test_public_metrics_without_debug_is_a_warning(settings, debug, warned) -> None:
    settings.DEBUG = debug
    settings.DBHEALTH = {**settings.DBHEALTH, "METRICS_PUBLIC": True}

    assert ids(dbhealth_messages(id="dbhealth.W003")) == (["dbhealth.W003"] if warned else [])


@pytest.mark.parametrize(
    ("routers", "warned"),
    [
        ([], True),
        (["tests.test_checks.NoOpinionRouter", "dashboard.routing.AliasRouter"], True),
        (["dashboard.routing.AliasRouter", "tests.test_checks.NoOpinionRouter"], False),
    ],
)
def test_alias_router_missing_or_not_first_is_a_warning(settings, routers, warned) -> None:
    settings.DATABASE_ROUTERS = routers

    assert ids(dbhealth_messages(id="dbhealth.W004")) == (["dbhealth.W004"] if warned else [])


@pytest.mark.parametrize("exists", [True, False])
def test_a_metrics_dir_the_process_does_not_write_to_is_a_warning(
    settings, tmp_path, exists
) -> None:
    directory = tmp_path if exists else tmp_path / "missing"
    settings.DBHEALTH = {**settings.DBHEALTH, "METRICS_DIR": str(directory)}

    (warning,) = dbhealth_messages(id="dbhealth.W006")

    reason = "does not write its counters there" if exists else "it is not a directory"
    assert reason in warning.msg
    assert "PROMETHEUS_MULTIPROC_DIR" in warning.hint


class NoOpinionRouter:
    """A site's own router that has no say about anything."""


def test_the_test_settings_raise_no_dbhealth_error() -> None:
    assert [m for m in dbhealth_messages() if m.level >= ERROR] == []
    assert dbhealth_messages(id="dbhealth.W002") == []
    assert dbhealth_messages(id="dbhealth.W003") == []
    assert dbhealth_messages(id="dbhealth.W004") == []
    assert dbhealth_messages(id="dbhealth.W005") == []
    assert dbhealth_messages(id="dbhealth.W006") == []


def _check_shipped_settings(**database_urls: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "DBHEALTH_"))}
    env.update(database_urls, DJANGO_SETTINGS_MODULE="config.settings")
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_shipped_settings_raise_no_dbhealth_message_without_any_env() -> None:
    done = _check_shipped_settings()

    assert done.returncode == 0, done.stderr
    assert "dbhealth." not in done.stdout + done.stderr


@pytest.mark.parametrize("second", ["DATABASE_URL_SECOND_DB", "DATABASE_URL_DEAD"])
def test_the_shipped_settings_bound_connects_and_route_only_to_existing_aliases(second) -> None:
    env = servers_env()
    done = _check_shipped_settings(
        DATABASE_URL=env["DBHEALTH_TEST_POSTGRES_URL"],
        **{second: env["DBHEALTH_TEST_MYSQL_URL"]},
    )

    assert done.returncode == 0, done.stderr
    assert "dbhealth." not in done.stdout + done.stderr


REDIS = "django.core.cache.backends.redis.RedisCache"


@pytest.mark.parametrize(
    ("location", "options", "flagged"),
    [
        ("redis://127.0.0.1:6379/0", {}, True),
        ("redis://127.0.0.1:6379/0", {"socket_timeout": 0.25}, True),
        ("redis://127.0.0.1:6379/0", {"socket_connect_timeout": 0.25, "socket_timeout": 30}, True),
        (
            "redis://127.0.0.1:6379/0",
            {"socket_connect_timeout": 0.25, "socket_timeout": 0.25},
            False,
        ),
        ("redis://127.0.0.1:6379/0?socket_connect_timeout=0.5&socket_timeout=0.5", {}, False),
        # One server of two left unbounded is enough to hang a request.
        (
            "redis://a:6379/0?socket_timeout=0.5,redis://b:6379/0",
            {"socket_connect_timeout": 1},
            True,
        ),
    ],
)
def test_a_redis_cache_without_both_socket_timeouts_is_a_warning(
    settings, location, options, flagged
) -> None:
    settings.CACHES = {"default": {"BACKEND": REDIS, "LOCATION": location, "OPTIONS": options}}

    found = dbhealth_messages(id="dbhealth.W005")

    assert bool(found) is flagged
    if flagged:
        assert "socket_connect_timeout" in found[0].hint and "socket_timeout" in found[0].hint
        assert found[0].obj == "CACHES['default']"


def test_the_cache_timeout_check_looks_at_the_cache_dbhealth_uses(settings) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": {"BACKEND": REDIS, "LOCATION": "redis://127.0.0.1:6379/0"},
    }
    assert dbhealth_messages(id="dbhealth.W005") == []

    settings.DBHEALTH = {**settings.DBHEALTH, "CACHE": "shared"}
    (warning,) = dbhealth_messages(id="dbhealth.W005")

    assert "Cache 'shared' (RedisCache) has no" in warning.msg


def test_a_pymemcache_cache_without_timeouts_is_a_warning(settings) -> None:
    backend = "django.core.cache.backends.memcached.PyMemcacheCache"
    settings.CACHES = {"default": {"BACKEND": backend, "LOCATION": "127.0.0.1:11211"}}

    (warning,) = dbhealth_messages(id="dbhealth.W005")

    assert "'connect_timeout': 0.25, 'timeout': 0.25" in warning.hint
