"""A site on django-health-check shows each of its database aliases as its own check.

Runs under ``tests.adoption_healthcheck.settings`` (its own process; see conftest.py).
"""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.test import Client

pytestmark = pytest.mark.django_db(databases=["default"])

UP = ("default", "reporting")
DOWN = ("refused", "silent", "silent_too")


def check(alias: str) -> str:
    return f"DatabaseAlias(alias='{alias}')"


def test_json_has_one_entry_per_alias_and_a_down_one_is_unavailable(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.get("/ht/?format=json")

    assert response.status_code == 500  # django-health-check's answer when a check fails
    body = response.json()
    assert list(body) == [*(check(alias) for alias in UP + DOWN), "Cache(alias='default')"]
    assert body[check("default")] == body[check("reporting")] == "OK"
    assert body[check("refused")] == "Unavailable: down (psycopg.OperationalError)"
    assert body[check("silent")] == "Unavailable: timeout, no answer within 1 s"
    assert settings.DB_PASSWORD not in response.content.decode()
    assert caplog.records  # django-health-check logs each failed check
    assert settings.DB_PASSWORD not in caplog.text


def test_the_html_page_lists_every_alias_with_its_status(client: Client) -> None:
    response = client.get("/ht/", headers={"Accept": "text/html"})

    html = response.content.decode()
    assert response.status_code == 500
    for alias in UP + DOWN:
        assert check(alias).replace("'", "&#x27;") in html
    assert "Unavailable: down (psycopg.OperationalError)" in html
    assert "Unavailable: timeout, no answer within 1 s" in html
    assert settings.DB_PASSWORD not in html
    assert "127.0.0.1" not in html  # where the servers are stays on dbhealth's own page


def test_two_silent_servers_cost_the_page_one_timeout(client: Client) -> None:
    started = time.monotonic()
    response = client.get("/ht/?format=json")
    elapsed = time.monotonic() - started

    assert response.json()[check("silent_too")].startswith("Unavailable: timeout")
    # One round under TIMEOUT (1 s) for all five aliases; each alone would be 2 s or more.
    assert elapsed < 1.9


def test_a_page_of_the_servers_that_are_up_passes(client: Client) -> None:
    response = client.get("/ht/ready/?format=json")

    assert response.status_code == 200
    assert response.json() == {check("default"): "OK", check("reporting"): "OK"}


def test_openmetrics_labels_each_alias(client: Client) -> None:
    text = client.get("/ht/?format=openmetrics").content.decode()

    assert 'django_health_check_status{check="DatabaseAlias",alias="default"} 1' in text
    assert 'django_health_check_status{check="DatabaseAlias",alias="refused"} 0' in text
    assert "probed_with" not in text


def test_none_of_dbhealths_own_urls_are_served(client: Client) -> None:
    for path in ("/health/", "/health/live/", "/metrics", "/admin/db-health/"):
        assert client.get(path).status_code == 404
