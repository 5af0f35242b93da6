"""Which database aliases a model can live on, and whether its table is there.

The admin's alias switcher asks these questions on every model list. Introspection
goes through the site's own connection, so it is only ever asked of an alias that a
probe has just found up, and its answer is kept in the shared cache per alias and table
(a down server never hangs a page here, and a busy list does not re-read the catalog).
"""

from __future__ import annotations

import hashlib
import json

from django.db import DEFAULT_DB_ALIAS, connections, models, router

from dashboard import sharedcache
from dashboard.routing import pinned_alias

# The query parameter that names the alias a page reads and writes.
ALIAS_VAR = "_db"
# How long a "table exists" answer is kept; `migrate` on an alias shows up after this.
TABLE_CACHE_SECONDS = 60
# The admin's own bookkeeping stays where the admin keeps it, whatever model is
# switched: its log, the content types the log points to, the logged-in user's
# permissions and the session.
ADMIN_STATE_MODELS = frozenset(
    {
        "admin.logentry",
        "auth.permission",
        "contenttypes.contenttype",
        "dashboard.logentryalias",
        "sessions.session",
    }
)


def allowed_aliases(model: type[models.Model]) -> list[str]:
    """Aliases the routers let this model's table live on, in settings order."""
    opts = model._meta
    return [
        alias
        for alias in connections
        if router.allow_migrate(alias, opts.app_label, model_name=opts.model_name, model=model)
    ]


def home_alias(model: type[models.Model], allowed: list[str]) -> str:
    """Where the model is read when nobody chose an alias: its pin, else ``default``."""
    pinned = pinned_alias(model)
    if pinned is not None and pinned in allowed:
        return pinned
    if DEFAULT_DB_ALIAS in allowed or not allowed:
        return DEFAULT_DB_ALIAS
    return allowed[0]


def alias_key(kind: str, alias: str, *parts: str) -> str:
    """A cache key about ``alias`` that a renamed or re-pointed alias does not inherit."""
    settings_dict = connections.settings[alias]
    identity = [alias, *parts] + [
        str(settings_dict.get(key) or "") for key in ("ENGINE", "HOST", "PORT", "NAME", "USER")
    ]
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:24]
    return sharedcache.key(kind, digest)


def _table_key(alias: str, table: str) -> str:
    return alias_key("table", alias, table)


def table_exists(alias: str, table: str) -> bool:
    """Whether ``table`` (or a view of that name) exists on ``alias``; raises DatabaseError."""
    key = _table_key(alias, table)
    found = sharedcache.get(key)
    if found is None:  # not asked lately, or no cache: read the catalog
        connection = connections[alias]
        with connection.cursor() as cursor:
            names = connection.introspection.table_names(cursor, include_views=True)
        found = connection.introspection.identifier_converter(table) in names
        sharedcache.set(key, found, TABLE_CACHE_SECONDS)
    return bool(found)


def table_known(alias: str, table: str) -> bool | None:
    """What ``table_exists`` last answered for ``alias`` (None: not asked lately); no query."""
    found = sharedcache.get(_table_key(alias, table))
    return None if found is None else bool(found)


def related_models(model: type[models.Model]) -> set[type[models.Model]]:
    """The model, the models its relations reach in one step, and their link tables."""
    found: set[type[models.Model]] = {model}
    for field in model._meta.get_fields(include_hidden=True):
        remote = getattr(field, "remote_field", None)
        for candidate in (
            field.related_model,
            getattr(field, "through", None),
            getattr(remote, "through", None),
        ):
            if isinstance(candidate, type) and issubclass(candidate, models.Model):
                found.add(candidate)
    return {
        related
        for related in found
        if related is model or related._meta.label_lower not in ADMIN_STATE_MODELS
    }
