"""Errors leave a trace, and no trace shows a password.

With DEBUG off a 500 is logged with its traceback (the ``django`` loggers go to the
console, through ``dashboard.redact.RedactingFilter``); with DEBUG on Django's
technical 500 page hides database URLs and passwords wherever they appear
(``dashboard.debug.SafeExceptionReporterFilter``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connections
from django.test import Client, RequestFactory
from django.views.debug import ExceptionReporter

from tests.conftest import postgres_like


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What the project's console handler writes, for one test."""
    (handler,) = [
        handler
        for handler in logging.getLogger("django").handlers
        if type(handler) is logging.StreamHandler
    ]
    captured = io.StringIO()
    previous = handler.setStream(captured)
    try:
        yield captured
    finally:
        handler.setStream(previous)


def failed_connect(add_alias: Any) -> BaseException:
    """A real psycopg error: its frames hold the connection arguments, password included."""
    add_alias("gone", **postgres_like(NAME="dbhealth_no_such_database"))
    wrapper = connections.create_connection("gone")
    # The backend's own connect step: the test case forbids connect() on aliases of its own.
    try:
        wrapper.get_new_connection(wrapper.get_connection_params())
    except psycopg.OperationalError as error:
        return error
    raise AssertionError("connected to a database that does not exist")


def test_a_server_error_is_logged_with_its_traceback_and_no_password(
    settings: Any, console: io.StringIO, canary: str
) -> None:
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    # The admin reads the session on every page: with the session table dropped, a 500.
    with connections["default"].cursor() as cursor:
        cursor.execute("DROP TABLE django_session")

    client.cookies["sessionid"] = "a" * 32  # well formed, so it is looked up

    response = client.get("/admin/")

    logged = console.getvalue()
    assert response.status_code == 500
    assert "Internal Server Error: /admin/" in logged
    assert "Traceback (most recent call last)" in logged
    assert 'relation "django_session" does not exist' in logged
    assert canary not in logged


def test_log_records_lose_passwords_in_message_and_traceback(
    console: io.StringIO, canary: str
) -> None:
    try:
        raise RuntimeError(f"could not reach postgres://app:{canary}@db.internal/shop")
    except RuntimeError:
        logging.getLogger("django.request").error(
            "Internal Server Error: %s, password=%s", "/x", canary, exc_info=True
        )

    logged = console.getvalue()
    assert "Internal Server Error: /x, password=***\n" in logged
    assert "postgres://app:***@db.internal/shop" in logged
    assert "RuntimeError" in logged
    assert canary not in logged


def test_the_debug_page_shows_no_password(
    settings: Any, add_alias: Any, canary: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.DEBUG = True
    error = failed_connect(add_alias)
    # runserver puts the whole environment in request.META: a .env's URLs with it.
    request = RequestFactory().get(
        "/admin/", DATABASE_URL_SHOP=f"postgres://app:{canary}@db.internal:5432/shop"
    )
    monkeypatch.setenv("DATABASE_URL_EU", f"mysql://app:{canary}@db.eu:3306/shop")
    settings.REPORTS_URL = f"postgres://reports:{canary}@db.internal/reports"

    reporter = ExceptionReporter(request, type(error), error, error.__traceback__)
    html = reporter.get_traceback_html()
    text = reporter.get_traceback_text()

    assert "dbhealth_no_such_database" in html  # the page still explains the error
    assert "postgres://app:***@db.internal:5432/shop" in html
    assert html.count(canary) == 0
    assert text.count(canary) == 0


def test_a_forced_500_page_with_debug_on_shows_no_password(settings: Any, canary: str) -> None:
    settings.DEBUG = True
    client = Client(raise_request_exception=False)
    with connections["default"].cursor() as cursor:
        cursor.execute("DROP TABLE django_session")

    client.cookies["sessionid"] = "a" * 32  # well formed, so it is looked up

    response = client.get(
        "/admin/",
        DATABASE_URL=f"postgres://postgres:{canary}@127.0.0.1:5432/dbhealth",
    )

    page = response.content.decode()
    assert response.status_code == 500
    assert "django_session" in page
    assert page.count(canary) == 0
