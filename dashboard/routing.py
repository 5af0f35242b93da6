"""A database router driven by settings: pin a model or a whole app to an alias.

``DBHEALTH["ROUTES"] = {"demo.auditevent": "second_db", "reports": "analytics"}``:
a pinned model is read, written and migrated only on its alias; everything else is
read and written on ``default`` and may be migrated on every alias (so a model list
can be switched between aliases in the admin).
"""

from __future__ import annotations

from typing import Any

from django.db import models

from dashboard.conf import get_settings


def route_for(app_label: str, model_name: str | None) -> str | None:
    """The alias a model (or, without a model name, an app) is pinned to, if any."""
    routes = get_settings().routes
    if model_name:
        pinned = routes.get(f"{app_label}.{model_name}".lower())
        if pinned:
            return pinned
    return routes.get(app_label.lower())


class AliasRouter:
    def db_for_read(self, model: type[models.Model], **hints: Any) -> str | None:
        return route_for(model._meta.app_label, model._meta.model_name)

    def db_for_write(self, model: type[models.Model], **hints: Any) -> str | None:
        return route_for(model._meta.app_label, model._meta.model_name)

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        pinned = route_for(app_label, model_name)
        if pinned is not None:
            return db == pinned
        return None
