"""Settings of a plain Django site that adopted dbhealth; every line it added says "dbhealth".

Its own aliases (PostgreSQL ``default``, MariaDB ``reporting``, SQLite ``archive``),
its own app, no environment parsing: nothing here comes from this project's ``config/``.
DBHEALTH_TEST_DB_SUFFIX keeps the test databases of parallel runs apart.
"""

from __future__ import annotations

import os
from pathlib import Path

SITE_DIR = Path(__file__).resolve().parent
TEST_DB_SUFFIX = os.environ.get("DBHEALTH_TEST_DB_SUFFIX", "")

SECRET_KEY = "adoption-site-for-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

# Trust authentication ignores it; the tests prove it never reaches a page.
DB_PASSWORD = "adoption-Vw3nR8"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "shop",
        "USER": "postgres",
        "PASSWORD": DB_PASSWORD,
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "OPTIONS": {"connect_timeout": 5},
        "TEST": {"NAME": f"test_shop{TEST_DB_SUFFIX}"},
    },
    "reporting": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": "shop_reporting",
        "USER": "root",
        "HOST": "127.0.0.1",
        "PORT": "3306",
        "OPTIONS": {"connect_timeout": 5},
        "TEST": {"NAME": f"test_shop_reporting{TEST_DB_SUFFIX}"},
    },
    "archive": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": SITE_DIR / "archive.sqlite3",  # tests use an in-memory copy
    },
}

INSTALLED_APPS = [
    "dashboard",  # dbhealth: before the admin, so its admin/base_site.html (header link) wins
    "dashboard.apps.DBHealthAdminConfig",  # dbhealth: in place of "django.contrib.admin"
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "tests.adoption.inventory",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",  # dbhealth: "Ping now" swaps only the table
]

ROOT_URLCONF = "tests.adoption.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_ROUTERS = ["dashboard.routing.AliasRouter"]  # dbhealth (optional): ROUTES below
DBHEALTH = {  # dbhealth (optional): every key has a default
    "CRITICAL_ALIASES": ["default", "reporting"],
    "TOKEN": "adoption-metrics-token",
    "ROUTES": {"sessions": "default"},
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STATIC_URL = "static/"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
