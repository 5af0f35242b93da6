from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from dashboard import healthjson, report
from dashboard.probes import probe, probe_all
from tests.conftest import mysql_like, postgres_like
from tests.test_results import burst

HEALTH = "/health/"
ANONYMOUS_FIELDS = {
    "componentId",
    "componentType",
    "observedValue",
    "observedUnit",
    "status",
    "time",
    "lastProbe",
    "flapping",
    "since",
    "probesSince",
    "output",
}
DETAIL_FIELDS = {"vendor", "host", "port", "version", "error"}


@pytest.fixture
def token(settings) -> str:
    return str(settings.DBHEALTH["TOKEN"])


@pytest.fixture
def dead(add_alias, closed_port, canary) -> str:
    return add_alias("dead", **postgres_like(PORT=str(closed_port), PASSWORD=canary))


def test_anonymous_gets_the_health_json_shape_field_by_field(client: Client) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    response = client.get(HEALTH)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/health+json"
    assert "no-store" in response["Cache-Control"]
    body = response.json()
    assert set(body) == {"status", "description", "notes", "checks"}
    assert body["status"] == "pass"
    assert body["notes"] == [body["notes"][0]] and body["notes"][0].startswith("3 up of 3")
    assert list(body["checks"]) == [
        "default:responseTime",
        "second_db:responseTime",
        "local:responseTime",
    ]
    for alias, entries in [(key.split(":")[0], value) for key, value in body["checks"].items()]:
        assert isinstance(entries, list) and len(entries) == 1
        (entry,) = entries
        assert set(entry) == ANONYMOUS_FIELDS
        assert entry["componentId"] == alias
        assert entry["componentType"] == "datastore"
        assert isinstance(entry["observedValue"], float) and entry["observedValue"] > 0
        assert entry["observedUnit"] == "ms"
        assert entry["status"] == "pass"
        checked = datetime.fromisoformat(entry["time"])
        assert checked.tzinfo is not None and before <= checked <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("critical_down", "other_down", "status", "code"),
    [
        (False, False, "pass", 200),
        (False, True, "warn", 200),
        (True, False, "fail", 503),
        (True, True, "fail", 503),
    ],
)
def test_verdict_and_http_status_for_each_combination(
    client: Client, add_alias, closed_port, settings, critical_down, other_down, status, code
) -> None:
    down = {"PORT": str(closed_port)}
    add_alias("orders", **postgres_like(**(down if critical_down else {})))
    add_alias("reports", **mysql_like(**(down if other_down else {})))
    settings.DBHEALTH = {**settings.DBHEALTH, "CRITICAL_ALIASES": ["default", "orders"]}

    response = client.get(HEALTH, {"alias": ["default", "orders", "reports"]})

    body = response.json()
    assert (response.status_code, body["status"]) == (code, status)
    checks = {key: value[0]["status"] for key, value in body["checks"].items()}
    assert checks == {
        "default:responseTime": "pass",
        "orders:responseTime": "fail" if critical_down else "pass",
        "reports:responseTime": "warn" if other_down else "pass",
    }


def test_alias_filter_and_unknown_alias(client: Client) -> None:
    only = client.get(HEALTH, {"alias": ["second_db", "local"]}).json()
    unknown = client.get(HEALTH, {"alias": ["default", "nope"]})

    assert list(only["checks"]) == ["second_db:responseTime", "local:responseTime"]
    assert unknown.status_code == 400
    assert unknown["Content-Type"] == "application/health+json"
    assert unknown.json() == {"status": "fail", "output": "unknown database alias: 'nope'"}


def _leaks(text: str, canary: str) -> list[str]:
    """Hosts, ports, vendors, versions, error text or the password found in ``text``."""
    version = probe("default").server_version or "no version"
    secrets = ("127.0.0.1", "5432", "postgresql", version, "refused", "Error", canary)
    return [word for word in secrets if word in text]


def test_anonymous_and_plain_users_get_statuses_only(
    client: Client, plain_client: Client, dead, canary
) -> None:
    for caller in (client, plain_client):
        response = caller.get(HEALTH)

        assert response.status_code == 200
        assert response.json()["status"] == "warn"
        assert _leaks(response.content.decode(), canary) == []
        (entry,) = response.json()["checks"]["dead:responseTime"]
        assert set(entry) == ANONYMOUS_FIELDS and entry["status"] == "warn"


@pytest.mark.parametrize("sent", ["wrong-token", "", "token-canary-Zq7xP2wLk"])
def test_a_wrong_token_gets_401_and_no_details(client: Client, dead, canary, sent) -> None:
    response = client.get(HEALTH, headers={"Authorization": f"Bearer {sent}"})

    assert response.status_code == 401
    assert response["Content-Type"] == "application/health+json"
    assert response["WWW-Authenticate"].startswith("Bearer ")
    assert response.json() == {"status": "fail", "output": "invalid bearer token"}
    assert _leaks(response.content.decode(), canary) == []


def test_no_configured_token_means_every_bearer_token_is_wrong(client: Client, settings) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "TOKEN": ""}

    assert client.get(HEALTH, headers={"Authorization": "Bearer "}).status_code == 401


def _assert_detailed(response, canary: str) -> None:
    assert response.status_code == 200
    checks = response.json()["checks"]
    (up,) = checks["default:responseTime"]
    assert set(up) >= DETAIL_FIELDS
    assert (up["vendor"], up["host"], up["port"]) == ("postgresql", "127.0.0.1", 5432)
    assert up["version"] and up["error"] is None
    (down,) = checks["dead:responseTime"]
    assert down["observedValue"] is None
    assert "refused" in down["error"].lower()
    assert canary not in response.content.decode()


def test_the_token_unlocks_details(client: Client, dead, canary, token) -> None:
    _assert_detailed(client.get(HEALTH, headers={"Authorization": f"Bearer {token}"}), canary)


def test_a_staff_session_unlocks_details(staff_client: Client, dead, canary) -> None:
    _assert_detailed(staff_client.get(HEALTH), canary)


def test_head_answers_without_a_body(client: Client) -> None:
    response = client.head(HEALTH)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/health+json"
    assert response.content == b""
    assert client.post(HEALTH).status_code == 405


def test_liveness_touches_no_database(client: Client, probes) -> None:
    response = client.get("/health/live/")

    assert response.status_code == 200
    assert response.json() == {"status": "pass"}
    assert probes.counts == {}


def test_fifty_concurrent_requests_probe_each_alias_once(probes, settings) -> None:
    settings.DBHEALTH = {**settings.DBHEALTH, "CACHE_TTL": 60}
    local = threading.local()

    def request():
        local.client = getattr(local, "client", None) or Client()
        response = local.client.get(HEALTH)
        return response.status_code, response.json()["status"]

    answers = burst(50, request)

    assert answers == [(200, "pass")] * 50
    assert probes.counts == {"default": 1, "second_db": 1, "local": 1}


def test_the_presenter_is_a_pure_function_of_a_report(dead) -> None:
    found = report.from_results(probe_all(["default", dead]), critical_aliases=["default"])

    anonymous = healthjson.document(found, detailed=False)
    detailed = healthjson.document(found, detailed=True)

    assert anonymous["status"] == detailed["status"] == "warn"
    assert healthjson.HTTP_STATUS[anonymous["status"]] == 200
    # No readiness recorded in a literal report: the probe alone decides.
    assert set(anonymous["checks"]["dead:responseTime"][0]) == ANONYMOUS_FIELDS - {
        "since",
        "probesSince",
        "output",
    }
    assert detailed["checks"]["dead:responseTime"][0]["probe"] == "down"
    critical = report.from_results(found.results, critical_aliases=["default", dead])
    assert healthjson.document(critical, detailed=False)["status"] == "fail"
