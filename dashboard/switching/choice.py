"""Which alias one admin request reads and writes: ``?_db=``, else the session, else home.

A page asked for without ``_db`` is redirected to the alias remembered in the session
for its model (else the model's home alias), so every page names its alias in the URL
and two tabs on two aliases never write into each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connections, models
from django.http import HttpRequest
from django.utils.text import capfirst

from dashboard.aliases import ALIAS_VAR, allowed_aliases, home_alias

# Session key: {"app_label.model_name": alias} for every model someone switched.
SESSION_KEY = "dbhealth_aliases"


@dataclass(frozen=True)
class AliasChoice:
    """The alias one request asked for (``explicit``: named in ``?_db=``)."""

    alias: str
    explicit: bool
    error: str | None = None


def choose(request: HttpRequest, model: type[models.Model]) -> AliasChoice:
    allowed = allowed_aliases(model)
    home = home_alias(model, allowed)
    requested = request.GET.get(ALIAS_VAR)
    if requested is not None:
        if requested in allowed:
            return AliasChoice(requested, explicit=True)
        return AliasChoice(home, explicit=False, error=_refusal(model, requested, home))
    session = getattr(request, "session", None)
    chosen = session.get(SESSION_KEY) if session is not None else None
    remembered = chosen.get(model._meta.label_lower) if isinstance(chosen, dict) else None
    if remembered in allowed:
        return AliasChoice(str(remembered), explicit=False)
    return AliasChoice(home, explicit=False)


def _refusal(model: type[models.Model], requested: str, shown: str) -> str:
    name = capfirst(model._meta.verbose_name_plural)
    if requested in connections.settings:
        return f"{name} are not kept on {requested}; showing {shown}."
    return f"There is no database alias named “{requested[:80]}”; showing {shown}."


def remember(request: HttpRequest, model: type[models.Model], alias: str) -> None:
    session = getattr(request, "session", None)
    if session is None:
        return
    stored = session.get(SESSION_KEY)
    chosen = dict(stored) if isinstance(stored, dict) else {}
    if chosen.get(model._meta.label_lower) != alias:
        chosen[model._meta.label_lower] = alias
        session[SESSION_KEY] = chosen


def url_with_alias(request: HttpRequest, alias: str) -> str:
    # Only the query string changes: the path is the one this admin view matched.
    query = request.GET.copy()
    query[ALIAS_VAR] = alias
    return f"{request.path}?{query.urlencode()}"
