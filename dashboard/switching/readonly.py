"""Whether an alias takes writes: what its probe says, and what the server refused lately.

A probe sees a standby, a read-only default or a write-protected file; it cannot see
an account that may only SELECT. So a write the server refuses is remembered per alias
in the app's cache for ``REMEMBER_SECONDS``, and until then that alias is read-only
like one the probe flagged: its forms render read-only and its writes are not tried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.core.cache import caches
from django.db import DatabaseError

from dashboard import vendors
from dashboard.aliases import alias_key
from dashboard.conf import get_settings
from dashboard.probes import ProbeResult, error_text

# How long a refused write keeps an alias read-only (a GRANT shows up after this).
REMEMBER_SECONDS = 300

logger = logging.getLogger(__name__)


def is_refusal(vendor: str, error: DatabaseError) -> bool:
    """Whether ``error`` says the server refuses writes (not a bad value or a lost line)."""
    known = vendors.get(vendor)
    return known is not None and known.refuses_writes(error)


def _key(alias: str) -> str:
    return alias_key("refused", alias)


def remember_refusal(alias: str, error: DatabaseError) -> str:
    """Keep the alias read-only for a while; returns the reason pages will show."""
    reason = f"{alias} refused a write: {error_text(alias, error)}"
    try:
        caches[get_settings().cache].set(_key(alias), (time.time(), reason), REMEMBER_SECONDS)
    except Exception as failure:  # the message on this page still says what happened
        logger.warning("cache failed (%s); refusal not remembered", type(failure).__name__)
    return reason


def refusals(aliases: Iterable[str]) -> dict[str, str]:
    """The refused-write reasons remembered for these aliases (only those that have one)."""
    wanted = {_key(alias): alias for alias in aliases}
    try:
        found = caches[get_settings().cache].get_many(list(wanted))
    except Exception as failure:
        logger.warning("cache failed (%s)", type(failure).__name__)
        return {}
    return {wanted[key]: str(value[1]) for key, value in found.items() if isinstance(value, tuple)}


def read_only_reason(result: ProbeResult | None, refusal: str | None) -> str | None:
    """Why writes to this alias are refused, or None when nothing says they are."""
    if refusal is not None:
        return refusal
    if result is None or not result.read_only:
        return None
    known = vendors.get(result.vendor)
    return (
        f"{result.alias} is read-only ({known.read_only_means if known else 'its probe says so'})"
    )


_refusing: ContextVar[str | None] = ContextVar("dbhealth_refusing_writes", default=None)


@contextmanager
def refusing_writes(reason: str | None) -> Iterator[None]:
    """For one switched view: the admin's add, change and delete permissions follow it."""
    token = _refusing.set(reason)
    try:
        yield
    finally:
        _refusing.reset(token)


def writes_refused() -> str | None:
    return _refusing.get()
