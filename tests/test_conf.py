"""``DBHEALTH`` values are checked when the app reads them: a mistake names its key."""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from dashboard.conf import get_settings


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("TIMEOUT", float("nan"), "DBHEALTH['TIMEOUT'] must be between 0.1 and 300, got nan."),
        ("TIMEOUT", float("inf"), "DBHEALTH['TIMEOUT'] must be between 0.1 and 300, got inf."),
        ("TIMEOUT", 40000, "DBHEALTH['TIMEOUT'] must be between 0.1 and 300, got 40000."),
        ("TIMEOUT", 0, "DBHEALTH['TIMEOUT'] must be between 0.1 and 300, got 0."),
        ("TIMEOUT", "2", "DBHEALTH['TIMEOUT'] must be a number, got '2'."),
        ("TIMEOUT", True, "DBHEALTH['TIMEOUT'] must be a number, got True."),
        ("CACHE_TTL", -1, "DBHEALTH['CACHE_TTL'] must be between 0 and 86400, got -1."),
        ("POLL_INTERVAL", 0.2, "DBHEALTH['POLL_INTERVAL'] must be between 1 and 3600, got 0.2."),
        ("WARN_MS", float("nan"), "DBHEALTH['WARN_MS'] must be between 0 and 3.6e+06, got nan."),
        ("HISTORY_LENGTH", 12.5, "DBHEALTH['HISTORY_LENGTH'] must be a whole number, got 12.5."),
        ("HISTORY_LENGTH", 0, "DBHEALTH['HISTORY_LENGTH'] must be between 1 and 10000, got 0."),
        ("METRICS_PUBLIC", "maybe", "DBHEALTH['METRICS_PUBLIC'] must be True or False"),
        ("METRICS_PUBLIC", 1, "DBHEALTH['METRICS_PUBLIC'] must be True or False, got 1."),
        ("CRITICAL_ALIASES", "default", "DBHEALTH['CRITICAL_ALIASES'] must be a list of alias"),
        ("ROUTES", ["demo=local"], "DBHEALTH['ROUTES'] must map 'app_label' or"),
        ("CACHE", None, "DBHEALTH['CACHE'] must be a string."),
        ("POOL_WAIT_WARN_MS", -1, "DBHEALTH['POOL_WAIT_WARN_MS'] must be between 0 and"),
        ("POOL_WAIT_WARN_MS", "50", "DBHEALTH['POOL_WAIT_WARN_MS'] must be a number, got '50'."),
    ],
)
def test_a_bad_value_names_its_key(settings: Any, key: str, value: object, expected: str) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, key: value}

    with pytest.raises(ImproperlyConfigured) as caught:
        get_settings()

    assert str(caught.value).startswith(expected)


def test_a_token_of_the_wrong_type_is_not_repeated(settings: Any) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "TOKEN": 4242424242}

    with pytest.raises(ImproperlyConfigured) as caught:
        get_settings()

    assert "4242424242" not in str(caught.value)


def test_the_bounds_themselves_are_accepted(settings: Any) -> None:
    settings.DBHEALTH = {"TIMEOUT": 300, "CACHE_TTL": 0, "POLL_INTERVAL": 1, "HISTORY_LENGTH": 1}

    built = get_settings()

    assert (built.timeout, built.cache_ttl, built.poll_interval) == (300.0, 0.0, 1.0)
    assert built.history_length == 1


@pytest.mark.parametrize(
    ("dbhealth", "expected"),
    [
        ({"TIMEOUT": float("inf")}, "DBHEALTH['TIMEOUT'] must be between"),
        ({"CRITICAL_ALIASES": ["defualt"]}, "DBHEALTH['CRITICAL_ALIASES'] names 'defualt'"),
        ({"ROUTES": {"demo.auditevent": "nosuch"}}, "sends 'demo.auditevent' to alias 'nosuch'"),
        ({"ROUTES": {"nosuchapp": "default"}}, "no installed app has the label 'nosuchapp'"),
        ({"ROUTES": {"demo.nosuchmodel": "default"}}, "app 'demo' has no model 'nosuchmodel'"),
    ],
)
def test_the_app_refuses_to_load_with_a_mistake(dbhealth: dict[str, Any], expected: str) -> None:
    # What happens in every process that loads the app: gunicorn, runserver, manage.py.
    with override_settings(DBHEALTH=dbhealth), pytest.raises(ImproperlyConfigured) as caught:
        apps.get_app_config("dashboard").ready()

    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
