"""Who may open what: every URL the project serves, asked by every kind of caller.

The matrix is one table; each cell is what the caller gets: a status code, ``login``
(a redirect to the admin login page), or for ``/health/`` whether the details (hosts,
versions, errors) were in the answer.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.cache.backends.base import BaseCache
from django.db import connections
from django.http import HttpResponse
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

URLS: dict[str, tuple[str, str]] = {
    "admin index": ("GET", "/admin/"),
    "db-health page": ("GET", "/admin/db-health/"),
    "table partial": ("GET", "/admin/db-health/table/"),
    "ping": ("POST", "/admin/db-health/second_db/ping/"),
    "demo changelist": ("GET", "/admin/demo/customer/?_db=default"),
    "/health/": ("GET", "/health/"),
    "/health/live/": ("GET", "/health/live/"),
    "POST /health/live/": ("POST", "/health/live/"),
    "/metrics": ("GET", "/metrics"),
}
ROLES = ["anonymous", "non-staff", "staff", "superuser", "valid token", "invalid token"]
LOGIN = "login"  # a redirect to the admin's login page
EXPECTED: dict[str, list[str]] = {
    #                  anonymous    non-staff    staff        superuser    valid token  bad token
    "admin index":     [LOGIN,      LOGIN,       "200",       "200",       LOGIN,       LOGIN],
    "db-health page":  [LOGIN,      LOGIN,       "200",       "200",       LOGIN,       LOGIN],
    "table partial":   [LOGIN,      LOGIN,       "200",       "200",       LOGIN,       LOGIN],
    "ping":            [LOGIN,      LOGIN,       "200",       "200",       LOGIN,       LOGIN],
    "demo changelist": [LOGIN,      LOGIN,       "403",       "200",       LOGIN,       LOGIN],
    "/health/":        ["200 brief", "200 brief", "200 full", "200 full",  "200 full",  "401"],
    "/health/live/":   ["200",      "200",       "200",       "200",       "200",       "200"],
    "POST /health/live/": ["405", "405",     "405",       "405",       "405",       "405"],
    "/metrics":        ["401",      "401",       "200",       "200",       "200",       "401"],
}  # fmt: skip


def _client(role: str, django_user_model: Any) -> tuple[Client, dict[str, str]]:
    """A client for ``role`` and the headers it sends."""
    client = Client()
    token = str(settings.DBHEALTH["TOKEN"])
    if role == "valid token":
        return client, {"Authorization": f"Bearer {token}"}
    if role == "invalid token":
        return client, {"Authorization": f"Bearer not-{token}"}
    if role != "anonymous":
        user = django_user_model.objects.create_user(
            role.replace(" ", "-"),
            password="pw-access",
            is_staff=role in {"staff", "superuser"},
            is_superuser=role == "superuser",
        )
        client.force_login(user)
    return client, {}


def _outcome(response: HttpResponse) -> str:
    location = response.headers.get("Location", "")
    if response.status_code == 302 and urlsplit(location).path == "/admin/login/":
        return LOGIN
    body = json.loads(response.content) if "json" in response["Content-Type"] else {}
    if response.status_code == 200 and "checks" in body:
        details = all("host" in entry for (entry,) in body["checks"].values())
        return "200 full" if details else "200 brief"
    return str(response.status_code)


def test_every_url_answers_every_kind_of_caller_as_expected(django_user_model: Any) -> None:
    found: dict[str, list[str]] = {name: [] for name in URLS}
    for role in ROLES:
        client, headers = _client(role, django_user_model)
        for name, (method, url) in URLS.items():
            # "Ping now" as HTMX sends it: the partial, not a redirect back to the page.
            extra = {"HX-Request": "true", **headers} if name == "ping" else headers
            response = client.generic(method, url, headers=extra)
            found[name].append(_outcome(response))

    assert found == EXPECTED


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
