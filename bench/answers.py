"""Row 8: what one slow alias adds to each answer, with the probe timeout T = 2 s.

gunicorn (one sync worker) serves a site with the normal aliases (SQLite ``default``,
the benchmark's PostgreSQL and MariaDB databases), one black-holed PostgreSQL alias
(a proxy that accepts and never forwards) and ``slow``: PostgreSQL behind a proxy that
either passes replies straight through (the reference), or holds the first reply of
each new connection 1.2 s, or adds 0.4 s to every reply. Both slow variants are up
within T: a probe makes three round trips.

Answers measured, each cold (the served process's cache emptied and its stragglers
waited for, ``bench/urls.py``): ``/admin/db-health/`` (a logged-in superuser), the
slow alias's page then its vitals partial (as HTMX loads it), ``/health/``,
``/metrics`` (bearer token), and the whole ``manage.py dbhealth --json`` process.
One deadline per answer means the slow alias adds at most about T, whatever the
answer needs from it.
"""

from __future__ import annotations

import html.parser
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

from bench.children import ROOT, site_env
from bench.endpoint import serving, stop_gunicorn
from bench.report import Line
from tests.faultproxy import FaultProxy, Mode
from tests.servers import unused_port

TIMEOUT = 2.0
TARGET_FACTOR = 1.1
SLOW_ALIAS = "slow"
VARIANTS: dict[Mode, tuple[str, float]] = {
    "slow_start": ("first reply of each connection held 1.2 s", 1200.0),
    "delay": ("every reply +0.4 s", 400.0),
}
REPETITIONS = 2
# Longest any one answer may take before it is reported as no answer.
ANSWER_LIMIT = 90.0
TOKEN = "bench-metrics-token"  # noqa: S105
USER, PASSWORD = "bench-admin", "bench-admin-Pw-3xQ"


class _CsrfField(html.parser.HTMLParser):
    token = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("name") == "csrfmiddlewaretoken":
            self.token = found.get("value") or ""


class Browser:
    """A logged-in admin user's session on the served site: cookies kept, times taken."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, float, bytes]:
        """(status, seconds, body); status 0 when no answer came within the limit."""
        # Always http://127.0.0.1:<port>: the served site, never a URL from elsewhere.
        request = urllib.request.Request(self.base + path, headers=headers or {})  # noqa: S310
        started = time.perf_counter()
        try:
            with self.opener.open(request, timeout=ANSWER_LIMIT) as response:
                body = response.read()
                status = response.status
        except urllib.error.HTTPError as error:
            body, status = error.read(), error.code
        except OSError:
            body, status = b"", 0
        return status, time.perf_counter() - started, body

    def post(self, path: str, fields: dict[str, str]) -> int:
        data = urllib.parse.urlencode(fields).encode()
        try:
            with self.opener.open(self.base + path, data=data, timeout=ANSWER_LIMIT) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return error.code

    def log_in(self) -> bool:
        status, _, body = self.get("/admin/login/")
        form = _CsrfField()
        form.feed(body.decode("utf-8", "replace"))
        fields = {"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": form.token,
                  "next": "/admin/"}  # fmt: skip
        self.post("/admin/login/", fields)
        return self.get("/admin/db-health/")[0] == 200


def _databases(settings: Any, directory: Path, slow_port: int, silent_port: int) -> dict[str, Any]:
    postgres = {k: v for k, v in settings.DATABASES["default"].items() if k != "TEST"}
    mariadb = {k: v for k, v in settings.DATABASES["mariadb"].items() if k != "TEST"}
    return {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(directory / "site.db")},
        "postgres": postgres,
        "mariadb": mariadb,
        SLOW_ALIAS: {**postgres, "PORT": str(slow_port)},
        "blackholed": {**postgres, "PORT": str(silent_port)},
    }


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**os.environ, **env},
        capture_output=True, text=True, timeout=ANSWER_LIMIT, check=False,
    )  # fmt: skip


def _not_available(reason: str) -> list[Line]:
    return [Line("8", f"deadline T = {TIMEOUT:g} s: what a slow alias adds to each answer",
                 "", "", f"not available: {reason}", "", None)]  # fmt: skip


def run(settings: Any) -> list[Line]:
    slow = FaultProxy(int(settings.DATABASES["default"]["PORT"]), lifetime=1800)
    silent = FaultProxy(int(settings.DATABASES["default"]["PORT"]), lifetime=1800)
    try:
        silent.set_mode("blackhole")
        with tempfile.TemporaryDirectory(prefix="dbhealth-bench-answers-") as directory:
            databases = _databases(settings, Path(directory), slow.port, silent.port)
            dbhealth = {"TIMEOUT": TIMEOUT, "TOKEN": TOKEN, "CRITICAL_ALIASES": ["default"]}
            env = site_env(Path(directory), databases, dbhealth)
            migrated = _manage(env, "migrate", "--database", "default", "--noinput", "-v", "0")
            if migrated.returncode != 0:
                return _not_available(f"migrate failed: {migrated.stderr.strip()[-200:]}")
            superuser = {**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD}
            _manage(superuser, "createsuperuser", "--noinput", "--username", USER,
                    "--email", "bench@example.invalid")  # fmt: skip
            secret = str(settings.DATABASES["default"].get("PASSWORD") or "")
            return _serve_and_measure(env, slow, silent, secret)
    finally:
        slow.close()
        silent.close()


def _serve_and_measure(
    env: dict[str, str], slow: FaultProxy, silent: FaultProxy, secret: str
) -> list[Line]:
    port = unused_port()
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application", "--workers", "1",
        "--bind", f"127.0.0.1:{port}", "--timeout", str(int(ANSWER_LIMIT) + 30),
        "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env},
                              stdout=subprocess.DEVNULL)  # fmt: skip
    try:
        if not serving(port):
            return _not_available("gunicorn did not start")
        browser = Browser(port)
        if not browser.log_in():
            return _not_available("the superuser could not log in")
        return _measure(browser, env, slow, silent, secret)
    finally:
        stop_gunicorn(server)


def _settle(browser: Browser, proxies: list[FaultProxy]) -> None:
    """Cold start for the next answer: nothing cached, no probe or connection left over."""
    browser.post("/bench/reset/", {})
    for proxy in proxies:
        proxy.wait_for(lambda p: not p.open_links(), timeout=15)


Measured = dict[str, tuple[int, float, bytes]]


def _answers(browser: Browser, env: dict[str, str]) -> dict[str, Callable[[], Measured]]:
    def page() -> Measured:
        return {"/admin/db-health/": browser.get("/admin/db-health/")}

    def alias_page() -> Measured:
        # The page first, then the partial its HTMX loads: as a browser asks for them.
        return {
            "alias page": browser.get(f"/admin/db-health/{SLOW_ALIAS}/"),
            "its vitals partial": browser.get(
                f"/admin/db-health/{SLOW_ALIAS}/vitals/", {"HX-Request": "true"}
            ),
        }

    def health() -> Measured:
        return {"/health/": browser.get("/health/")}

    def metrics() -> Measured:
        return {"/metrics": browser.get("/metrics", {"Authorization": f"Bearer {TOKEN}"})}

    def command() -> Measured:
        started = time.perf_counter()
        try:
            done = _manage(env, "dbhealth", "--json")
            outcome = (done.returncode, done.stdout.encode() + done.stderr.encode())
        except subprocess.TimeoutExpired:
            outcome = (-1, b"")
        return {"manage.py dbhealth --json": (outcome[0], time.perf_counter() - started,
                                               outcome[1])}  # fmt: skip

    return {"page": page, "alias": alias_page, "health": health, "metrics": metrics,
            "command": command}  # fmt: skip


def _slow_status(body: bytes) -> str:
    try:
        checks = json.loads(body)["checks"][f"{SLOW_ALIAS}:responseTime"]
        return str(checks[0]["status"])
    except (ValueError, KeyError, IndexError, TypeError):
        return "unknown"


def _measure(
    browser: Browser, env: dict[str, str], slow: FaultProxy, silent: FaultProxy, secret: str
) -> list[Line]:
    answers = _answers(browser, env)
    seconds: dict[str, dict[str, list[float]]] = {}
    statuses: dict[str, dict[str, list[int]]] = {}
    slow_seen: dict[str, list[str]] = {}
    leaked: set[str] = set()
    for _ in range(REPETITIONS):
        modes: list[Mode] = ["pass", *VARIANTS]
        for mode in modes:
            slow.set_mode(mode, ms=VARIANTS[mode][1] if mode in VARIANTS else 0.0)
            for answer in answers.values():
                _settle(browser, [slow, silent])
                for name, (status, took, body) in answer().items():
                    seconds.setdefault(name, {}).setdefault(mode, []).append(took)
                    statuses.setdefault(name, {}).setdefault(mode, []).append(status)
                    if secret and secret.encode() in body:
                        leaked.add(name)
                    if name == "/health/":
                        slow_seen.setdefault(mode, []).append(_slow_status(body))
    slow.set_mode("pass")
    return [
        _line(name, seconds[name], statuses[name], slow_seen, name in leaked) for name in seconds
    ]


def _line(
    name: str,
    seconds: dict[str, list[float]],
    statuses: dict[str, list[int]],
    slow_seen: dict[str, list[str]],
    leaked: bool,
) -> Line:
    reference = statistics.median(seconds["pass"])
    added = {mode: statistics.median(seconds[mode]) - reference for mode in VARIANTS}
    limit = TARGET_FACTOR * TIMEOUT
    # HTTP 200/503 and the command's Nagios codes 0-2 are answers; 0 (none), 500, -1 are not.
    answered = all(
        status in (200, 503) or 0 <= status <= 2 and name.startswith("manage.py")
        for values in statuses.values()
        for status in values
    )
    worst = max(added.values())
    notes = [] if answered else [f"not every request answered: {statuses}"]
    shown = {status for seen in slow_seen.values() for status in seen}
    if name == "/health/" and shown != {"pass"}:
        notes.append(f"the slow alias was reported {', '.join(sorted(shown))}")
    if leaked:
        notes.append("a database password appeared in the answer")
    return Line(
        row="8",
        benchmark=f"deadline T = {TIMEOUT:g} s, {name}: time one slow alias adds "
        "(beside a black-holed one), cold",
        dbhealth="; ".join(f"{VARIANTS[mode][0]}: {value:+.2f} s" for mode, value in added.items()),
        reference=f"same answer, slow alias not slow: {reference:.2f} s",
        result=f"worst {worst / TIMEOUT:+.2f} T" + (f" ({'; '.join(notes)})" if notes else ""),
        target=f"≤ +{TARGET_FACTOR:g} T ({limit:.1f} s)",
        holds=worst <= limit and answered and not leaked,
        data={
            "seconds": seconds,
            "statuses": statuses,
            "slow_alias_on_health": slow_seen,
            "timeout_s": TIMEOUT,
        },
    )
