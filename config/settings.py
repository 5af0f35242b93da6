"""Settings for the dbhealth project, read from the environment (and ``.env`` if present).

Every variable is documented in ``.env.example``. The ``dashboard`` app itself reads
only Django settings; this module is where environment variables become settings.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

from config.env_cache import cache_from_url
from config.env_databases import (
    database_variables,
    databases_from_env,
    require_aliases,
    routes_from_env,
)
from dashboard.conf import RANGES

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env", overwrite=False)


def _number(
    name: str,
    default: float,
    *,
    within: tuple[float, float] = (0.0, math.inf),
    unit: str = "seconds",
    whole: bool = False,
) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise ImproperlyConfigured(f"{name} must be {kind} of {unit}, got '{raw}'.") from None
    low, high = within
    # "nan" and "inf" parse as floats; nan compares false with everything.
    if not math.isfinite(value) or not low <= value <= high:
        shown = f"at least {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
        raise ImproperlyConfigured(f"{name} must be {shown} {unit}, got '{raw}'.")
    return value


BOOLEANS = {
    "true": True, "yes": True, "on": True, "1": True,
    "false": False, "no": False, "off": False, "0": False,
}  # fmt: skip


def _boolean(name: str, default: bool) -> bool:
    # django-environ reads any unknown word ("maybe", "ture") as False.
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return BOOLEANS[raw.lower()]
    except KeyError:
        raise ImproperlyConfigured(f"{name} must be true or false, got '{raw}'.") from None


DEBUG = _boolean("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# HTTPS hardening: on by default when DEBUG is off, each switch overridable from the
# environment (a site served over plain HTTP on a private network turns them off).
SECURE_SSL_REDIRECT = _boolean("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancer and Prometheus probes often speak plain HTTP inside the network; a redirect
# would count as success for a Kubernetes probe whatever the databases' state.
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SESSION_COOKIE_SECURE = _boolean("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = _boolean("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = int(_number("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, whole=True))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
# Preloading commits the whole domain to HTTPS in browsers: the domain owner's decision.
SECURE_HSTS_PRELOAD = _boolean("SECURE_HSTS_PRELOAD", default=False)
# Behind a proxy that terminates TLS: SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https
SECURE_PROXY_SSL_HEADER = env.tuple("SECURE_PROXY_SSL_HEADER", default=None)
if SECURE_PROXY_SSL_HEADER is not None and len(SECURE_PROXY_SSL_HEADER) != 2:
    raise ImproperlyConfigured("SECURE_PROXY_SSL_HEADER must be 'HEADER,value'.")

INSTALLED_APPS = [
    "dashboard",  # before the admin, so its admin/base_site.html (header link) wins
    "dashboard.apps.DBHealthAdminConfig",  # django.contrib.admin with the db-health site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "dashboard.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files, before everything else
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _with_connect_timeouts(databases: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A server alias whose URL has no ?connect_timeout= waits at most 5 s for a connection,
    so the site's own queries cannot hang on a silent server (system check dbhealth.W001)."""
    for database in databases.values():
        if not str(database["ENGINE"]).endswith("sqlite3"):
            database.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    return databases


DATABASES = _with_connect_timeouts(databases_from_env(os.environ, VAR_DIR))
DATABASE_ROUTERS = ["dashboard.routing.AliasRouter"]

CACHES = {"default": cache_from_url(env.str("CACHE_URL", default="locmemcache://dbhealth"))}
if CACHES["default"]["BACKEND"].endswith("LocMemCache"):
    # Several keys per alias (result, last result, history, drift, slots): the default of
    # 300 entries would evict results at a hundred aliases and make every page re-probe.
    CACHES["default"].setdefault("OPTIONS", {}).setdefault("MAX_ENTRIES", 20_000)

# The demo's `setup_demo` command creates the "admin" login with this password
# (a random one, printed once, when it is empty).
DEMO_ADMIN_PASSWORD = env.str("DJANGO_SUPERUSER_PASSWORD", default="")

# The demo (`make run`) migrates and seeds only these aliases: the embedded SQLite files
# by default, none of the databases a .env points at unless it names them here.
DEMO_ALIASES = require_aliases(
    "DEMO_ALIASES",
    env.list("DEMO_ALIASES", default=[] if database_variables(os.environ) else list(DATABASES)),
    DATABASES,
)

DBHEALTH = {
    "TIMEOUT": _number("DBHEALTH_TIMEOUT", 2.0, within=RANGES["TIMEOUT"]),
    "CACHE_TTL": _number("DBHEALTH_CACHE_TTL", 2.0, within=RANGES["CACHE_TTL"]),
    "POLL_INTERVAL": _number("DBHEALTH_POLL_INTERVAL", 5.0, within=RANGES["POLL_INTERVAL"]),
    "CRITICAL_ALIASES": require_aliases(
        "DBHEALTH_CRITICAL_ALIASES",
        env.list("DBHEALTH_CRITICAL_ALIASES", default=["default"]),
        DATABASES,
    ),
    "TOKEN": env.str("DBHEALTH_TOKEN", default=""),
    # The demo's pin applies only where its alias exists.
    "ROUTES": routes_from_env(
        env.str(
            "DATABASE_ROUTES",
            default="demo.auditevent=second_db" if "second_db" in DATABASES else "",
        ),
        DATABASES,
    ),
    "METRICS_PUBLIC": _boolean("DBHEALTH_METRICS_PUBLIC", default=False),
    "WARN_MS": _number("DBHEALTH_WARN_MS", 1000.0, within=RANGES["WARN_MS"], unit="milliseconds"),
    "HISTORY_LENGTH": int(
        _number(
            "DBHEALTH_HISTORY_LENGTH",
            120,
            within=RANGES["HISTORY_LENGTH"],
            unit="probes",
            whole=True,
        )
    ),
    "CACHE_BACKOFF": _number("DBHEALTH_CACHE_BACKOFF", 5.0, within=RANGES["CACHE_BACKOFF"]),
    "FALL": int(_number("DBHEALTH_FALL", 1, within=(1, 1000), unit="probes", whole=True)),
    "RISE": int(_number("DBHEALTH_RISE", 1, within=(1, 1000), unit="probes", whole=True)),
    # prometheus-client writes every worker's counters there when this variable is set
    # (config/gunicorn.conf.py empties it at start): /metrics adds them up.
    "METRICS_DIR": os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""),
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # In production whitenoise serves collectstatic's output: compressed, with content
    # hashes in the names so browsers may cache them for good.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Error pages (DEBUG on) and error e-mails hide database URLs and passwords wherever
# they appear: settings, the environment in request.META, traceback variables.
DEFAULT_EXCEPTION_REPORTER_FILTER = "dashboard.debug.SafeExceptionReporterFilter"

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "dashboard.redact.RedactingFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["redact"]},
        # As Django's default: error e-mails to ADMINS (if any) when DEBUG is off.
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "filters": ["require_debug_false", "redact"],
        },
    },
    "loggers": {
        "dashboard": {"handlers": ["console"], "level": LOG_LEVEL},
        # Django logs every 500 (django.request) with its traceback under this logger.
        # Left to Django's defaults, DEBUG off would send it only by e-mail to ADMINS
        # (this project has none) and DEBUG on would print it unredacted. In production
        # only errors, and the security warnings (DisallowedHost...), not every 404.
        "django": {"handlers": ["console", "mail_admins"], "level": "INFO" if DEBUG else "ERROR"},
        "django.security": {"level": "WARNING"},
    },
}
