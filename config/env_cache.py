"""Build the ``default`` cache from ``CACHE_URL``, bounded in time like a database.

Redis gets socket timeouts unless the URL sets them (``?socket_timeout=0.5``): without
them redis-py waits 5 s for a server that accepts connections and never answers, on
every call (system check ``dbhealth.W005``).
"""

from __future__ import annotations

from typing import Any

import environ

REDIS_BACKEND = "django.core.cache.backends.redis.RedisCache"
# Seconds; a loopback or LAN Redis answers in well under a millisecond.
REDIS_SOCKET_TIMEOUTS = {"socket_connect_timeout": 0.25, "socket_timeout": 0.25}


def cache_from_url(url: str) -> dict[str, Any]:
    """One ``CACHES`` entry from a django-environ cache URL (``redis://host:6379/0``)."""
    config: dict[str, Any] = environ.Env.cache_url_config(url)
    if config["BACKEND"] == REDIS_BACKEND:
        options = config.setdefault("OPTIONS", {})
        for name, seconds in REDIS_SOCKET_TIMEOUTS.items():
            options.setdefault(name, seconds)
    return config
