"""The application's persistent connections (CONN_MAX_AGE): what a request thread notes
about its own connection, and how the page, /health/ and ``dbhealth`` say it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.core.management import call_command
from django.db import connections
from django.test import Client

from dashboard import persistent
from dashboard.persistent import ConnectionState, PersistentView
from tests.conftest import postgres_like


def terminate(backend: int) -> None:
    """``pg_terminate_backend`` from a session of its own; returns once the backend is gone."""
    db = postgres_like()
    with psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"],
        dbname="postgres", autocommit=True,
    ) as killer:  # fmt: skip
        killer.execute("SELECT pg_terminate_backend(%s)", [backend])
        gone = "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = %s)"
        give_up = time.monotonic() + 10
        while not killer.execute(gone, [backend]).fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < give_up, "the backend outlived pg_terminate_backend"
            time.sleep(0.05)


@pytest.fixture
def staff_outside_a_test_case(django_db_blocker) -> Iterator[Client]:
    """A superuser's client without pytest-django's test case: that case forbids any
    connection to an alias added after it started, and a persistent one is the point."""
    from django.contrib.auth import get_user_model

    django_db_blocker.unblock()
    user = get_user_model().objects.create_superuser("kept-staff", password="pw-kept-staff")
    try:
        client = Client()
        client.force_login(user)
        yield client
    finally:
        user.delete()
        connections["default"].close()
        django_db_blocker.restore()


@pytest.fixture
def kept(add_alias, settings, django_db_blocker) -> Iterator[str]:
    """A PostgreSQL alias at CONN_MAX_AGE=60, its connection opened in this thread (the
    test client serves requests in it too); usability re-checked every 0.5 s."""
    settings.DBHEALTH = {**settings.DBHEALTH, "POOL_TTL": 1.5}
    alias = add_alias("kept", **postgres_like(NAME="postgres", CONN_MAX_AGE=60))
    django_db_blocker.unblock()
    try:
        connections[alias].ensure_connection()
        yield alias
    finally:
        connections[alias].close()
        django_db_blocker.restore()


def connection_row(html: str) -> dict[str, str]:
    """The data attributes of the page's one connection row ({} before one is noted)."""
    rows = re.findall(r'<tr data-worker="[^"]*" (data-open="[^<]*)>', html)
    assert len(rows) <= 1, rows
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', rows[0])) if rows else {}


def page_until(client: Client, alias: str, condition: Any, within: float) -> str:
    give_up = time.monotonic() + within
    while True:
        html = client.get(f"/admin/db-health/{alias}/").content.decode()
        if 'id="dbhealth-persistent-connections"' in html and condition(connection_row(html)):
            return html
        assert time.monotonic() < give_up, html[html.find("dbhealth-app-connections") :][:3000]
        time.sleep(0.1)


def test_the_alias_page_shows_the_threads_connection_ageing_then_killed(
    staff_outside_a_test_case: Client, kept: str
) -> None:
    staff_client = staff_outside_a_test_case
    first = connection_row(page_until(staff_client, kept, lambda r: r.get("usable") == "yes", 5))
    older = page_until(
        staff_client, kept, lambda r: int(r["age-s"]) >= int(first["age-s"]) + 1, within=5
    )
    assert connection_row(older)["open"] == "yes" and connection_row(older)["usable"] == "yes"
    assert "without CONN_HEALTH_CHECKS" in older and "dbhealth-badge-warn" in older

    terminate(connections[kept].connection.info.backend_pid)
    killed = page_until(staff_client, kept, lambda r: r["usable"] == "no", within=5)

    assert connection_row(killed)["open"] == "yes"  # nothing here closes the app's connection
    assert "kept: 1 persistent connection(s) not usable" in killed
    assert "the next request on that thread fails its first query" in killed


def test_health_and_dbhealth_warn_about_connections_kept_without_health_checks(
    client: Client, settings, kept: str, capsys
) -> None:
    bearer = {"Authorization": f"Bearer {settings.DBHEALTH['TOKEN']}"}
    client.get("/health/live/")  # a request ends on this thread: its connection is noted

    document = client.get(f"/health/?alias={kept}", headers=bearer).json()
    anonymous = client.get(f"/health/?alias={kept}").json()
    with pytest.raises(SystemExit) as exited:
        call_command("dbhealth", "--alias", kept)

    (entry,) = document["checks"]["kept:connections"]
    assert document["status"] == "warn"
    assert document["checks"]["kept:responseTime"][0]["probe"] == "up"
    assert entry["status"] == "warn" and entry["observedValue"] == 1
    assert (
        "kept keeps connections (CONN_MAX_AGE 60 s) without CONN_HEALTH_CHECKS" in entry["output"]
    )
    (noted,) = entry["persistent"]["connections"]
    assert noted["open"] and noted["usable"] is True and noted["ageSeconds"] >= 0
    assert "persistent" not in anonymous["checks"]["kept:connections"][0]
    assert exited.value.code == 1
    out = capsys.readouterr().out
    assert "kept persistent (CONN_MAX_AGE 60 s): 1 open over 1 worker(s)" in out
    assert "WARNING: kept keeps connections" in out


def state(**changes: Any) -> ConnectionState:
    now = time.time()
    base: dict[str, Any] = {
        "alias": "default", "worker": "web-1:7", "thread": "ThreadPoolExecutor-0_1",
        "open": True, "opened_at": now - 30.2, "usable": True, "checked_at": now - 2,
        "noted_at": now - 2,
    }  # fmt: skip
    return ConnectionState(**{**base, **changes})


def test_with_health_checks_a_dead_connection_is_said_but_not_a_warning() -> None:
    view = PersistentView(
        "default",
        60.0,
        True,
        (state(opened_at=time.time() - 5.2), state(thread="T2", usable=False)),
    )

    assert not view.warns
    assert view.problem == (
        "default: 1 persistent connection(s) not usable (web-1:7 T2): Django replaces it"
        " before the next request's first query (CONN_HEALTH_CHECKS)"
    )
    assert view.text.startswith(
        "persistent (CONN_MAX_AGE 60 s): 2 open over 1 worker(s), aged 5 to 30 s"
    )
    assert view.text.endswith("1 of 2 usable")


def test_unlimited_age_and_no_connection_yet_read_plainly() -> None:
    view = PersistentView("default", None, False)

    assert view.warns
    assert view.text == "persistent (CONN_MAX_AGE unlimited): 0 open (no request has noted one yet)"
    assert "CONN_MAX_AGE unlimited" in (view.problem or "")


def test_aliases_without_persistent_connections_are_not_shown(client: Client) -> None:
    assert persistent.combined() == {}
    assert "default:connections" not in client.get("/health/").json()["checks"]
