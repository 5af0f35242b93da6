"""django-health-check (4.x) plug-in: every database alias as its own check, from one round.

For a site that already serves django-health-check's page::

    from health_check.views import HealthCheckView
    from dashboard.contrib.health_check import every_alias

    path("ht/", HealthCheckView.as_view(checks=[*every_alias(), "health_check.checks.Cache"]))

Each entry is a ``DatabaseAlias`` check, shown as ``DatabaseAlias(alias='default')`` on
the page, in its JSON and in its OpenMetrics. The checks read dbhealth's cached results
(``results.latest``) of the same aliases: the first check to run probes all of them
concurrently under one ``TIMEOUT``, the others wait for those results, so a silent
server costs the page one timeout however many aliases it has, and a burst of page
loads costs one probe per alias per ``CACHE_TTL``. A failure says only the status and
the error class: django-health-check pages are usually public, so hosts and error text
stay on dbhealth's own admin page.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable
from typing import Any

from django.db import connections
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from dashboard import results
from dashboard.conf import get_settings


@dataclasses.dataclass
class DatabaseAlias(HealthCheck):  # type: ignore[misc]  # django-health-check ships no types
    """The latest dbhealth probe of ``alias``: OK when up, "Unavailable" otherwise."""

    alias: str = "default"
    # The aliases probed in the same round (``every_alias`` gives each check all of them).
    probed_with: tuple[str, ...] = dataclasses.field(default=(), repr=False)

    @property
    def timeout(self) -> datetime.timedelta:
        # django-health-check gives up on a check after this plus a second; dbhealth's
        # own deadline (TIMEOUT) comes first.
        return datetime.timedelta(seconds=get_settings().timeout)

    def run(self) -> None:
        together = dict.fromkeys([self.alias, *self.probed_with])
        try:
            found = {result.alias: result for result in results.latest(together)}
        except KeyError:
            raise ServiceUnavailable(f"no database alias {self.alias!r} in DATABASES") from None
        result = found[self.alias]
        if result.status == "timeout":
            raise ServiceUnavailable(f"timeout, no answer within {get_settings().timeout:g} s")
        if not result.ok:
            raise ServiceUnavailable(f"{result.status} ({result.error_type})")


def every_alias(
    aliases: Iterable[str] | None = None,
) -> list[tuple[type[DatabaseAlias], dict[str, Any]]]:
    """``HealthCheckView`` entries: one ``DatabaseAlias`` per alias (default: all of
    ``DATABASES``, in settings order), all probed in one round."""
    chosen = list(connections.settings) if aliases is None else list(dict.fromkeys(aliases))
    return [(DatabaseAlias, {"alias": alias, "probed_with": tuple(chosen)}) for alias in chosen]
