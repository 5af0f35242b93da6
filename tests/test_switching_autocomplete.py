"""The admin's autocomplete against an alias that is down: a JSON answer, never a 500."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Permission
from django.test import Client

from dashboard import results
from tests.conftest import mysql_like, postgres_like

SEARCH = {"app_label": "demo", "model_name": "order", "field_name": "customer"}


def test_a_down_alias_answers_json_with_the_reason(
    staff_client: Client, add_alias: Any, closed_port: int, canary: str
) -> None:
    add_alias("dead_pg", **postgres_like(PORT=str(closed_port), PASSWORD=canary))

    response = staff_client.get("/admin/autocomplete/", {**SEARCH, "_db": "dead_pg"})

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["results"] == [] and body["pagination"] == {"more": False}
    assert body["error"].startswith("Database dead_pg is down: ")
    assert canary not in response.content.decode()


def test_an_alias_known_to_be_down_is_not_tried_again(
    staff_client: Client, add_alias: Any, silent_port: int, no_stragglers: None
) -> None:
    add_alias("silent_db", **mysql_like(PORT=str(silent_port)))
    results.latest(["silent_db"])  # found silent by an earlier probe

    started = time.monotonic()
    response = staff_client.get("/admin/autocomplete/", {**SEARCH, "_db": "silent_db"})
    elapsed = time.monotonic() - started

    assert response.status_code == 503
    assert response.json()["error"].startswith("Database silent_db did not answer: ")
    assert elapsed < settings.DBHEALTH["TIMEOUT"]


def test_a_live_alias_still_answers_as_before(staff_client: Client) -> None:
    response = staff_client.get("/admin/autocomplete/", {**SEARCH, "_db": "second_db"})

    assert response.status_code == 200 and response.json()["results"] == []


def test_staff_without_the_details_permission_learn_the_alias_is_down_but_not_the_error(
    django_user_model: Any, add_alias: Any, closed_port: int
) -> None:
    add_alias("dead_db", **mysql_like(PORT=str(closed_port)))
    editor = django_user_model.objects.create_user("editor", password="pw-e", is_staff=True)
    editor.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="demo", codename__in=["view_customer", "view_order"]
        )
    )
    client = Client()
    client.force_login(editor)
    results.latest(["dead_db"])

    listing = client.get("/admin/demo/customer/", {"_db": "dead_db"}).content.decode()
    searched = client.get("/admin/autocomplete/", {**SEARCH, "_db": "dead_db"}).json()["error"]

    for shown in (listing, searched):
        assert "Database dead_db is down (the error is shown to users who may see details)" in (
            shown
        )
        assert "connect" not in shown.split("dead_db is down")[1][:200].lower()
        assert "3306" not in shown.split("dead_db is down")[1][:200]
