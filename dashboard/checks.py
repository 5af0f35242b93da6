"""System checks (``manage.py check``) for the settings dbhealth reads.

Registered under the ``dbhealth`` tag by ``DashboardConfig.ready``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig, apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.utils import load_backend

from dashboard.conf import get_settings
from dashboard.routing import router_installed

# Vendors whose driver waits for a silent server for minutes unless OPTIONS say otherwise.
CONNECT_TIMEOUT_OPTION = {"postgresql": "connect_timeout", "mysql": "connect_timeout"}


def _vendor(settings_dict: dict[str, Any]) -> str | None:
    try:
        return str(load_backend(str(settings_dict.get("ENGINE", ""))).DatabaseWrapper.vendor)
    except Exception:  # a broken ENGINE is reported by Django itself when it is used
        return None


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
        option = CONNECT_TIMEOUT_OPTION.get(_vendor(settings_dict) or "")
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


ALL = (
    check_settings,
    check_alias_names,
    check_connect_timeouts,
    check_persistent_connections,
    check_metrics_exposure,
    check_router,
)
