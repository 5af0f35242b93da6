"""Settings of a site that serves django-health-check's page and adds dbhealth's checks to it.

No admin and none of dbhealth's URLs: only ``dashboard`` (for the probes) beside
``health_check``. Besides the real PostgreSQL ``default`` and MariaDB ``reporting``, it
has an alias on a port that refuses connections and two on ports that accept TCP and
never answer. DBHEALTH_TEST_DB_SUFFIX keeps the test databases of parallel runs apart.
"""

from __future__ import annotations

import os
import socket

TEST_DB_SUFFIX = os.environ.get("DBHEALTH_TEST_DB_SUFFIX", "")

SECRET_KEY = "health-check-site-for-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]

# Trust authentication ignores it; the tests prove it never reaches a page.
DB_PASSWORD = "healthcheck-Tq4mV9"


def _loopback_port(*, listening: bool) -> tuple[int, socket.socket | None]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    if not listening:
        sock.close()  # nothing listens there: connections are refused at once
        return port, None
    # Listening but never accepting: the kernel completes the handshake and no byte
    # ever comes back, a black-holed server for as long as this process runs.
    sock.listen(64)
    return port, sock


REFUSED_PORT, _ = _loopback_port(listening=False)
SILENT = [_loopback_port(listening=True) for _ in range(2)]

_postgres = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": "postgres",
    "USER": "postgres",
    "PASSWORD": DB_PASSWORD,
    "HOST": "127.0.0.1",
    "PORT": "5432",
    "OPTIONS": {"connect_timeout": 5},
}
DATABASES = {
    "default": {**_postgres, "TEST": {"NAME": f"test_healthcheck_site{TEST_DB_SUFFIX}"}},
    "reporting": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": "mysql",
        "USER": "root",
        "HOST": "127.0.0.1",
        "PORT": "3306",
        "OPTIONS": {"connect_timeout": 5},
    },
    "refused": {**_postgres, "PORT": str(REFUSED_PORT)},
    "silent": {**_postgres, "PORT": str(SILENT[0][0])},
    "silent_too": {**_postgres, "PORT": str(SILENT[1][0])},
}

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    # dashboard's models (the log's aliases) relate to the admin's LogEntry.
    "django.contrib.admin",
    "django.contrib.messages",
    "django.contrib.sessions",
    "health_check",
    "dashboard",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests.adoption_healthcheck.urls"
TEMPLATES = [
    {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True},
]
DBHEALTH = {"TIMEOUT": 1.0, "CRITICAL_ALIASES": ["default"]}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
