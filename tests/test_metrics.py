from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from dashboard.metrics import REGISTRY
from tests.conftest import postgres_like

METRICS = "/metrics"


@pytest.fixture
def bearer(settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.DBHEALTH['TOKEN']}"}


@pytest.fixture
def dead(add_alias, closed_port, canary) -> str:
    return add_alias("dead_metrics", **postgres_like(PORT=str(closed_port), PASSWORD=canary))


def families(response) -> dict:
    assert response.status_code == 200
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def test_scrape_parses_with_up_latency_and_failures(client: Client, bearer, dead, canary) -> None:
    failures_before = REGISTRY.get_sample_value(
        "dbhealth_probe_failures_total", {"alias": dead, "status": "down"}
    )

    response = client.get(METRICS, headers=bearer)

    assert response["Content-Type"].startswith("text/plain")
    assert canary not in response.text
    found = families(response)
    up = {s.labels["alias"]: (s.labels["vendor"], s.value) for s in found["dbhealth_up"].samples}
    assert found["dbhealth_up"].type == "gauge"
    assert up == {
        "default": ("postgresql", 1.0),
        "second_db": ("mysql", 1.0),
        "local": ("sqlite", 1.0),
        dead: ("postgresql", 0.0),
    }
    latency = found["dbhealth_latency_seconds"]
    assert latency.type == "histogram"
    counts = {
        s.labels["alias"]
        for s in latency.samples
        if s.name == "dbhealth_latency_seconds_count" and s.value > 0
    }
    assert {"default", "second_db", "local"} <= counts
    assert dead not in counts  # a probe that never connected has no latency
    connect = {s.labels["alias"] for s in found["dbhealth_connect_seconds"].samples}
    query = {s.labels["alias"] for s in found["dbhealth_query_seconds"].samples}
    assert connect == query == {"default", "second_db", "local"}
    failures = {
        (s.labels["alias"], s.labels["status"]): s.value
        for s in found["dbhealth_probe_failures"].samples
        if s.name == "dbhealth_probe_failures_total"
    }
    assert failures[(dead, "down")] == (failures_before or 0) + 1


def test_scrapes_cannot_ping_more_often_than_the_cache_ttl(
    client: Client, bearer, probes, settings
) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "CACHE_TTL": 60}

    for _ in range(5):
        families(client.get(METRICS, headers=bearer))

    assert probes.counts == {"default": 1, "second_db": 1, "local": 1}


def test_anonymous_callers_and_wrong_tokens_get_401_sessions_without_details_403(
    client: Client, plain_client: Client, probes
) -> None:
    wrong = {"Authorization": "Bearer nope"}
    for response in (client.get(METRICS), client.get(METRICS, headers=wrong)):
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer ")
        assert "dbhealth_" not in response.text
    logged_in = plain_client.get(METRICS)
    assert logged_in.status_code == 403
    assert "dbhealth_" not in logged_in.text
    assert probes.counts == {}


def test_a_session_with_view_details_may_scrape(staff_client: Client) -> None:
    assert "dbhealth_up" in families(staff_client.get(METRICS))


def test_metrics_public_opens_it_to_anyone(client: Client, settings) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "METRICS_PUBLIC": True}

    assert "dbhealth_up" in families(client.get(METRICS))


def test_the_registry_is_the_apps_own() -> None:
    from prometheus_client import REGISTRY as GLOBAL

    assert (
        GLOBAL.get_sample_value("dbhealth_up", {"alias": "default", "vendor": "postgresql"}) is None
    )


def test_a_metrics_dir_that_is_missing_still_answers_with_this_process(
    client: Client, bearer, settings, tmp_path
) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "METRICS_DIR": str(tmp_path / "missing")}

    found = families(client.get(METRICS, headers=bearer))

    assert "dbhealth_latency_seconds" in found and "dbhealth_up" in found
