"""Production settings: ``check --deploy`` is clean, and gunicorn + whitenoise serve the site.

Everything runs in subprocesses with a production environment (``DEBUG=False`` and
real secrets), as an operator following the README's "Deploying" section would.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import gunicornsite

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
HOST = "dbhealth.example.com"


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "False",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": HOST,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'default.sqlite3'}",
        "DATABASE_URL_SECOND_DB": f"sqlite:///{tmp_path / 'second_db.sqlite3'}",
        "STATIC_ROOT": str(tmp_path / "static"),
        **extra,
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_reports_no_issue_in_production(tmp_path: Path) -> None:
    completed = manage(production_env(tmp_path, SECURE_HSTS_PRELOAD="true"), "check", "--deploy")

    assert completed.returncode == 0, completed.stderr
    assert "System check identified no issues" in completed.stdout, completed.stderr


def test_only_hsts_preload_is_left_to_the_domain_owner(tmp_path: Path) -> None:
    completed = manage(production_env(tmp_path), "check", "--deploy")

    assert completed.returncode == 0
    assert re.findall(r"\((\w+\.\w+)\)", completed.stderr) == ["security.W021"]


def test_production_without_a_secret_key_refuses_to_start(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    del env["SECRET_KEY"]

    completed = manage(env, "check", "--deploy")

    assert completed.returncode != 0
    assert "Configuration error: SECRET_KEY must be set when DEBUG is off." in completed.stderr
    assert "Traceback" not in completed.stderr


# --- gunicorn + whitenoise, as the README deploys it -----------------------------------


class Site:
    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log

    def get(self, path: str, **headers: str) -> tuple[http.client.HTTPResponse, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": HOST, **headers})
            response = conn.getresponse()
            return response, response.read()
        finally:
            conn.close()


@pytest.fixture
def gunicorn_site(tmp_path: Path) -> Iterator[Site]:
    env = production_env(tmp_path, SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https")
    collected = manage(env, "collectstatic", "--noinput")
    assert collected.returncode == 0, collected.stderr
    log = tmp_path / "gunicorn.log"
    with gunicornsite.serve(env, workers=1, threads=None, log=log, stdout_too=False) as site:
        yield Site(site.port, log)


def test_gunicorn_with_whitenoise_serves_hashed_compressed_static_files_over_https(
    gunicorn_site: Site,
) -> None:
    https = {"X-Forwarded-Proto": "https"}

    login, body = gunicorn_site.get("/admin/login/", **https)
    # Plain HTTP is sent to HTTPS, except the probes' own endpoints.
    insecure, _ = gunicorn_site.get("/admin/login/")
    live, _ = gunicorn_site.get("/health/live/")

    assert login.status == 200
    assert login.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    cookies = login.headers.get_all("Set-Cookie") or []
    assert cookies and all("Secure" in cookie for cookie in cookies)
    assert insecure.status == 301
    assert insecure.headers["Location"] == f"https://{HOST}/admin/login/"
    assert live.status == 200

    # The page links static files by content hash; whitenoise serves them compressed and
    # cacheable forever.
    stylesheet = re.search(rb'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', body)
    assert stylesheet, body[:500]
    css, _ = gunicorn_site.get(stylesheet.group(1).decode(), **https, **{"Accept-Encoding": "gzip"})
    assert css.status == 200
    assert css.headers["Content-Encoding"] == "gzip"
    assert "immutable" in css.headers["Cache-Control"]


def test_a_server_error_in_production_is_logged_with_its_traceback(gunicorn_site: Site) -> None:
    # The databases are not migrated: reading a session is a 500.
    response, body = gunicorn_site.get(
        "/admin/", **{"X-Forwarded-Proto": "https", "Cookie": "sessionid=" + "a" * 32}
    )

    assert response.status == 500
    assert b"Traceback" not in body
    # The worker logs it before answering: the line is in the log once the answer is in.
    logged = gunicorn_site.log.read_text()
    assert "Internal Server Error: /admin/" in logged
    assert "no such table: django_session" in logged
    assert "Traceback (most recent call last)" in logged


def test_gunicorn_without_collected_static_files_stops_naming_collectstatic(
    tmp_path: Path,
) -> None:
    # Every admin page would be a 500: the manifest of hashed names does not exist.
    server = subprocess.run(
        [str(GUNICORN), "config.wsgi", "--bind", "127.0.0.1:0", "--workers", "1"],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )

    errors = [line for line in server.stderr.splitlines() if "Configuration error" in line]
    assert server.returncode == 4, server.stderr
    assert errors == [
        f"Configuration error: the static files are not collected in STATIC_ROOT "
        f"({tmp_path / 'static'}): run `manage.py collectstatic --noinput` before starting "
        "the server."
    ]
    assert "Traceback" not in server.stderr
