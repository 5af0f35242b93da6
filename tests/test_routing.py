"""AliasRouter against the real servers: pins from settings, the per-request override, relations."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pytest
from django.db import connections, router

from dashboard.demo.models import AuditEvent, Customer, Order
from dashboard.routing import AliasRouter, alias_override, current_override


def table_names(alias: str) -> list[str]:
    with connections[alias].cursor() as cursor:
        return connections[alias].introspection.table_names(cursor)


class TestPins:
    def test_a_pinned_model_is_read_and_written_on_its_alias(self) -> None:
        assert router.db_for_read(AuditEvent) == "second_db"
        assert router.db_for_write(AuditEvent) == "second_db"

    def test_everything_else_is_read_and_written_on_default(self) -> None:
        assert router.db_for_read(Customer) == "default"
        assert router.db_for_write(Order) == "default"

    def test_a_pinned_model_lands_on_its_server_without_naming_it(self) -> None:
        AuditEvent.objects.create(action="pinned write")

        assert AuditEvent.objects.using("second_db").filter(action="pinned write").exists()
        assert AuditEvent.objects.count() == AuditEvent.objects.using("second_db").count()

    def test_a_pinned_model_is_migrated_only_on_its_alias(self) -> None:
        assert router.allow_migrate_model("second_db", AuditEvent)
        assert not router.allow_migrate_model("default", AuditEvent)
        assert not router.allow_migrate_model("local", AuditEvent)
        assert "demo_auditevent" in table_names("second_db")
        assert "demo_auditevent" not in table_names("default")
        assert "demo_auditevent" not in table_names("local")

    def test_unpinned_models_are_migrated_on_every_alias(self) -> None:
        for alias in ("default", "second_db", "local"):
            assert router.allow_migrate_model(alias, Customer)
            assert "demo_customer" in table_names(alias)

    def test_a_whole_app_can_be_pinned(self, settings) -> None:
        settings.DBHEALTH = {**settings.DBHEALTH, "ROUTES": {"demo": "local"}}

        assert router.db_for_read(Customer) == "local"
        assert router.db_for_write(Order) == "local"
        assert router.allow_migrate_model("local", Order)
        assert not router.allow_migrate_model("default", Order)
        assert router.allow_migrate("local", "demo") is True
        assert router.allow_migrate("default", "demo") is False

    def test_a_model_pin_beats_its_apps_pin(self, settings) -> None:
        settings.DBHEALTH = {
            **settings.DBHEALTH,
            "ROUTES": {"demo": "local", "demo.auditevent": "second_db"},
        }

        assert router.db_for_read(AuditEvent) == "second_db"
        assert router.db_for_read(Customer) == "local"


class TestOverride:
    def test_moves_the_models_it_names_and_nothing_else(self) -> None:
        Customer.objects.using("second_db").create(name="Only EU", email="eu@example.com")

        with alias_override("second_db", [Customer]):
            assert router.db_for_read(Customer) == "second_db"
            assert router.db_for_write(Customer) == "second_db"
            assert list(Customer.objects.values_list("name", flat=True)) == ["Only EU"]
            assert router.db_for_read(Order) == "default"

        assert router.db_for_read(Customer) == "default"
        assert not Customer.objects.filter(name="Only EU").exists()

    def test_a_pin_beats_the_override(self) -> None:
        with alias_override("local", [AuditEvent]):
            assert router.db_for_read(AuditEvent) == "second_db"

    def test_queries_from_a_saved_object_stay_on_its_database(self) -> None:
        us = Customer.objects.using("default").create(name="US", email="us@example.com")

        with alias_override("second_db", [Customer, Order]):
            assert router.db_for_write(Order) == "second_db"
            assert router.db_for_write(Order, instance=us) == "default"
            Order(customer=us, reference="US-1", total=Decimal("1.00")).save()
            assert us.orders.count() == 1

        assert Order.objects.using("default").filter(reference="US-1").exists()
        assert not Order.objects.using("second_db").filter(reference="US-1").exists()

    def test_is_reset_when_the_block_raises(self) -> None:
        with pytest.raises(RuntimeError), alias_override("second_db", [Customer]):
            raise RuntimeError("view failed")

        assert current_override() is None
        assert router.db_for_read(Customer) == "default"

    def test_is_invisible_to_another_thread(self) -> None:
        seen: list[object] = []

        def other_request() -> None:
            seen.append(current_override())
            seen.append(router.db_for_read(Customer))

        with alias_override("second_db", [Customer]):
            thread = threading.Thread(target=other_request)
            thread.start()
            thread.join(timeout=10)
            assert router.db_for_read(Customer) == "second_db"

        assert seen == [None, "default"]

    def test_concurrent_async_tasks_each_see_their_own(self) -> None:
        async def request(alias: str, inside: asyncio.Event, other_inside: asyncio.Event) -> str:
            with alias_override(alias, [Customer]):
                inside.set()
                # Both tasks are inside their blocks at the same time before answering.
                await asyncio.wait_for(other_inside.wait(), timeout=10)
                return str(router.db_for_read(Customer))

        async def both() -> list[str]:
            first, second = asyncio.Event(), asyncio.Event()
            return list(
                await asyncio.gather(
                    request("second_db", first, second), request("local", second, first)
                )
            )

        # A thread of its own: a browser test may have left an event loop in this one.
        answers: list[list[str]] = []
        thread = threading.Thread(target=lambda: answers.append(asyncio.run(both())))
        thread.start()
        thread.join(timeout=20)

        assert answers == [["second_db", "local"]]
        assert current_override() is None


class TestRelations:
    def test_rows_on_different_aliases_cannot_be_related(self) -> None:
        eu = Customer.objects.using("second_db").create(name="EU", email="eu@example.com")
        us_order = Order.objects.using("default").create(
            customer=Customer.objects.using("default").create(name="US", email="us@example.com"),
            reference="US-1",
            total=Decimal("1.00"),
        )

        with pytest.raises(ValueError, match="database"):
            us_order.customer = eu

    def test_rows_on_the_same_alias_can(self) -> None:
        eu = Customer.objects.using("second_db").create(name="EU", email="eu@example.com")
        order = Order(reference="EU-1", total=Decimal("1.00"))
        order.customer = eu
        order.save()

        assert Order.objects.using("second_db").get(reference="EU-1").customer_id == eu.pk

    def test_router_refuses_only_a_real_cross_alias_pair(self) -> None:
        eu = Customer.objects.using("second_db").create(name="EU", email="eu@example.com")
        us = Customer.objects.using("default").create(name="US", email="us@example.com")

        assert AliasRouter().allow_relation(eu, us) is False
        assert AliasRouter().allow_relation(eu, eu) is True
        assert AliasRouter().allow_relation(eu, Customer()) is None
