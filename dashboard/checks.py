"""System checks (``manage.py check``) for the settings dbhealth reads.

Registered under the ``dbhealth`` tag by ``DashboardConfig.ready``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.utils import load_backend
from prometheus_client import values as prometheus_values

from dashboard import vendors
from dashboard.conf import get_settings
from dashboard.routing import router_installed

# Cache backends whose client waits for a silent server (redis-py 5 s, pymemcache forever)
# unless OPTIONS bound it: backend -> (connect timeout, reply timeout) option names.
CACHE_TIMEOUT_OPTIONS = {
    "django.core.cache.backends.redis.RedisCache": ("socket_connect_timeout", "socket_timeout"),
    "django.core.cache.backends.memcached.PyMemcacheCache": ("connect_timeout", "timeout"),
}
SUGGESTED_CACHE_TIMEOUT = 0.25


def _vendor(settings_dict: dict[str, Any]) -> vendors.Vendor | None:
    try:
        name = str(load_backend(str(settings_dict.get("ENGINE", ""))).DatabaseWrapper.vendor)
    except Exception:  # a broken ENGINE is reported by Django itself when it is used
        return None
    return vendors.get(name)


def _unknown_target(target: str) -> str | None:
    """Why a ROUTES key names nothing installed, or None when it names an app or model."""
    app_label, _, model_name = target.partition(".")
    app_config = next(
        (config for config in apps.get_app_configs() if config.label.lower() == app_label), None
    )
    if app_config is None:
        return f"no installed app has the label {app_label!r}"
    if model_name:
        try:
            app_config.get_model(model_name)
        except LookupError:
            return f"app {app_config.label!r} has no model {model_name!r}"
    return None


def reference_errors() -> list[Error]:
    """Settings that name an alias, app or model the site does not have.

    ``DashboardConfig.ready`` raises the first of them at start-up; ``manage.py check``
    lists them all (settings changed later, by ``override_settings`` say).
    """
    config = get_settings()
    known = set(connections.settings)
    aliases_hint = f"Known aliases: {', '.join(sorted(known))}."
    errors: list[Error] = []
    for target, alias in sorted(config.routes.items()):
        if alias not in known:
            errors.append(
                Error(
                    f"DBHEALTH['ROUTES'] sends {target!r} to alias {alias!r}, "
                    "which is not in DATABASES.",
                    hint=aliases_hint,
                    obj="DBHEALTH['ROUTES']",
                    id="dbhealth.E001",
                )
            )
        missing = _unknown_target(target)
        if missing:
            errors.append(
                Error(
                    f"DBHEALTH['ROUTES'] pins {target!r}, but {missing}.",
                    hint="Keys are 'app_label' or 'app_label.model' of an app in INSTALLED_APPS.",
                    obj="DBHEALTH['ROUTES']",
                    id="dbhealth.E004",
                )
            )
    for alias in config.critical_aliases:
        if alias not in known:
            errors.append(
                Error(
                    f"DBHEALTH['CRITICAL_ALIASES'] names {alias!r}, which is not in DATABASES.",
                    hint=aliases_hint,
                    obj="DBHEALTH['CRITICAL_ALIASES']",
                    id="dbhealth.E002",
                )
            )
    return errors


def check_settings(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    try:
        return list(reference_errors())
    except ImproperlyConfigured as error:
        return [Error(str(error), obj="DBHEALTH", id="dbhealth.E005")]


def check_alias_names(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    return [
        Error(
            f"Database alias {alias!r} contains ':'.",
            hint="/health/ keys its checks '<alias>:responseTime'; rename the alias.",
            obj=f"DATABASES[{alias!r}]",
            id="dbhealth.E003",
        )
        for alias in connections.settings
        if ":" in alias
    ]


def check_connect_timeouts(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for alias, settings_dict in connections.settings.items():
        # Drivers that wait minutes for a silent server unless this option says otherwise.
        vendor = _vendor(settings_dict)
        option = vendor.connect_timeout_option if vendor else None
        if option and not (settings_dict.get("OPTIONS") or {}).get(option):
            messages.append(
                Warning(
                    f"Database alias {alias!r} has no {option!r} in its OPTIONS: the site's "
                    "own queries wait minutes on a server that does not answer.",
                    hint=f"Set OPTIONS['{option}'] (seconds), e.g. ?{option}=5 in its URL.",
                    obj=f"DATABASES[{alias!r}]",
                    id="dbhealth.W001",
                )
            )
    return messages


def check_persistent_connections(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    for alias, settings_dict in connections.settings.items():
        max_age = settings_dict.get("CONN_MAX_AGE", 0)
        persistent = max_age is None or max_age > 0
        if persistent and not settings_dict.get("CONN_HEALTH_CHECKS", False):
            messages.append(
                Warning(
                    f"Database alias {alias!r} keeps connections (CONN_MAX_AGE={max_age}) "
                    "without CONN_HEALTH_CHECKS: after a server restart the first request "
                    "of each worker fails on a dead connection.",
                    hint="Set CONN_HEALTH_CHECKS = True for this alias.",
                    obj=f"DATABASES[{alias!r}]",
                    id="dbhealth.W002",
                )
            )
    return messages


def check_metrics_exposure(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    try:
        public = get_settings().metrics_public
    except ImproperlyConfigured:  # reported by check_settings
        return []
    if public and not settings.DEBUG:
        return [
            Warning(
                "DBHEALTH['METRICS_PUBLIC'] serves /metrics (aliases, vendors, failures) "
                "to anyone, and DEBUG is off.",
                hint="Keep it off and give Prometheus DBHEALTH['TOKEN'] as a bearer token, "
                "or serve /metrics only on a private network.",
                obj="DBHEALTH['METRICS_PUBLIC']",
                id="dbhealth.W003",
            )
        ]
    return []


def check_router(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    if len(connections.settings) < 2 or router_installed():
        return []
    return [
        Warning(
            "dashboard.routing.AliasRouter is not the first entry of DATABASE_ROUTERS, "
            "so the admin's alias switcher is off (every model list stays on its usual alias).",
            hint="Put 'dashboard.routing.AliasRouter' first in DATABASE_ROUTERS; it answers "
            "only for switched admin pages and pinned models, then defers to your routers.",
            obj="DATABASE_ROUTERS",
            id="dbhealth.W004",
        )
    ]


def _cache_timeouts(cache_config: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Per option, the longest wait any server of the cache gets (None: one server has no
    bound). As in redis-py, a LOCATION's query string (``?socket_timeout=``) wins over OPTIONS."""
    options = cache_config.get("OPTIONS") or {}
    location = cache_config.get("LOCATION") or ""
    servers = re.split("[;,]", location) if isinstance(location, str) else list(location)
    found: dict[str, Any] = {}
    for name in names:
        values = [parse_qs(urlsplit(str(server)).query).get(name, [None])[0] for server in servers]
        values = [options.get(name) if value is None else value for value in values or [None]]
        found[name] = None if None in values else max(values, key=_seconds)
    return found


def _seconds(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("inf")


def check_cache_timeouts(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    try:
        config = get_settings()
    except ImproperlyConfigured:  # reported by check_settings
        return []
    cache_config = dict(settings.CACHES.get(config.cache) or {})
    backend = str(cache_config.get("BACKEND", ""))
    names = CACHE_TIMEOUT_OPTIONS.get(backend)
    if names is None:
        return []
    timeouts = _cache_timeouts(cache_config, names)
    unbounded = [name for name, value in timeouts.items() if value is None]
    too_long = [
        name
        for name, value in timeouts.items()
        if value is not None and not 0 < _seconds(value) < config.timeout
    ]
    if not unbounded and not too_long:
        return []
    if unbounded:
        problem = f"has no {' or '.join(repr(name) for name in unbounded)} in its OPTIONS"
    else:
        problem = f"waits {', '.join(f'{name}={timeouts[name]}' for name in too_long)} s"
    suggested = ", ".join(f"{name!r}: {SUGGESTED_CACHE_TIMEOUT}" for name in names)
    return [
        Warning(
            f"Cache {config.cache!r} ({backend.rsplit('.', 1)[-1]}) {problem}: a cache "
            f"server that stops answering delays every request by more than the "
            f"probe timeout ({config.timeout:g} s).",
            hint=f"Set OPTIONS = {{{suggested}}} (seconds) on CACHES[{config.cache!r}].",
            obj=f"CACHES[{config.cache!r}]",
            id="dbhealth.W005",
        )
    ]


def check_metrics_dir(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    try:
        directory = get_settings().metrics_dir
    except ImproperlyConfigured:  # reported by check_settings
        return []
    if not directory:
        return []
    # prometheus-client picks its value class once, at import, from PROMETHEUS_MULTIPROC_DIR.
    writing = bool(getattr(prometheus_values.ValueClass, "_multiprocess", False))
    if os.path.isdir(directory) and writing:
        return []
    return [
        Warning(
            f"DBHEALTH['METRICS_DIR'] is {directory!r}, but "
            + (
                "it is not a directory"
                if not os.path.isdir(directory)
                else "this process does not write its counters there"
            )
            + ": /metrics would not add up the workers' counters.",
            hint="Create the directory and start every worker with PROMETHEUS_MULTIPROC_DIR "
            "set to it (before prometheus_client is imported), or leave METRICS_DIR empty.",
            obj="DBHEALTH['METRICS_DIR']",
            id="dbhealth.W006",
        )
    ]


def check_hysteresis(app_configs: Sequence[AppConfig] | None, **kwargs: Any) -> list[CheckMessage]:
    configured = getattr(settings, "DBHEALTH", {})
    messages: list[CheckMessage] = []
    for name in ("FALL", "RISE", "FLAP_CHANGES"):
        value = configured.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            messages.append(
                Error(
                    f"DBHEALTH[{name!r}] must be a whole number of probes, 1 or more; "
                    f"got {value!r} (read as 1).",
                    obj=f"DBHEALTH[{name!r}]",
                    id="dbhealth.E006",
                )
            )
    return messages


ALL = (
    check_settings,
    check_alias_names,
    check_connect_timeouts,
    check_persistent_connections,
    check_metrics_exposure,
    check_router,
    check_cache_timeouts,
    check_hysteresis,
    check_metrics_dir,
)
