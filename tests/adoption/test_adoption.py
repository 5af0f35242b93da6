"""A plain Django site that added dbhealth in a few lines sees its own aliases and switches them.

Runs under ``tests.adoption.settings`` (its own process; see conftest.py), against
the site's own PostgreSQL ``default``, MariaDB ``reporting`` and SQLite ``archive``.
"""

from __future__ import annotations

import sys

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from tests.adoption.inventory.models import Product

pytestmark = pytest.mark.django_db(databases="__all__")

SITE_ALIASES = ("default", "reporting", "archive")
# Where each of the site's two admin sites lives: the default one and its own subclass.
ADMIN_SITES = ("/admin/", "/backoffice/")


@pytest.fixture
def products_per_alias() -> dict[str, str]:
    """One product per alias, named after the alias, so a list shows where it read from."""
    names = {alias: f"widget-on-{alias}" for alias in SITE_ALIASES}
    for alias, name in names.items():
        Product.objects.using(alias).create(name=name, stock=3)
    return names


def test_migrate_left_nothing_unapplied_on_any_alias() -> None:
    for alias in SITE_ALIASES:
        call_command("migrate", check=True, database=alias, verbosity=0)


def test_system_checks_pass_without_warnings() -> None:
    call_command("check", fail_level="WARNING", verbosity=0)


def test_neither_the_demo_nor_the_projects_config_is_loaded() -> None:
    assert not apps.is_installed("dashboard.demo")
    assert not [name for name in sys.modules if name == "config" or name.startswith("config.")]


@pytest.mark.parametrize("site", ADMIN_SITES)
def test_db_health_lists_the_sites_own_aliases(admin_client: Client, site: str) -> None:
    response = admin_client.get(f"{site}db-health/")

    html = response.content.decode()
    assert response.status_code == 200
    for alias in SITE_ALIASES:
        assert f'data-alias="{alias}" data-status="up"' in html
    assert "3 aliases on 3 servers" in html and 'data-condition="up">3 up<' in html
    assert "postgresql" in html and "mysql" in html and "sqlite" in html
    assert "127.0.0.1:5432" in html and "127.0.0.1:3306" in html
    assert 'data-alias="second_db"' not in html  # nothing of this project's own aliases
    assert settings.DB_PASSWORD not in html


@pytest.mark.parametrize("site", ADMIN_SITES)
def test_db_health_page_links_within_its_own_admin_site(admin_client: Client, site: str) -> None:
    html = admin_client.get(f"{site}db-health/").content.decode()

    assert f'hx-get="{site}db-health/table/"' in html
    assert f'action="{site}db-health/reporting/ping/"' in html
    assert f'href="{site}"' in html  # breadcrumbs and header go back to the same site


@pytest.mark.parametrize("site", ADMIN_SITES)
@pytest.mark.parametrize("alias", SITE_ALIASES)
def test_each_of_the_sites_aliases_has_its_own_page(
    admin_client: Client, site: str, alias: str
) -> None:
    table = admin_client.get(f"{site}db-health/").content.decode()
    assert f'href="{site}db-health/{alias}/"' in table

    response = admin_client.get(f"{site}db-health/{alias}/")
    assert response.status_code == 200
    assert alias in response.content.decode()
    assert settings.DB_PASSWORD not in response.content.decode()


@pytest.mark.parametrize("site", ADMIN_SITES)
def test_every_admin_page_links_to_db_health(admin_client: Client, site: str) -> None:
    for page in (site, f"{site}inventory/product/"):
        response = admin_client.get(page, follow=True)
        assert response.status_code == 200, page
        assert f'href="{site}db-health/"' in response.content.decode(), page


@pytest.mark.parametrize("site", ADMIN_SITES)
def test_ping_now_from_htmx_returns_only_the_row_of_its_alias(
    admin_client: Client, site: str
) -> None:
    response = admin_client.post(f"{site}db-health/reporting/ping/", headers={"HX-Request": "true"})

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith(
        '<tr id="alias-reporting" data-alias="reporting" data-status="up"'
    )
    assert f'hx-post="{site}db-health/reporting/ping/"' in html


def test_the_custom_site_keeps_its_own_branding(admin_client: Client) -> None:
    html = admin_client.get("/backoffice/db-health/").content.decode()

    assert "Shop back office" in html


def test_an_admin_site_without_the_mixin_still_works_plainly(
    admin_client: Client, products_per_alias: dict[str, str]
) -> None:
    for page in ("/plain/", "/plain/inventory/product/"):
        response = admin_client.get(page)
        html = response.content.decode()
        assert response.status_code == 200, page
        assert "db-health/" not in html and "dbhealth-alias-switcher" not in html, page
    assert products_per_alias["default"] in html


def test_anonymous_is_sent_to_the_login_of_the_site_it_asked(client: Client) -> None:
    for site in ADMIN_SITES:
        response = client.get(f"{site}db-health/")
        assert response.status_code == 302
        assert response["Location"].startswith(f"{site}login/")


@pytest.mark.parametrize("site", ADMIN_SITES)
@pytest.mark.parametrize("alias", SITE_ALIASES)
def test_switcher_lists_the_rows_of_the_chosen_alias(
    admin_client: Client, products_per_alias: dict[str, str], site: str, alias: str
) -> None:
    response = admin_client.get(f"{site}inventory/product/", {"_db": alias})

    html = response.content.decode()
    assert response.status_code == 200
    assert products_per_alias[alias] in html
    for other in set(SITE_ALIASES) - {alias}:
        assert products_per_alias[other] not in html
    assert f'dbhealth-alias-banner" data-alias="{alias}"' in html
    for offered in SITE_ALIASES:  # the switcher offers every alias the table exists on
        assert f'<option value="{offered}"' in html


def test_health_endpoints_answer_at_the_site_root(client: Client) -> None:
    assert client.get("/health/live/").json() == {"status": "pass"}

    response = client.get("/health/")
    body = response.json()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/health+json")
    assert body["status"] == "pass"
    assert {key.split(":")[0] for key in body["checks"]} == set(SITE_ALIASES)


def test_metrics_answer_with_the_sites_token(client: Client) -> None:
    token = settings.DBHEALTH["TOKEN"]

    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})

    text = response.content.decode()
    assert response.status_code == 200
    for alias in SITE_ALIASES:
        assert f'alias="{alias}"' in text
    assert settings.DB_PASSWORD not in text
