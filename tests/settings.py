"""Test settings: the project's settings with real PostgreSQL, MariaDB and SQLite aliases.

Server URLs can be overridden with DBHEALTH_TEST_POSTGRES_URL / DBHEALTH_TEST_MYSQL_URL.
The PostgreSQL URL carries a canary password (trust auth ignores it) so tests can
prove it never leaks. DBHEALTH_TEST_DB_SUFFIX keeps parallel runs apart.
"""

from __future__ import annotations

import os

from config.env_databases import parse_database_url
from config.settings import *  # noqa: F403
from config.settings import BASE_DIR, DBHEALTH

CANARY_PASSWORD = "canary-Zq7xP2wLk9"

POSTGRES_URL = os.environ.get(
    "DBHEALTH_TEST_POSTGRES_URL", f"postgres://postgres:{CANARY_PASSWORD}@127.0.0.1:5432/dbhealth"
)
MYSQL_URL = os.environ.get("DBHEALTH_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/dbhealth")
TEST_DB_NAME = "test_dbhealth" + os.environ.get("DBHEALTH_TEST_DB_SUFFIX", "")

DATABASES = {
    "default": parse_database_url("DBHEALTH_TEST_POSTGRES_URL", POSTGRES_URL),
    "second_db": parse_database_url("DBHEALTH_TEST_MYSQL_URL", MYSQL_URL),
    "local": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(BASE_DIR / "var" / "test.sqlite3"),
    },
}
for _alias, _config in DATABASES.items():
    _config["TEST"] = {"NAME": TEST_DB_NAME if _alias != "local" else None}
    if _alias != "local":
        _config.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)

# Test databases are throwaway: the demo may seed every one of them.
DEMO_ALIASES = list(DATABASES)

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "OPTIONS": {"MAX_ENTRIES": 20_000},
    }
}
DBHEALTH = {
    **DBHEALTH,
    "TIMEOUT": 2.0,
    "CRITICAL_ALIASES": ["default"],
    "TOKEN": "token-" + CANARY_PASSWORD,
    "ROUTES": {"demo.auditevent": "second_db"},
}
