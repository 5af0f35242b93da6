"""Cancel and terminate server sessions from the alias page: who may, what is done, the log."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.db import connection as django_connection
from django.test import Client, override_settings

from tests.pgcluster import wait_until
from tests.test_activity import _mysql_connect, _pg_connect

ALLOWED = {**settings.DBHEALTH, "ALLOW_CANCEL": True}


def url(alias: str, session: int, action: str) -> str:
    return f"/admin/db-health/{alias}/sessions/{session}/{action}/"


class Sleeper:
    """A PostgreSQL session running ``pg_sleep(30)`` in a thread, until cancelled."""

    def __init__(self) -> None:
        self.connection = _pg_connect(application_name="sleeper")
        self.pid = self.connection.info.backend_pid
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._sleep, daemon=True)
        self.thread.start()
        wait_until(self.is_running, 10, "the sleeper runs its query")

    def _sleep(self) -> None:
        try:
            self.connection.execute("SELECT pg_sleep(30)")
        except BaseException as error:  # what the cancel did to it
            self.error = error

    def is_running(self) -> bool:
        with _pg_connect() as observer:
            row = observer.execute(
                "SELECT state = 'active' FROM pg_stat_activity WHERE pid = %s", [self.pid]
            ).fetchone()
        return bool(row and row[0])


@pytest.fixture
def sleeper() -> Iterator[Sleeper]:
    running = Sleeper()
    yield running
    with _pg_connect() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [running.pid])
    running.thread.join(10)
    running.connection.close()


@pytest.fixture
def canceller(django_user_model: Any) -> Client:
    """Staff with dashboard.view_details and dashboard.cancel_session, not superuser."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("oncall", password="pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="dashboard", codename__in=["view_details", "cancel_session"]
        )
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def viewer(django_user_model: Any) -> Client:
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_details"))
    client = Client()
    client.force_login(user)
    return client


@override_settings(DBHEALTH=ALLOWED)
def test_a_user_with_the_permission_confirms_then_cancels_a_query(
    sleeper: Sleeper, canceller: Client
) -> None:
    page = canceller.get("/admin/db-health/default/").content.decode()
    assert url("default", sleeper.pid, "cancel") in page

    confirm = canceller.get(url("default", sleeper.pid, "cancel"))
    body = confirm.content.decode()
    assert confirm.status_code == 200
    assert f"session <strong>{sleeper.pid}</strong>" in body and "SELECT pg_sleep(?)" in body
    assert sleeper.is_running()  # a GET only asks

    done = canceller.post(url("default", sleeper.pid, "cancel"))

    assert done.status_code == 302 and done["Location"] == "/admin/db-health/default/"
    sleeper.thread.join(10)
    assert isinstance(sleeper.error, psycopg.errors.QueryCanceled)
    entry = LogEntry.objects.get()
    assert entry.object_id == "default" and entry.user.username == "oncall"
    assert f"Cancelled the query of session {sleeper.pid}" in entry.get_change_message()
    assert "on alias default: SELECT pg_sleep(?)" in entry.get_change_message()


@override_settings(DBHEALTH=ALLOWED)
def test_terminate_ends_an_idle_transaction(canceller: Client) -> None:
    with _pg_connect() as idle:
        idle.execute("BEGIN")
        idle.execute("SELECT 1")
        pid = idle.info.backend_pid

        done = canceller.post(url("default", pid, "terminate"))

        assert done.status_code == 302
        with pytest.raises(psycopg.OperationalError):
            idle.execute("SELECT 1")
    assert "Terminated session" in LogEntry.objects.get().get_change_message()


@pytest.mark.parametrize("method", ["get", "post"])
@override_settings(DBHEALTH=ALLOWED)
def test_staff_without_the_permission_get_403_and_nothing_is_done(
    sleeper: Sleeper, viewer: Client, method: str
) -> None:
    answer = getattr(viewer, method)(url("default", sleeper.pid, "cancel"))

    assert answer.status_code == 403
    assert sleeper.is_running() and not LogEntry.objects.exists()
    page = viewer.get("/admin/db-health/default/").content.decode()
    assert "dbhealth-activity" in page and "/sessions/" not in page


def test_with_cancel_disabled_even_the_permission_gets_403(
    sleeper: Sleeper, canceller: Client
) -> None:
    assert canceller.post(url("default", sleeper.pid, "cancel")).status_code == 403
    assert sleeper.is_running() and not LogEntry.objects.exists()
    assert "/sessions/" not in canceller.get("/admin/db-health/default/").content.decode()


@override_settings(DBHEALTH=ALLOWED)
def test_the_callers_own_session_is_refused(canceller: Client) -> None:
    # The test's own connection is the one this request would use on the alias.
    with django_connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (own,) = cursor.fetchone()

    answer = canceller.post(url("default", own, "terminate"), follow=True)

    assert "this site&#x27;s own connection" in answer.content.decode()
    assert not LogEntry.objects.exists()
    with django_connection.cursor() as cursor:
        cursor.execute("SELECT 1")


@override_settings(DBHEALTH=ALLOWED)
def test_a_session_not_listed_and_a_bad_action_change_nothing(canceller: Client) -> None:
    answer = canceller.post(url("default", 1, "cancel"), follow=True)
    assert "is not running a query or a transaction now" in answer.content.decode()
    assert canceller.post(url("default", 1, "drop")).status_code == 404
    assert canceller.post(url("nowhere", 1, "cancel")).status_code == 404
    assert not LogEntry.objects.exists()


@override_settings(DBHEALTH=ALLOWED)
def test_mariadb_kill_query_ends_a_running_query(canceller: Client) -> None:
    sleeping = _mysql_connect()
    thread_id = sleeping.thread_id()
    answer: list[Any] = []

    def sleep() -> None:
        cursor = sleeping.cursor()
        try:
            cursor.execute("SELECT SLEEP(30)")
            answer.append(cursor.fetchone()[0])
        except Exception as error:
            answer.append(error.args[0])

    running = threading.Thread(target=sleep, daemon=True)
    running.start()
    try:
        wait_until(_mysql_running(thread_id), 10, "the sleeping query runs")

        done = canceller.post(url("second_db", thread_id, "cancel"))

        assert done.status_code == 302
        running.join(10)
        # 1317 "Query execution was interrupted" (MariaDB); MySQL's SLEEP() returns 1.
        assert answer in ([1317], [1])
    finally:
        sleeping.close()
    assert LogEntry.objects.get().object_id == "second_db"


def _mysql_running(thread_id: int) -> Callable[[], bool]:
    def check() -> bool:
        observer = _mysql_connect()
        try:
            cursor = observer.cursor()
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST"
                " WHERE ID = %s AND COMMAND = 'Query'",
                [thread_id],
            )
            return bool(cursor.fetchone()[0])
        finally:
            observer.close()

    return check
