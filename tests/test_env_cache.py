"""CACHE_URL becomes the default cache; a Redis one is bounded by socket timeouts."""

from __future__ import annotations

from config.env_cache import cache_from_url


def test_a_redis_url_gets_socket_timeouts_well_inside_the_probe_timeout() -> None:
    config = cache_from_url("redis://127.0.0.1:6379/1")

    assert config["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert config["LOCATION"] == "redis://127.0.0.1:6379/1"
    assert config["OPTIONS"] == {"socket_connect_timeout": 0.25, "socket_timeout": 0.25}


def test_timeouts_in_the_url_win_and_the_other_still_gets_its_default() -> None:
    config = cache_from_url("rediss://127.0.0.1:6380/0?socket_timeout=1.5")

    assert config["OPTIONS"] == {"socket_timeout": 1.5, "socket_connect_timeout": 0.25}


def test_other_caches_are_left_as_django_environ_parses_them() -> None:
    assert cache_from_url("locmemcache://dbhealth") == {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "dbhealth",
    }
