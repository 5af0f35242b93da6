"""A site whose ``default`` alias is PostgreSQL with Django's connection pool, served by
gunicorn in tests (tests/test_pools_workers.py): the project's settings plus the pool,
a Redis cache of the test's own prefix, and a view that holds a connection."""

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
        "OPTIONS": {
            "connect_timeout": 5,
            # Waiting requests must still be waiting when the test looks, not failed.
            "pool": {"min_size": 1, "max_size": 2, "timeout": 20},
        },
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/0",
        "KEY_PREFIX": os.environ["POOLSITE_KEY_PREFIX"],
    }
}
DBHEALTH = {**DBHEALTH, "POOL_TTL": float(os.environ.get("POOLSITE_POOL_TTL", "3"))}
ROOT_URLCONF = "tests.poolsite.urls"
