"""Build ``DATABASES`` and ``DATABASE_ROUTES`` from environment variables.

``DATABASE_URL`` is the ``default`` alias; every ``DATABASE_URL_<NAME>`` adds alias
``<name>`` (lower-cased). A bad value stops start-up with a message that names the
variable and never repeats the URL, which may carry a password.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

URL_PREFIX = "DATABASE_URL"
SUPPORTED_SCHEMES = {
    "postgres", "postgresql", "pgsql", "psql",
    "mysql", "mysql2", "mysqlgis", "mariadb",
    "sqlite",
}  # fmt: skip


def embedded_default(var_dir: Path) -> dict[str, dict[str, Any]]:
    """Two SQLite files, so the project runs with no database server at all."""
    return {
        alias: {"ENGINE": "django.db.backends.sqlite3", "NAME": str(var_dir / f"{alias}.sqlite3")}
        for alias in ("default", "second_db")
    }


def alias_for(variable: str) -> str:
    suffix = variable[len(URL_PREFIX) :]
    return suffix.lstrip("_").lower() or "default"


def parse_database_url(variable: str, url: str) -> dict[str, Any]:
    """One alias's settings from a URL; errors name the variable, never the URL."""
    if not url.strip():
        raise ImproperlyConfigured(f"{variable} is set but empty.")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a non-numeric port
    except ValueError as exc:
        raise ImproperlyConfigured(f"{variable} is not a valid URL ({exc}).") from None
    scheme = parts.scheme.lower()
    if scheme not in SUPPORTED_SCHEMES:
        shown = scheme or "none"
        raise ImproperlyConfigured(
            f"{variable} has an unsupported scheme '{shown}'; "
            "use postgres://, mysql:// (MariaDB too) or sqlite:///."
        )
    if scheme != "sqlite" and not parts.hostname:
        raise ImproperlyConfigured(f"{variable} names no host (expected scheme://user@host/db).")
    if scheme == "sqlite" and not parts.path.lstrip("/"):
        raise ImproperlyConfigured(f"{variable} names no SQLite file (sqlite:////abs/path.db).")
    if scheme != "sqlite" and not parts.path.strip("/"):
        raise ImproperlyConfigured(f"{variable} names no database (scheme://host:{port}/NAME).")
    try:
        config: dict[str, Any] = environ.Env.db_url_config(url)
    except Exception as exc:  # django-environ raises several types; none may echo the URL
        raise ImproperlyConfigured(
            f"{variable} could not be parsed ({type(exc).__name__})."
        ) from None
    _check_numeric_options(variable, config.get("OPTIONS") or {})
    return config


# Driver options that must be numbers. The probe brings its own, so a bad value here
# would show the alias "up" while every query the site makes fails on it.
NUMERIC_OPTIONS = ("connect_timeout", "read_timeout", "write_timeout", "timeout")


def _check_numeric_options(variable: str, options: dict[str, Any]) -> None:
    for name in NUMERIC_OPTIONS:
        if name not in options:
            continue
        try:
            float(options[name])
        except (TypeError, ValueError):
            raise ImproperlyConfigured(
                f"{variable}: ?{name}= must be a number of seconds, got '{options[name]}'."
            ) from None


def database_variables(environ_map: Mapping[str, str]) -> list[str]:
    """``DATABASE_URL`` and every ``DATABASE_URL_<NAME>`` that is set, sorted."""
    return sorted(
        name for name in environ_map if name == URL_PREFIX or name.startswith(URL_PREFIX + "_")
    )


def databases_from_env(environ_map: Mapping[str, str], var_dir: Path) -> dict[str, dict[str, Any]]:
    variables = database_variables(environ_map)
    if not variables:
        return embedded_default(var_dir)
    if URL_PREFIX not in variables:
        raise ImproperlyConfigured(
            "DATABASE_URL_<NAME> is set but DATABASE_URL (the default alias) is not."
        )
    databases: dict[str, dict[str, Any]] = {}
    for variable in [URL_PREFIX, *(v for v in variables if v != URL_PREFIX)]:
        alias = alias_for(variable)
        if not alias.isidentifier():
            raise ImproperlyConfigured(
                f"{variable}: alias '{alias}' must be letters, digits and underscores."
            )
        if alias in databases:
            raise ImproperlyConfigured(f"{variable} defines alias '{alias}' twice.")
        databases[alias] = parse_database_url(variable, environ_map[variable])
    return databases


def require_aliases(variable: str, names: list[str], databases: Mapping[str, Any]) -> list[str]:
    """``names`` if every one is an alias of ``databases``; else a one-line error naming it."""
    for name in names:
        if name not in databases:
            raise ImproperlyConfigured(
                f"{variable} names '{name}', which is not a database alias "
                f"(aliases: {', '.join(databases)})."
            )
    return names


def routes_from_env(value: str, databases: Mapping[str, Any] | None = None) -> dict[str, str]:
    """``demo.auditevent=second_db,reports=analytics`` -> {"demo.auditevent": "second_db", ...}.

    With ``databases``, a route to an alias not among them is refused. Whether the app
    or model exists is known only once apps are loaded: ``DashboardConfig.ready`` checks it.
    """
    routes: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        target, sep, alias = item.partition("=")
        if not sep or not target.strip() or not alias.strip():
            raise ImproperlyConfigured(
                f"DATABASE_ROUTES entry '{item}' is not of the form app_label[.model]=alias."
            )
        if databases is not None and alias.strip() not in databases:
            raise ImproperlyConfigured(
                f"DATABASE_ROUTES sends '{target.strip()}' to '{alias.strip()}', which is not "
                f"a database alias (aliases: {', '.join(databases)})."
            )
        routes[target.strip().lower()] = alias.strip()
    return routes
