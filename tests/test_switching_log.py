"""The admin log of switched objects: entries know their alias; History and Recent actions follow.

PostgreSQL (default) and MariaDB (second_db) each hold a customer with the same primary
key; the admin log lives on default.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.test import Client

from dashboard.demo.models import Customer, Order
from dashboard.models import LogEntryAlias
from tests.test_switching import LIST, NAMES, PK, customer_form, html, server_rows, shop

__all__ = ["shop"]  # the fixture, used by name

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")


def rename(client: Client, alias: str, name: str) -> None:
    order = Order.objects.using(alias).get(reference=f"{alias}-1")
    response = client.post(
        f"{LIST}{PK}/change/?_db={alias}",
        {
            **customer_form(name, f"{alias}@example.com"),
            "orders-INITIAL_FORMS": "1",
            "orders-0-id": str(order.pk),
            "orders-0-customer": str(PK),
            "orders-0-reference": f"{alias}-1",
        },
    )
    assert response.status_code == 302


def test_every_entry_records_the_alias_of_its_object(staff_client: Client, shop: Any) -> None:
    rename(staff_client, "default", "US renamed")
    rename(staff_client, "second_db", "EU renamed")

    recorded = server_rows(
        "default",
        "SELECT l.object_repr, a.alias FROM django_admin_log l"
        " JOIN dashboard_logentryalias a ON a.entry_id = l.id ORDER BY l.id",
    )
    assert recorded == [("US renamed", "default"), ("EU renamed", "second_db")]
    assert server_rows("second_db", "SELECT count(*) FROM dashboard_logentryalias") == [(0,)]


def test_history_on_an_alias_lists_only_that_objects_entries(
    staff_client: Client, shop: Any, django_user_model: Any
) -> None:
    rename(staff_client, "default", "US renamed")
    rename(staff_client, "second_db", "EU renamed")
    # Written before the app recorded aliases: counts as the model's home, default.
    LogEntry.objects.create(
        user=django_user_model.objects.get(username="staff"),
        content_type=ContentType.objects.get_for_model(Customer),
        object_id=str(PK),
        object_repr="older entry",
        action_flag=CHANGE,
        change_message="Changed before aliases were kept.",
    )

    on_default = html(staff_client.get(f"{LIST}{PK}/history/", {"_db": "default"}))
    on_second = html(staff_client.get(f"{LIST}{PK}/history/", {"_db": "second_db"}))

    assert (
        "Changed Name and Region." in on_default
        and "Changed before aliases were kept." in on_default
    )
    assert "On second_db" not in on_default
    assert "On second_db: Changed Name" in on_second
    assert "Changed before aliases were kept." not in on_second
    assert on_second.count('<th scope="row">') == 1


def test_recent_actions_open_each_object_on_its_alias(staff_client: Client, shop: Any) -> None:
    rename(staff_client, "default", "US renamed")
    rename(staff_client, "second_db", "EU renamed")

    index = html(staff_client.get("/admin/"))

    assert f'href="/admin/demo/customer/{PK}/change/?_db=default">US renamed</a>' in index
    assert f'href="/admin/demo/customer/{PK}/change/?_db=second_db">EU renamed</a>' in index
    second = staff_client.get(f"/admin/demo/customer/{PK}/change/?_db=second_db")
    assert 'value="EU renamed"' in html(second) and NAMES["default"] not in html(second)


def test_a_deletion_that_commits_is_logged_with_its_alias(staff_client: Client, shop: Any) -> None:
    staff_client.post(f"{LIST}{PK}/delete/?_db=second_db", {"post": "yes"})

    entry = LogEntry.objects.using("default").get()
    assert entry.is_deletion() and entry.object_id == str(PK)
    assert LogEntryAlias.objects.using("default").get(entry=entry).alias == "second_db"
