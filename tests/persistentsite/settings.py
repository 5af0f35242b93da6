"""A site whose ``default`` alias is PostgreSQL with persistent connections
(``CONN_MAX_AGE=60``, no health checks), served by gunicorn in tests
(tests/test_persistent_workers.py): the project's settings, a Redis cache of the test's
own prefix, an ``application_name`` the test finds its sessions by, and a view that
uses the connection."""

from __future__ import annotations

import os

from config.settings import *  # noqa: F403
from config.settings import DBHEALTH

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "USER": "postgres",
        "NAME": "postgres",
        "CONN_MAX_AGE": 60,
        "OPTIONS": {
            "connect_timeout": 5,
            "application_name": os.environ["PERSISTENTSITE_APPLICATION_NAME"],
        },
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/0",
        "KEY_PREFIX": os.environ["PERSISTENTSITE_KEY_PREFIX"],
    }
}
DBHEALTH = {**DBHEALTH, "POOL_TTL": 3.0}
ROOT_URLCONF = "tests.persistentsite.urls"
