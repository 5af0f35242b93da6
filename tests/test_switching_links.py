"""Every link and redirect of a switched page keeps its alias, even when another tab switched.

default and second_db hold rows with the same primary keys and different contents.
Each page is opened on second_db; before each of its links is followed, the session
is made to remember ``default`` for every model (another tab did that), so a link
that drops ``_db`` lands on default and shows default's row.
"""

from __future__ import annotations

import html as html_lib
import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from django.test import Client

from dashboard.switching import SESSION_KEY
from tests.test_switching import LIST, NAMES, PK, html, shop

__all__ = ["shop"]  # the fixture, used by name

USER_PK = 4242
ALIAS = "second_db"
HREF = re.compile(r'href="([^"]*)"')
BANNER = re.compile(r'class="dbhealth-alias-banner" data-alias="([^"]*)"')
# Not pages of a switched model: the index, the app index, the db-health page, the
# admin's own account pages, static files.
UNSWITCHED = re.compile(
    r"^/admin/(?:[a-z_]+/)?$|^/admin/(db-health|password_change|logout|jsi18n)/"
)


@pytest.fixture
def twins(django_user_model: Any, shop: Any) -> None:
    django_user_model.objects.db_manager("default").create_user("user-on-default", pk=USER_PK)
    django_user_model.objects.db_manager(ALIAS).create_user("user-on-second-db", pk=USER_PK)


def other_tab_chose_default(client: Client) -> None:
    session = client.session
    session[SESSION_KEY] = {
        "demo.customer": "default",
        "demo.order": "default",
        "auth.user": "default",
    }
    session.save()


def admin_links(page_url: str, page: str) -> set[str]:
    found = set()
    for raw in HREF.findall(page):
        url = urljoin(page_url, html_lib.unescape(raw))
        parts = urlsplit(url)
        if parts.netloc or not parts.path.startswith("/admin/") or UNSWITCHED.search(parts.path):
            continue
        found.add(url.split("#", 1)[0])
    return found


PAGES = {
    "list": f"{LIST}?_db={ALIAS}",
    "change": f"{LIST}{PK}/change/?_db={ALIAS}",
    "add": f"{LIST}add/?_db={ALIAS}",
    "delete": f"{LIST}{PK}/delete/?_db={ALIAS}",
    "history": f"{LIST}{PK}/history/?_db={ALIAS}",
    "order list": f"/admin/demo/order/?_db={ALIAS}",
    "user change": f"/admin/auth/user/{USER_PK}/change/?_db={ALIAS}",
    "password change": f"/admin/auth/user/{USER_PK}/password/?_db={ALIAS}",
}


@pytest.mark.parametrize("name", list(PAGES))
def test_every_link_of_a_switched_page_stays_on_its_alias(
    staff_client: Client, twins: None, name: str
) -> None:
    page_url = PAGES[name]
    page = html(staff_client.get(page_url))
    assert BANNER.search(page)[1] == ALIAS
    links = admin_links(page_url, page)
    assert links, "the page has links to follow"

    lost = []
    for link in sorted(links):
        other_tab_chose_default(staff_client)
        response = staff_client.get(link, follow=True)
        landed = html(response)
        banner = BANNER.search(landed)
        if response.status_code != 200 or (banner and banner[1] != ALIAS):
            lost.append(f"{link} -> {response.status_code} on {banner and banner[1]}")
        elif NAMES["default"] in landed or "user-on-default" in landed:
            lost.append(f"{link} shows a row of default")
    assert lost == []


def test_the_bulk_delete_confirmation_links_stay_on_the_alias(
    staff_client: Client, twins: None
) -> None:
    confirm = html(
        staff_client.post(
            f"{LIST}?_db={ALIAS}", {"action": "delete_selected", "_selected_action": [str(PK)]}
        )
    )

    assert f'href="/admin/demo/customer/{PK}/change/?_db={ALIAS}"' in confirm
    assert 'href="/admin/demo/order/' in confirm and "change/?_db=second_db" in confirm
