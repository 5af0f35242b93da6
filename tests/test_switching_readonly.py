"""Read-only aliases in the switched admin: marked, shown read-only, writes refused without a 500.

Two real kinds: a PostgreSQL database this test creates with
``default_transaction_read_only = on`` (the probe sees it), and a MariaDB account that
may only SELECT (the probe cannot see it; the first refused write teaches the admin).
Rows are checked with direct SQL on each server; the admin log with the ORM on default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import MySQLdb
import psycopg
import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.db import connections
from django.test import Client

from dashboard import results
from dashboard.demo.models import Customer, Order
from tests.conftest import mysql_like, postgres_like
from tests.test_switching import LIST, PK, customer_form, html

pytestmark = pytest.mark.django_db(transaction=True, databases="__all__")

ORDERS = "/admin/demo/order/"
RO_NAME = "Read Only (RO)"


def _postgres_admin() -> psycopg.Connection[Any]:
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        user=db["USER"],
        password=db["PASSWORD"],
        dbname="postgres",
        autocommit=True,
    )


def _open(alias: str) -> None:
    """Open the site's connection to an alias added by this test.

    Django's test case refuses to *open* a connection to an alias it was not told
    about at its start (the alias did not exist then); one already open is used as is,
    and the test client does not close connections between requests.
    """
    connections[alias].connect()


def _seed(alias: str) -> None:
    customer = Customer.objects.using(alias).create(
        pk=PK, name=RO_NAME, email="ro@example.com", region="RO"
    )
    Order.objects.using(alias).create(customer=customer, reference="ro-1", total=Decimal("3.00"))


@pytest.fixture
def read_only_postgres(add_alias: Any) -> Iterator[str]:
    """Alias ``ro_pg``: a database of its own, seeded, then made read-only by default."""
    name = f"{settings.TEST_DB_NAME}_ro"
    admin = _postgres_admin()
    try:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
        alias = add_alias("ro_pg", **postgres_like(NAME=name))
        _open(alias)
        with connections[alias].schema_editor() as editor:
            editor.create_model(Customer)
            editor.create_model(Order)
        _seed(alias)
        connections[alias].close()
        # From the next session on, every transaction on it is read-only.
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        _open(alias)
        yield alias
    finally:
        if "ro_pg" in connections.settings:
            connections["ro_pg"].close()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _mariadb_root(sql: str, *params: Any) -> None:
    db = settings.DATABASES["second_db"]
    conn = MySQLdb.connect(
        host=db["HOST"], port=int(db["PORT"]), user=db["USER"], password=db["PASSWORD"] or ""
    )
    try:
        conn.cursor().execute(sql, params)
    finally:
        conn.close()


@pytest.fixture
def select_only_mariadb(add_alias: Any, canary: str) -> Iterator[str]:
    """Alias ``ro_maria``: second_db's test database through an account that may only SELECT."""
    user = f"ro_{settings.TEST_DB_NAME}"[:80]
    database = settings.DATABASES["second_db"]["NAME"]
    hosts = ("localhost", "127.0.0.1", "%")
    for host in hosts:
        _mariadb_root("DROP USER IF EXISTS %s@%s", user, host)
        _mariadb_root("CREATE USER %s@%s IDENTIFIED BY %s", user, host, canary)
        _mariadb_root(f"GRANT SELECT ON `{database}`.* TO %s@%s", user, host)
    try:
        alias = add_alias("ro_maria", **mysql_like(USER=user, PASSWORD=canary))
        _open(alias)
        yield alias
    finally:
        if "ro_maria" in connections.settings:
            connections["ro_maria"].close()
        for host in hosts:
            _mariadb_root("DROP USER IF EXISTS %s@%s", user, host)


@pytest.fixture
def second_db_rows() -> None:
    _seed("second_db")


def rows(alias: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(customers, orders) as the server holds them, read with the ORM on ``alias``."""
    source = "second_db" if alias == "ro_maria" else alias
    customers = list(Customer.objects.using(source).order_by("pk").values_list("pk", "name"))
    orders = list(Order.objects.using(source).order_by("pk").values_list("reference", "status"))
    return customers, orders


def order_pk(alias: str) -> int:
    source = "second_db" if alias == "ro_maria" else alias
    return int(Order.objects.using(source).get(reference="ro-1").pk)


# name -> (URL, POST data) of one write through the admin, on ``alias``
Write = Callable[[str], tuple[str, dict[str, Any]]]
WRITES: dict[str, Write] = {
    "change": lambda alias: (
        f"{LIST}{PK}/change/?_db={alias}",
        {
            **customer_form("Renamed", "ro@example.com"),
            "orders-INITIAL_FORMS": "1",
            "orders-0-id": str(order_pk(alias)),
            "orders-0-customer": str(PK),
            "orders-0-reference": "ro-1",
        },
    ),
    "add": lambda alias: (f"{LIST}add/?_db={alias}", customer_form("New", "new@ro.example")),
    "delete": lambda alias: (f"{LIST}{PK}/delete/?_db={alias}", {"post": "yes"}),
    "bulk delete": lambda alias: (
        f"{LIST}?_db={alias}",
        {"action": "delete_selected", "_selected_action": [str(PK)], "post": "yes"},
    ),
    "bulk action": lambda alias: (
        f"{ORDERS}?_db={alias}",
        {"action": "mark_paid", "_selected_action": [str(order_pk(alias))]},
    ),
}


class TestReadOnlyByDefault:
    """PostgreSQL with default_transaction_read_only = on: the probe knows."""

    def test_the_switcher_and_the_banner_say_read_only(
        self, staff_client: Client, read_only_postgres: str
    ) -> None:
        results.latest()

        page = html(staff_client.get(LIST, {"_db": "ro_pg"}))

        assert RO_NAME in page
        assert 'data-alias="ro_pg" data-status="up" data-read-only="true"' in page
        assert "ro_pg — postgresql, read-only, checked" in page
        assert "second_db — mysql, up, checked" in page
        assert "/admin/demo/customer/add/" not in page  # no "Add customer"

    def test_the_change_form_renders_read_only_and_says_why(
        self, staff_client: Client, read_only_postgres: str
    ) -> None:
        page = html(staff_client.get(f"{LIST}{PK}/change/", {"_db": "ro_pg"}))

        assert "Shown read-only: ro_pg is read-only (in recovery or read-only by default)." in page
        assert f'<div class="readonly">{RO_NAME}</div>' in page
        assert 'name="_save"' not in page and 'name="name"' not in page
        assert 'name="orders-0-reference"' not in page  # the inline too

    def test_the_add_form_leads_back_to_the_list_with_the_reason(
        self, staff_client: Client, read_only_postgres: str
    ) -> None:
        response = staff_client.get(f"{LIST}add/", {"_db": "ro_pg"})

        assert response.status_code == 302
        assert response["Location"] == f"{LIST}?_db=ro_pg"
        page = html(staff_client.get(response["Location"]))
        assert "Nothing was saved: ro_pg is read-only" in page

    @pytest.mark.parametrize("write", list(WRITES))
    def test_a_write_is_refused_with_a_message_and_nothing_changes(
        self, staff_client: Client, read_only_postgres: str, write: str
    ) -> None:
        before = rows("ro_pg")
        url, data = WRITES[write]("ro_pg")

        response = staff_client.post(url, data)

        assert response.status_code == 302
        assert "_db=ro_pg" in response["Location"]
        page = html(staff_client.get(response["Location"]))
        assert "Nothing was saved: ro_pg is read-only" in page
        assert rows("ro_pg") == before
        assert LogEntry.objects.using("default").count() == 0


class TestSelectOnlyAccount:
    """MariaDB, an account with SELECT only: the probe sees a writable server."""

    @pytest.mark.parametrize("write", list(WRITES))
    def test_a_refused_write_becomes_a_message_with_nothing_half_written(
        self, staff_client: Client, select_only_mariadb: str, second_db_rows: None, write: str
    ) -> None:
        before = rows("ro_maria")
        url, data = WRITES[write]("ro_maria")

        response = staff_client.post(url, data)

        assert response.status_code == 302
        assert "_db=ro_maria" in response["Location"]
        page = html(staff_client.get(response["Location"]))
        assert "Nothing was saved: ro_maria refused a write: (1142) " in page
        assert rows("ro_maria") == before
        # No "Deleted from ro_maria." for a deletion that never happened.
        assert LogEntry.objects.using("default").count() == 0

    def test_after_a_refused_write_the_alias_is_read_only(
        self,
        staff_client: Client,
        select_only_mariadb: str,
        second_db_rows: None,
        canary: str,
    ) -> None:
        results.latest()
        assert 'data-read-only="true"' not in html(staff_client.get(LIST, {"_db": "ro_maria"}))
        url, data = WRITES["change"]("ro_maria")
        staff_client.post(url, data)

        listing = html(staff_client.get(LIST, {"_db": "ro_maria"}))
        form = html(staff_client.get(f"{LIST}{PK}/change/", {"_db": "ro_maria"}))

        assert 'data-alias="ro_maria" data-status="up" data-read-only="true"' in listing
        assert "ro_maria — mysql, read-only, checked" in listing
        assert "Shown read-only: ro_maria refused a write: (1142) " in form
        assert 'name="_save"' not in form
        assert canary not in listing and canary not in form
        # The other aliases on the same server still take writes.
        other = html(staff_client.get(LIST, {"_db": "second_db"}))
        assert 'data-alias="second_db" data-status="up" role="status"' in other
