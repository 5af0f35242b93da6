"""A database router driven by settings, plus a per-request alias override for the admin.

``DBHEALTH["ROUTES"] = {"demo.auditevent": "second_db", "reports": "analytics"}``:
a pinned model is read, written and migrated only on its alias; everything else is
read and written on ``default`` and may be migrated on every alias (so a model list
can be switched between aliases in the admin).

The override is how the admin's alias switcher reaches code it does not call itself:
``with alias_override("second_db", [Customer, Order]): ...`` sends queries on those models that
name no database (unique checks, the transaction the admin opens, new inline rows) to
that alias. It lives in a context variable, so it belongs to one request: other threads
and other asyncio tasks never see it, and it is gone when the block ends.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db import router as db_router

from dashboard.conf import get_settings


def route_for(app_label: str, model_name: str | None) -> str | None:
    """The alias a model (or, without a model name, an app) is pinned to, if any."""
    routes = get_settings().routes
    if model_name:
        pinned = routes.get(f"{app_label}.{model_name}".lower())
        if pinned:
            return pinned
    return routes.get(app_label.lower())


def pinned_alias(model: type[models.Model]) -> str | None:
    return route_for(model._meta.app_label, model._meta.model_name)


@dataclass(frozen=True)
class AliasOverride:
    """Queries on the models named in ``labels`` (like ``demo.customer``) go to ``alias``."""

    alias: str
    labels: frozenset[str]

    def covers(self, model: type[models.Model]) -> bool:
        return model._meta.label_lower in self.labels


_override: ContextVar[AliasOverride | None] = ContextVar("dbhealth_alias_override", default=None)


def current_override() -> AliasOverride | None:
    return _override.get()


@contextmanager
def alias_override(
    alias: str, model_classes: Iterable[type[models.Model]]
) -> Iterator[AliasOverride]:
    override = AliasOverride(alias, frozenset(model._meta.label_lower for model in model_classes))
    token = _override.set(override)
    try:
        yield override
    finally:
        _override.reset(token)


class AliasRouter:
    def _route(self, model: type[models.Model], hints: dict[str, Any]) -> str | None:
        pinned = pinned_alias(model)
        if pinned:
            return pinned
        override = _override.get()
        if override is None or not override.covers(model):
            return None
        # A query that hangs off a saved object (a related manager, a reload) stays
        # on that object's database: only queries that name no database are moved.
        instance = hints.get("instance")
        state = getattr(instance, "_state", None)
        if state is not None and state.db:
            return str(state.db)
        return override.alias

    def db_for_read(self, model: type[models.Model], **hints: Any) -> str | None:
        return self._route(model, hints)

    def db_for_write(self, model: type[models.Model], **hints: Any) -> str | None:
        return self._route(model, hints)

    def allow_relation(self, obj1: models.Model, obj2: models.Model, **hints: Any) -> bool | None:
        # Django keeps a row in one database: a foreign key cannot point into another.
        if obj1._state.db and obj2._state.db:
            return obj1._state.db == obj2._state.db
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        pinned = route_for(app_label, model_name)
        if pinned is not None:
            return db == pinned
        return None


def router_installed() -> bool:
    """Whether ``AliasRouter`` is the first router: the alias switcher relies on it."""
    routers = db_router.routers
    return bool(routers) and isinstance(routers[0], AliasRouter)
