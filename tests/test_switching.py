"""The admin alias switcher against real PostgreSQL, MariaDB (second_db) and SQLite (local).

Every alias holds a customer with the same primary key and a different name, so a
page shows which database it read; writes are checked with direct SQL on each server.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import MySQLdb
import psycopg
import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connections, router
from django.db.models.signals import pre_save
from django.test import Client
from django.urls import path

from dashboard import results
from dashboard.demo.models import Customer, Order
from dashboard.routing import current_override
from dashboard.sites import DBHealthAdminSite
from dashboard.switching import SWITCHER_ID, AliasAdminMixin, switchable
from tests.conftest import SLACK_SECONDS, mysql_like, postgres_like

LIST = "/admin/demo/customer/"
PK = 9001
NAMES = {
    "default": "Ada Lovelace (US)",
    "second_db": "Grace Hopper (EU)",
    "local": "Alan Turing (LOCAL)",
}
REGIONS = {"default": "US", "second_db": "EU", "local": "LOCAL"}


# --- two more admin sites: a plain FK select and a raw-id lookup for Order.customer ----


class RawIdOrderAdmin(admin.ModelAdmin):
    raw_id_fields = ["customer"]


plain_site = DBHealthAdminSite(name="plain")
plain_site.register(Customer)
plain_site.register(Order)
raw_id_site = DBHealthAdminSite(name="rawid")
raw_id_site.register(Customer)
raw_id_site.register(Order, RawIdOrderAdmin)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("plain/", plain_site.urls),
    path("rawid/", raw_id_site.urls),
]


# --- data and direct SQL ---------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    cache.clear()


@pytest.fixture
def shop() -> dict[str, Order]:
    """One customer (same pk everywhere, different name) and one order per alias."""
    orders = {}
    for alias, name in NAMES.items():
        customer = Customer.objects.using(alias).create(
            pk=PK, name=name, email=f"{alias}@example.com", region=REGIONS[alias]
        )
        orders[alias] = Order.objects.using(alias).create(
            customer=customer, reference=f"{alias}-1", total=Decimal("10.00")
        )
    return orders


def server_rows(alias: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows read with the server's own driver on a connection of its own (committed data)."""
    db = connections[alias].settings_dict
    if alias == "default":
        with psycopg.connect(
            host=db["HOST"],
            port=db["PORT"],
            user=db["USER"],
            password=db["PASSWORD"],
            dbname=db["NAME"],
        ) as conn:
            return [tuple(row) for row in conn.execute(sql.replace("?", "%s"), params)]
    conn = MySQLdb.connect(
        host=db["HOST"],
        port=int(db["PORT"]),
        user=db["USER"],
        password=db["PASSWORD"] or "",
        database=db["NAME"],
    )
    try:
        cursor = conn.cursor()
        cursor.execute(sql.replace("?", "%s"), params)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        conn.close()


def names_on(alias: str) -> set[str]:
    return {row[0] for row in server_rows(alias, "SELECT name FROM demo_customer")}


def html(response: Any) -> str:
    return response.content.decode()


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


# --- reading ---------------------------------------------------------------------------


class TestList:
    @pytest.mark.parametrize("alias", list(NAMES))
    def test_shows_the_rows_of_the_chosen_alias_only(
        self, staff_client: Client, shop: Any, alias: str
    ) -> None:
        response = staff_client.get(LIST, {"_db": alias})

        assert response.status_code == 200
        page = html(response)
        assert NAMES[alias] in page
        for other in set(NAMES) - {alias}:
            assert NAMES[other] not in page

    def test_without_an_alias_goes_to_default_then_to_the_remembered_one(
        self, staff_client: Client, shop: Any
    ) -> None:
        first = staff_client.get(LIST)
        assert first.status_code == 302
        assert first["Location"] == f"{LIST}?_db=default"

        staff_client.get(LIST, {"_db": "second_db"})
        again = staff_client.get(LIST)

        assert again["Location"] == f"{LIST}?_db=second_db"
        assert NAMES["second_db"] in html(staff_client.get(LIST, follow=True))

    def test_the_choice_is_remembered_per_model(self, staff_client: Client, shop: Any) -> None:
        staff_client.get(LIST, {"_db": "second_db"})

        assert staff_client.get("/admin/demo/order/")["Location"].endswith("?_db=default")
        assert staff_client.get(LIST)["Location"].endswith("?_db=second_db")

    def test_switcher_lists_every_alias_with_its_status_and_a_banner(
        self, staff_client: Client, shop: Any
    ) -> None:
        results.latest()  # the switcher shows the last known statuses, never waits for them
        page = html(staff_client.get(LIST, {"_db": "second_db"}))

        assert f'id="{SWITCHER_ID}"' in page
        assert 'hx-get="/admin/demo/customer/"' in page and 'hx-trigger="change"' in page
        for alias in NAMES:
            assert f'<option value="{alias}" data-status="up"' in page
        assert (
            '<option value="second_db" data-status="up" class="dbhealth-option-up" selected>'
            in (page)
        )
        assert 'class="dbhealth-alias-banner" data-alias="second_db"' in page
        assert "mysql at" in page and "127.0.0.1:3306" in page
        assert "dashboard/htmx.min.js" in page

    def test_search_filters_sorting_and_pagination_keep_the_alias(
        self, staff_client: Client, shop: Any
    ) -> None:
        response = staff_client.get(LIST, {"_db": "second_db", "q": "Grace"})

        page = html(response)
        assert NAMES["second_db"] in page
        assert '<input type="hidden" name="_db" value="second_db">' in page  # search form
        assert 'href="?_db=second_db&amp;q=Grace&amp;region=EU"' in page  # filter
        assert 'href="?_db=second_db&amp;o=-1&amp;q=Grace"' in page  # sorting
        changelist = response.context["cl"]
        assert "_db=second_db" in changelist.get_query_string({"p": 2})  # pagination
        assert f"/admin/demo/customer/{PK}/change/?_changelist_filters=" in page
        assert "/admin/demo/customer/add/?_changelist_filters=" in page
        assert page.count("&amp;_db=second_db") >= 2  # the change and add links

    def test_a_filter_under_an_alias_reads_that_alias(
        self, staff_client: Client, shop: Any
    ) -> None:
        assert NAMES["second_db"] in html(
            staff_client.get(LIST, {"_db": "second_db", "region": "EU"})
        )
        assert NAMES["default"] not in html(
            staff_client.get(LIST, {"_db": "second_db", "region": "US"})
        )

    def test_the_switcher_answers_htmx_with_a_full_page_load(
        self, staff_client: Client, shop: Any
    ) -> None:
        response = staff_client.get(
            LIST, {"_db": "local"}, headers={"HX-Request": "true", "HX-Trigger": SWITCHER_ID}
        )

        assert response.status_code == 200
        assert response["HX-Redirect"] == f"{LIST}?_db=local"
        assert NAMES["local"] in html(staff_client.get(response["HX-Redirect"]))
        assert staff_client.get(LIST)["Location"].endswith("?_db=local")

    def test_third_party_admins_switch_too(self, staff_client: Client, django_user_model) -> None:
        django_user_model.objects.db_manager("second_db").create_user("only-on-second-db")

        on_second = html(staff_client.get("/admin/auth/user/", {"_db": "second_db"}))
        on_default = html(staff_client.get("/admin/auth/user/", {"_db": "default"}))

        assert "only-on-second-db" in on_second and f'id="{SWITCHER_ID}"' in on_second
        assert "only-on-second-db" not in on_default and "staff" in on_default

    def test_a_staff_users_permissions_are_read_where_the_admin_keeps_them(
        self, django_user_model
    ) -> None:
        clerk = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
        clerk.user_permissions.add(Permission.objects.get(codename="view_user"))
        client = Client()
        client.force_login(clerk)

        response = client.get("/admin/auth/user/", {"_db": "second_db"})

        assert response.status_code == 200  # no "clerk" and no permissions on second_db
        assert 'data-alias="second_db"' in html(response)


class TestPinnedModel:
    def test_its_list_offers_only_its_alias(self, staff_client: Client) -> None:
        first = staff_client.get("/admin/demo/auditevent/")
        assert first["Location"] == "/admin/demo/auditevent/?_db=second_db"

        page = html(staff_client.get(first["Location"]))

        assert 'id="dbhealth-alias"' not in page
        assert 'data-alias="second_db"' in page and "pinned by routing" in page

    def test_asking_for_another_alias_says_where_it_lives(self, staff_client: Client) -> None:
        response = staff_client.get("/admin/demo/auditevent/", {"_db": "default"})

        assert response["Location"] == "/admin/demo/auditevent/?_db=second_db"
        page = html(staff_client.get(response["Location"]))
        assert "Audit events are not kept on default; showing second_db." in page


class TestForms:
    def test_change_form_edits_the_object_on_the_chosen_alias(
        self, staff_client: Client, shop: Any
    ) -> None:
        for alias, name in NAMES.items():
            page = html(staff_client.get(f"{LIST}{PK}/change/", {"_db": alias}))
            assert f'value="{name}"' in page
            assert f'class="dbhealth-alias-banner" data-alias="{alias}"' in page
            assert f"{alias}-1" in page  # its inline order

    def test_every_link_on_the_form_carries_the_alias(
        self, staff_client: Client, shop: Any
    ) -> None:
        page = html(staff_client.get(f"{LIST}{PK}/change/", {"_db": "second_db"}))

        for link in ("history/", "delete/"):
            assert (
                f"/admin/demo/customer/{PK}/{link}?_changelist_filters=_db%3Dsecond_db&amp;_db=second_db"
                in page
            )
        assert 'action="?_changelist_filters=_db%3Dsecond_db&amp;_db=second_db"' in page

    def test_history_and_delete_confirmation_show_the_chosen_alias(
        self, staff_client: Client, shop: Any
    ) -> None:
        history = html(staff_client.get(f"{LIST}{PK}/history/", {"_db": "second_db"}))
        confirm = html(staff_client.get(f"{LIST}{PK}/delete/", {"_db": "second_db"}))

        assert f"Change history: {NAMES['second_db']}" in history
        assert 'data-alias="second_db"' in history
        assert NAMES["second_db"] in confirm and "second_db-1" in confirm
        assert NAMES["default"] not in confirm and 'data-alias="second_db"' in confirm

    def test_unique_checks_run_on_the_chosen_alias(self, staff_client: Client, shop: Any) -> None:
        taken_here = staff_client.post(
            f"{LIST}add/?_db=second_db", customer_form("Twin", "second_db@example.com")
        )
        taken_elsewhere = staff_client.post(
            f"{LIST}add/?_db=second_db", customer_form("Twin", "default@example.com")
        )

        assert taken_here.status_code == 200
        assert "Customer with this Email already exists." in html(taken_here)
        assert taken_elsewhere.status_code == 302
        assert Customer.objects.using("second_db").filter(email="default@example.com").exists()

    def test_autocomplete_searches_the_forms_alias(self, staff_client: Client, shop: Any) -> None:
        form = html(staff_client.get("/admin/demo/order/add/", {"_db": "second_db"}))
        assert 'data-ajax--url="/admin/autocomplete/?_db=second_db"' in form

        def found(**extra: str) -> list[str]:
            params = {"app_label": "demo", "model_name": "order", "field_name": "customer"}
            response = staff_client.get("/admin/autocomplete/", {**params, **extra})
            return [item["text"] for item in response.json()["results"]]

        assert found(_db="second_db") == [NAMES["second_db"]]
        assert found(_db="local", term="Alan") == [NAMES["local"]]
        assert found() == [NAMES["default"]]

    @pytest.mark.urls(__name__)
    def test_fk_select_lists_only_the_chosen_aliass_customers(
        self, staff_client: Client, shop: Any
    ) -> None:
        page = html(staff_client.get("/plain/demo/order/add/", {"_db": "second_db"}))

        assert f'<option value="{PK}">{NAMES["second_db"]}</option>' in page
        assert NAMES["default"] not in page and NAMES["local"] not in page
        assert (
            'href="/plain/demo/customer/add/?_to_field=id&amp;_popup=1&amp;_db=second_db"' in page
        )

    @pytest.mark.urls(__name__)
    def test_raw_id_lookup_opens_the_chosen_aliases_list(
        self, staff_client: Client, shop: dict[str, Order]
    ) -> None:
        order = shop["second_db"]
        form = html(staff_client.get(f"/rawid/demo/order/{order.pk}/change/", {"_db": "second_db"}))
        assert 'href="/rawid/demo/customer/?_to_field=id&amp;_db=second_db"' in form
        assert NAMES["second_db"] in form  # the label next to the raw id

        popup = staff_client.get(
            "/rawid/demo/customer/", {"_to_field": "id", "_popup": "1", "_db": "second_db"}
        )

        assert NAMES["second_db"] in html(popup) and NAMES["default"] not in html(popup)
        assert 'id="dbhealth-alias"' not in html(popup)  # no switching inside a lookup
        assert staff_client.get("/rawid/demo/customer/")["Location"].endswith("?_db=default")


# --- writing: every write lands on MariaDB only ----------------------------------------

writes = pytest.mark.django_db(transaction=True, databases="__all__")


def customer_form(name: str, email: str, **extra: str) -> dict[str, str]:
    return {
        "name": name,
        "email": email,
        "region": "EU",
        "orders-TOTAL_FORMS": "1",
        "orders-INITIAL_FORMS": "0",
        "orders-MIN_NUM_FORMS": "0",
        "orders-MAX_NUM_FORMS": "1000",
        "orders-0-reference": f"{email}-order",
        "orders-0-total": "5.00",
        "orders-0-status": "open",
        **extra,
    }


@writes
class TestWrites:
    def test_add_with_an_inline_row_lands_only_on_mariadb(self, staff_client: Client) -> None:
        response = staff_client.post(
            f"{LIST}add/?_db=second_db", customer_form("New EU", "new@eu.example")
        )

        assert response.status_code == 302
        assert query_of(response["Location"])["_db"] == ["second_db"]
        assert names_on("second_db") == {"New EU"}
        assert names_on("default") == set()
        assert server_rows("second_db", "SELECT reference FROM demo_order") == [
            ("new@eu.example-order",)
        ]
        assert server_rows("default", "SELECT reference FROM demo_order") == []

    def test_save_and_continue_and_save_and_add_another_stay_on_the_alias(
        self, staff_client: Client
    ) -> None:
        continued = staff_client.post(
            f"{LIST}add/?_db=second_db",
            customer_form("Kept", "kept@eu.example", _continue="1"),
        )
        another = staff_client.post(
            f"{LIST}add/?_db=second_db",
            customer_form("Next", "next@eu.example", _addanother="1"),
        )

        kept = server_rows("second_db", "SELECT id FROM demo_customer WHERE name = ?", ("Kept",))
        assert continued["Location"].startswith(f"{LIST}{kept[0][0]}/change/?")
        assert query_of(continued["Location"])["_db"] == ["second_db"]
        assert another["Location"].startswith(f"{LIST}add/?")
        assert query_of(another["Location"])["_db"] == ["second_db"]
        assert names_on("second_db") == {"Kept", "Next"} and names_on("default") == set()

    def test_change_updates_mariadb_and_leaves_the_same_pk_on_postgres_alone(
        self, staff_client: Client, shop: Any
    ) -> None:
        order = Order.objects.using("second_db").get(reference="second_db-1")
        response = staff_client.post(
            f"{LIST}{PK}/change/?_db=second_db",
            {
                **customer_form("Grace renamed", "second_db@example.com"),
                "orders-TOTAL_FORMS": "1",
                "orders-INITIAL_FORMS": "1",
                "orders-0-id": str(order.pk),
                "orders-0-customer": str(PK),
                "orders-0-reference": "second_db-1",
                "orders-0-total": "12.50",
            },
        )

        assert response.status_code == 302
        assert names_on("second_db") == {"Grace renamed"}
        assert names_on("default") == {NAMES["default"]}
        assert server_rows("second_db", "SELECT total FROM demo_order") == [(Decimal("12.50"),)]
        assert server_rows("default", "SELECT total FROM demo_order") == [(Decimal("10.00"),)]

    def test_delete_removes_the_row_from_mariadb_only(
        self, staff_client: Client, shop: Any
    ) -> None:
        response = staff_client.post(f"{LIST}{PK}/delete/?_db=second_db", {"post": "yes"})

        assert response.status_code == 302
        assert query_of(response["Location"])["_db"] == ["second_db"]
        assert names_on("second_db") == set()
        assert server_rows("second_db", "SELECT count(*) FROM demo_order") == [(0,)]
        assert names_on("default") == {NAMES["default"]}

    def test_bulk_delete_removes_rows_from_mariadb_only(
        self, staff_client: Client, shop: Any
    ) -> None:
        extra = Customer.objects.using("second_db").create(name="Bulk", email="bulk@eu.example")
        selected = {"action": "delete_selected", "_selected_action": [str(PK), str(extra.pk)]}

        confirm = staff_client.post(f"{LIST}?_db=second_db", selected)
        assert "Bulk" in html(confirm) and 'data-alias="second_db"' in html(confirm)
        done = staff_client.post(f"{LIST}?_db=second_db", {**selected, "post": "yes"})

        assert done.status_code == 302
        assert names_on("second_db") == set()
        assert names_on("default") == {NAMES["default"]}

    def test_bulk_action_updates_mariadb_only(self, staff_client: Client, shop: dict) -> None:
        staff_client.post(
            "/admin/demo/order/?_db=second_db",
            {"action": "mark_paid", "_selected_action": [str(shop["second_db"].pk)]},
        )

        assert server_rows("second_db", "SELECT status FROM demo_order") == [("paid",)]
        assert server_rows("default", "SELECT status FROM demo_order") == [("open",)]

    def test_the_admin_log_stays_on_default_and_says_where_the_object_is(
        self, staff_client: Client, shop: Any
    ) -> None:
        staff_client.post(f"{LIST}add/?_db=second_db", customer_form("Logged", "log@eu.example"))
        staff_client.post(f"{LIST}{PK}/delete/?_db=second_db", {"post": "yes"})

        log = "SELECT object_repr, change_message FROM django_admin_log ORDER BY id"
        assert server_rows("default", log) == [
            ("Logged", "On second_db: Added. Added order “log@eu.example-order”."),
            (NAMES["second_db"], "Deleted from second_db."),
        ]
        assert server_rows("second_db", log) == []
        assert LogEntry.objects.using("default").count() == 2

    def test_a_write_on_default_is_logged_as_usual(self, staff_client: Client) -> None:
        staff_client.post(f"{LIST}add/?_db=default", customer_form("Home", "home@us.example"))

        entry = LogEntry.objects.using("default").get()
        assert entry.get_change_message().startswith("Added.")
        assert names_on("default") == {"Home"} and names_on("second_db") == set()

    def test_adding_in_a_popup_writes_to_the_openers_alias(self, staff_client: Client) -> None:
        response = staff_client.post(
            f"{LIST}add/?_to_field=id&_popup=1&_db=second_db",
            customer_form("From popup", "popup@eu.example", _popup="1", _to_field="id"),
        )

        assert response.status_code == 200
        assert "data-popup-response" in html(response)
        assert names_on("second_db") == {"From popup"} and names_on("default") == set()

    def test_a_post_naming_an_unknown_alias_writes_nothing(self, staff_client: Client) -> None:
        response = staff_client.post(
            f"{LIST}add/?_db=nope", customer_form("Lost", "lost@x.example")
        )

        assert response.status_code == 302
        assert names_on("default") == set() and names_on("second_db") == set()


# --- bad input -------------------------------------------------------------------------


class TestBadInput:
    def test_unknown_alias_falls_back_to_default_with_a_message(
        self, staff_client: Client, shop: Any
    ) -> None:
        response = staff_client.get(LIST, {"_db": "nope"})

        assert response.status_code == 302
        assert response["Location"] == f"{LIST}?_db=default"
        page = html(staff_client.get(response["Location"]))
        assert "There is no database alias named “nope”; showing default." in page
        assert NAMES["default"] in page

    @pytest.mark.parametrize(
        "value", ["https://evil.example/", "//evil.example/x", "\\\\evil.example", "/\\evil"]
    )
    def test_the_alias_parameter_never_redirects_off_site(
        self, staff_client: Client, value: str
    ) -> None:
        for url in (LIST, f"{LIST}add/", f"{LIST}{PK}/change/"):
            location = staff_client.get(url, {"_db": value})["Location"]
            assert location.startswith(f"{url}?"), location
            assert urlsplit(location).netloc == ""

    def test_a_down_alias_shows_the_probes_error_and_the_switcher(
        self, staff_client: Client, add_alias: Any, closed_port: int, no_stragglers: None
    ) -> None:
        add_alias("dead_db", **mysql_like(PORT=str(closed_port)))
        results.latest()  # the switcher shows the last known statuses, never waits for them

        for url in (f"{LIST}{PK}/change/", f"{LIST}add/", LIST):
            response = staff_client.get(url, {"_db": "dead_db"})
            assert response.status_code == 200
            page = html(response)
            assert "Database dead_db is down: (2002) Can&#x27;t connect" in page
            assert 'data-alias="dead_db" data-status="down"' in page
        assert '<option value="second_db" data-status="up"' in page  # the list's switcher
        assert '<option value="dead_db" data-status="down"' in page
        assert staff_client.get(LIST)["Location"].endswith("?_db=default")  # not remembered

    def test_no_page_shows_a_password(
        self, staff_client: Client, shop: Any, add_alias: Any, closed_port: int, canary: str
    ) -> None:
        add_alias("dead_pg", **postgres_like(PORT=str(closed_port), PASSWORD=canary))

        for alias in ("default", "dead_pg"):
            for url in (LIST, f"{LIST}{PK}/change/", f"{LIST}{PK}/history/"):
                page = html(staff_client.get(url, {"_db": alias}))
                assert 'data-alias="' + alias in page
                assert canary not in page

    def test_a_silent_alias_answers_within_the_probe_timeout(
        self, staff_client: Client, add_alias: Any, silent_port: int, no_stragglers: None
    ) -> None:
        # The same page on a healthy alias, in this run: what rendering it costs right
        # now (templates compiled, the machine as busy as it is), without any wait.
        started = time.monotonic()
        assert staff_client.get(LIST, {"_db": "default"}).status_code == 200
        baseline = time.monotonic() - started
        add_alias("silent_db", **mysql_like(PORT=str(silent_port)))

        started = time.monotonic()
        response = staff_client.get(LIST, {"_db": "silent_db"})
        elapsed = time.monotonic() - started

        assert response.status_code == 200
        assert "Database silent_db did not answer: no answer within" in html(response)
        assert elapsed < settings.DBHEALTH["TIMEOUT"] + baseline + SLACK_SECONDS

    @pytest.mark.django_db(transaction=True, databases="__all__")
    def test_an_unmigrated_alias_says_how_to_migrate_it(self, staff_client: Client) -> None:
        # The SQLite alias loses the table for the length of this test.
        with connections["local"].cursor() as cursor:
            cursor.execute("ALTER TABLE demo_customer RENAME TO demo_customer_elsewhere")
        try:
            listing = staff_client.get(LIST, {"_db": "local"})
            form = staff_client.get(f"{LIST}add/", {"_db": "local"})
            other = staff_client.get(LIST, {"_db": "default"})
        finally:
            with connections["local"].cursor() as cursor:
                cursor.execute("ALTER TABLE demo_customer_elsewhere RENAME TO demo_customer")
            cache.clear()

        message = (
            "Customer is not migrated on local"
            " (run <code>manage.py migrate --database=local</code>)"
        )
        assert listing.status_code == 200 and message in html(listing)
        assert form.status_code == 200 and message in html(form)
        assert "`" not in html(listing)
        assert '<option value="local"' not in html(other)  # not offered by the switcher
        assert '<option value="second_db"' in html(other)

    def test_anonymous_users_are_sent_to_login_before_anything_is_probed(
        self, client: Client
    ) -> None:
        response = client.get(LIST, {"_db": "second_db"})

        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


# --- the override belongs to one request -----------------------------------------------


class TestIsolation:
    def test_the_override_ends_with_the_request(self, staff_client: Client, shop: Any) -> None:
        staff_client.get(LIST, {"_db": "second_db"})

        assert current_override() is None
        assert router.db_for_read(Customer) == "default"
        orders = html(staff_client.get("/admin/demo/order/", {"_db": "default"}))
        assert "default-1" in orders and "second_db-1" not in orders

    @pytest.mark.django_db(transaction=True, databases="__all__")
    def test_another_thread_does_not_see_a_requests_override(self, staff_client: Client) -> None:
        seen: dict[str, object] = {}

        def during_save(sender: type, instance: Customer, **kwargs: object) -> None:
            seen["request"] = router.db_for_write(Customer)

            def other() -> None:
                seen["thread"] = router.db_for_write(Customer)
                seen["thread override"] = current_override()

            thread = threading.Thread(target=other)
            thread.start()
            thread.join(timeout=10)

        pre_save.connect(during_save, sender=Customer)
        try:
            staff_client.post(f"{LIST}add/?_db=second_db", customer_form("T", "t@eu.example"))
        finally:
            pre_save.disconnect(during_save, sender=Customer)

        assert seen == {"request": "second_db", "thread": "default", "thread override": None}


class TestSite:
    def test_every_registered_admin_gets_the_mixin(self) -> None:
        for model in (Customer, Order, get_user_model()):
            assert isinstance(admin.site._registry[model], AliasAdminMixin)

    def test_an_admin_can_opt_out(self) -> None:
        class Quiet(admin.ModelAdmin):
            dbhealth_switchable = False

        assert switchable(Quiet) is Quiet
        switched = switchable(RawIdOrderAdmin)
        assert issubclass(switched, AliasAdminMixin) and issubclass(switched, RawIdOrderAdmin)
        assert switched.__name__ == "RawIdOrderAdmin"

    def test_without_the_alias_router_the_switcher_is_off_not_half_working(
        self, staff_client: Client, shop: Any, settings: Any
    ) -> None:
        settings.DATABASE_ROUTERS = []

        response = staff_client.get(LIST, {"_db": "second_db"})

        page = html(response)
        assert response.status_code == 200
        assert NAMES["default"] in page and NAMES["second_db"] not in page
        assert "dbhealth-alias" not in page
