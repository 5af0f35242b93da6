"""Who may open what: every URL the project serves, asked by every kind of caller.

The matrix is one table, the same as the README's "Access" table (a test compares
them). Each cell is what the caller gets: ``login`` (a redirect to the admin's login
page), ``reload`` (an HTMX answer that reloads the page, which then goes to the login
page), ``page`` (a redirect back to the db-health page), or a status code followed by
``+host`` when a database host was in the answer and ``+ping`` when a "Ping now"
button was. No answer ever contains the password of an alias.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.cache.backends.base import BaseCache
from django.db import connections
from django.http import HttpResponse
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from tests.conftest import postgres_like

README = Path(__file__).resolve().parent.parent / "README.md"
HOST = "127.0.0.1"  # where every test alias lives; only details name it

HTMX = {"HX-Request": "true"}
URLS: dict[str, tuple[str, str, dict[str, str]]] = {
    "GET /admin/": ("GET", "/admin/", {}),
    "GET /admin/db-health/": ("GET", "/admin/db-health/", {}),
    "GET /admin/db-health/table/ (htmx)": ("GET", "/admin/db-health/table/", HTMX),
    "POST /admin/db-health/<alias>/ping/ (htmx)": ("POST", "/admin/db-health/dead/ping/", HTMX),
    "POST /admin/db-health/<alias>/ping/ (form)": ("POST", "/admin/db-health/dead/ping/", {}),
    "GET /admin/db-health/<alias>/": ("GET", "/admin/db-health/dead/", {}),
    "GET /admin/db-health/<alias>/vitals/ (htmx)": (
        "GET",
        "/admin/db-health/default/vitals/",
        HTMX,
    ),
    "GET /admin/demo/customer/ (a model list)": ("GET", "/admin/demo/customer/?_db=default", {}),
    "GET /health/": ("GET", "/health/", {}),
    "GET /health/live/": ("GET", "/health/live/", {}),
    "POST /health/live/": ("POST", "/health/live/", {}),
    "GET /metrics": ("GET", "/metrics", {}),
}
ROLES = [
    "anonymous",
    "user",  # active, not staff
    "staff",  # no permissions
    "view_details",  # staff with dashboard.view_details
    "ping_alias",  # staff with dashboard.ping_alias
    "superuser",
    "token",  # Authorization: Bearer DBHEALTH["TOKEN"], no session
    "wrong token",
]
EXPECTED: dict[str, list[str]] = {
    # anonymous, user, staff, view_details, ping_alias, superuser, token, wrong token
    "GET /admin/": ["login", "login", "200", "200", "200", "200", "login", "login"],
    "GET /admin/db-health/": [
        "login", "login", "200", "200 +host", "200 +ping", "200 +host +ping", "login", "login"
    ],
    "GET /admin/db-health/table/ (htmx)": [
        "reload", "reload", "200", "200 +host", "200 +ping", "200 +host +ping", "reload", "reload"
    ],
    "POST /admin/db-health/<alias>/ping/ (htmx)": [
        "reload", "reload", "403", "403", "200 +ping", "200 +host +ping", "reload", "reload"
    ],
    "POST /admin/db-health/<alias>/ping/ (form)": [
        "login", "login", "403", "403", "page", "page", "login", "login"
    ],
    "GET /admin/db-health/<alias>/": [
        "login", "login", "200", "200 +host", "200", "200 +host", "login", "login"
    ],
    "GET /admin/db-health/<alias>/vitals/ (htmx)": [
        "reload", "reload", "403", "200", "403", "200", "reload", "reload"
    ],
    "GET /admin/demo/customer/ (a model list)": [
        "login", "login", "403", "403", "403", "200 +host", "login", "login"
    ],
    "GET /health/": ["200", "200", "200", "200 +host", "200", "200 +host", "200 +host", "401"],
    "GET /health/live/": ["200"] * 8,
    "POST /health/live/": ["405"] * 8,
    "GET /metrics": ["401", "403", "403", "200", "403", "200", "200", "401"],
}  # fmt: skip

CELLS = [
    pytest.param(url, role, EXPECTED[url][column], id=f"{url} | {role}")
    for url in URLS
    for column, role in enumerate(ROLES)
]


def _client(role: str, django_user_model: Any) -> tuple[Client, dict[str, str]]:
    """A client for ``role`` and the headers it sends with every request."""
    client = Client()
    token = str(settings.DBHEALTH["TOKEN"])
    if role == "token":
        return client, {"Authorization": f"Bearer {token}"}
    if role == "wrong token":
        return client, {"Authorization": f"Bearer not-{token}"}
    if role == "anonymous":
        return client, {}
    user = django_user_model.objects.create_user(
        role.replace(" ", "-"),
        password="pw-access",
        is_staff=role != "user",
        is_superuser=role == "superuser",
    )
    if role in {"view_details", "ping_alias"}:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="dashboard", codename=role)
        )
    client.force_login(user)
    return client, {}


def _outcome(response: HttpResponse) -> str:
    location = urlsplit(response.headers.get("Location", "")).path
    if response.status_code == 302 and location == "/admin/login/":
        return "login"
    if response.headers.get("HX-Refresh") == "true":
        return "reload"
    if response.status_code == 302 and location == "/admin/db-health/":
        return "page"
    body = response.content.decode()
    words = [str(response.status_code)]
    words += ["+host"] * (HOST in body) + ["+ping"] * (">Ping now<" in body)
    return " ".join(words)


@pytest.mark.parametrize(("url", "role", "expected"), CELLS)
def test_each_url_answers_each_kind_of_caller_as_the_matrix_says(
    url: str,
    role: str,
    expected: str,
    django_user_model: Any,
    add_alias: Any,
    closed_port: int,
    canary: str,
) -> None:
    add_alias("dead", **postgres_like(PORT=str(closed_port), PASSWORD=canary))
    client, headers = _client(role, django_user_model)
    method, path, extra = URLS[url]

    response = client.generic(method, path, headers={**extra, **headers})

    assert _outcome(response) == expected
    assert canary not in response.content.decode()
    assert canary not in str(response.headers)


def _readme_matrix() -> tuple[list[str], dict[str, list[str]]]:
    """The roles (header row) and the rows of the README's access table."""
    section = README.read_text().split("\n## Access\n", 1)[1].split("\n## ", 1)[0]
    table = section[section.index("\n| URL |") :].strip().split("\n\n", 1)[0]
    header, _, *body = [
        [cell.strip().replace("`", "") for cell in line.strip("|").split("|")]
        for line in table.splitlines()
    ]
    return header[1:], {row[0]: row[1:] for row in body}


def test_the_readme_access_table_is_the_tested_matrix() -> None:
    roles, rows = _readme_matrix()

    assert roles == ROLES
    assert rows == EXPECTED


def test_a_user_who_may_ping_but_not_see_details_gets_no_error_text(
    django_user_model: Any, add_alias: Any, closed_port: int, canary: str
) -> None:
    add_alias("dead", **postgres_like(PORT=str(closed_port), PASSWORD=canary))
    client, _ = _client("ping_alias", django_user_model)

    response = client.post("/admin/db-health/dead/ping/", follow=True)

    page = response.content.decode()
    assert response.status_code == 200
    assert "Pinged dead: down." in page
    assert "refused" not in page.lower() and HOST not in page and canary not in page


# --- liveness -----------------------------------------------------------------------------


class RecordingCache(BaseCache):
    """A cache that stores nothing and records each use, so a test can prove there was none."""

    used: list[str] = []

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)

    def add(self, key: str, *args: Any, **kwargs: Any) -> bool:
        self.used.append(f"add {key}")
        return False

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        self.used.append(f"get {key}")
        return default

    def set(self, key: str, *args: Any, **kwargs: Any) -> None:
        self.used.append(f"set {key}")

    def touch(self, key: str, *args: Any, **kwargs: Any) -> bool:
        self.used.append(f"touch {key}")
        return False

    def delete(self, key: str, version: int | None = None) -> bool:
        self.used.append(f"delete {key}")
        return False

    def clear(self) -> None:
        self.used.append("clear")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_liveness_refuses_other_methods_with_405_even_without_a_csrf_token(
    method: str, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_superuser("live", "live@example.com", "pw-live")
    browser_like = Client(enforce_csrf_checks=True)
    browser_like.force_login(user)  # a session cookie is what makes CSRF apply

    response = browser_like.generic(method, "/health/live/")

    assert response.status_code == 405
    assert sorted(response["Allow"].split(", ")) == ["GET", "HEAD"]


@override_settings(CACHES={"default": {"BACKEND": "tests.test_access.RecordingCache"}})
def test_liveness_touches_no_database_and_no_cache(probes: Any) -> None:
    RecordingCache.used.clear()
    with ExitStack() as stack:
        captured = [
            stack.enter_context(CaptureQueriesContext(connections[alias])) for alias in connections
        ]
        answers = [Client().generic(method, "/health/live/") for method in ("GET", "HEAD", "POST")]

    assert [answer.status_code for answer in answers] == [200, 200, 405]
    assert [len(capture.captured_queries) for capture in captured] == [0] * len(captured)
    assert RecordingCache.used == []
    assert sum(probes.counts.values()) == 0


# --- forged requests and redirects --------------------------------------------------------


@pytest.fixture
def strict_staff(django_user_model: Any) -> Client:
    """A logged-in superuser whose client, like a browser, must prove CSRF."""
    user = django_user_model.objects.create_superuser("csrf", "csrf@example.com", "pw-csrf")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_a_ping_without_a_csrf_token_is_refused(strict_staff: Client, htmx: bool) -> None:
    headers = {"HX-Request": "true"} if htmx else {}

    response = strict_staff.post("/admin/db-health/second_db/ping/", headers=headers)

    assert response.status_code == 403


def test_logging_in_or_out_without_a_csrf_token_is_refused(strict_staff: Client) -> None:
    assert strict_staff.post("/admin/logout/").status_code == 403
    anonymous = Client(enforce_csrf_checks=True)
    assert (
        anonymous.post("/admin/login/", {"username": "csrf", "password": "pw-csrf"}).status_code
        == 403
    )


OFF_SITE = [
    "https://evil.example/",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "https:evil.example",
    "javascript:alert(1)",
    " https://evil.example/",
]


def _stays_on_site(location: str) -> bool:
    parts = urlsplit(location)
    return (
        parts.scheme in {"", "http"}
        and parts.netloc in {"", "testserver"}
        and location.startswith("/")
        and not location.startswith(("//", "/\\"))
    )


@pytest.mark.parametrize("target", OFF_SITE)
def test_login_next_cannot_send_anyone_off_site(target: str, django_user_model: Any) -> None:
    django_user_model.objects.create_superuser("next", "next@example.com", "pw-next")
    client = Client()

    logging_in = client.post(
        "/admin/login/", {"username": "next", "password": "pw-next", "next": target}
    )
    already_in = client.get("/admin/login/", {"next": target})

    for response in (logging_in, already_in):
        assert response.status_code == 302
        assert _stays_on_site(response["Location"]), response["Location"]


@pytest.mark.parametrize("target", [*OFF_SITE, "<script>alert(1)</script>"])
def test_db_parameter_cannot_send_anyone_off_site_or_into_the_page(
    target: str, staff_client: Client
) -> None:
    response = staff_client.get("/admin/demo/customer/", {"_db": target})

    assert response.status_code == 302
    assert _stays_on_site(response["Location"]), response["Location"]
    shown = staff_client.get(response["Location"])
    assert shown.status_code == 200
    assert "<script>alert(1)" not in shown.content.decode()


def test_an_unknown_alias_in_the_ping_url_is_shown_escaped(staff_client: Client) -> None:
    response = staff_client.post("/admin/db-health/<img src=x onerror=alert(1)>/ping/", follow=True)

    assert response.status_code == 200
    assert "There is no database alias named" in response.content.decode()
    assert "<img src=x" not in response.content.decode()
