"""The shared cache (``DBHEALTH["CACHE"]``): bounded operations, one failure policy.

Every call returns at once with its "unavailable" value when the cache fails.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.cache import BaseCache, caches

from dashboard.conf import get_settings

logger = logging.getLogger(__name__)


def _cache() -> BaseCache:
    return caches[get_settings().cache]


def _seconds(ttl: float) -> int:
    # Django's Redis backend keeps whole seconds only (0 would mean "do not store").
    return max(1, math.ceil(ttl))


def _failed(error: Exception) -> None:
    logger.warning("cache %r failed (%s)", get_settings().cache, type(error).__name__)


def get(key: str, default: Any = None) -> Any:
    try:
        return _cache().get(key, default)
    except Exception as error:
        _failed(error)
        return default


def get_many(keys: Iterable[str]) -> dict[str, Any]:
    try:
        return dict(_cache().get_many(list(keys)))
    except Exception as error:
        _failed(error)
        return {}


def set(key: str, value: Any, ttl: float) -> bool:  # noqa: A001 - mirrors the cache API
    try:
        _cache().set(key, value, _seconds(ttl))
        return True
    except Exception as error:
        _failed(error)
        return False


def set_many(mapping: Mapping[str, Any], ttl: float) -> bool:
    try:
        _cache().set_many(dict(mapping), _seconds(ttl))
        return True
    except Exception as error:
        _failed(error)
        return False


def add(key: str, value: Any, ttl: float) -> bool | None:
    try:
        return bool(_cache().add(key, value, _seconds(ttl)))
    except Exception as error:
        _failed(error)
        return None


def delete(key: str) -> None:
    try:
        _cache().delete(key)
    except Exception as error:
        _failed(error)


def delete_many(keys: Iterable[str]) -> None:
    try:
        _cache().delete_many(list(keys))
    except Exception as error:
        _failed(error)


def available() -> bool:
    return True


def reset() -> None:
    return None
