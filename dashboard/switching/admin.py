"""``AliasAdminMixin``: the admin hooks that send a switched model's pages to its chosen alias.

Every URL of the admin is wrapped by ``view.switched_view`` (which picks the alias and
holds ``alias_override`` around the view); the hooks below name that alias explicitly
where the admin builds querysets itself (lists, search, bulk deletes, new objects,
History), refuse add/change/delete while the alias is read-only, and log each write
with the alias of its object.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import models, router
from django.http import HttpRequest, QueryDict
from django.urls import URLPattern, URLResolver

from dashboard.aliases import ALIAS_VAR, allowed_aliases, home_alias, related_models
from dashboard.routing import current_override, router_installed
from dashboard.switching import log
from dashboard.switching.fields import AliasFieldsMixin, alias_inline
from dashboard.switching.readonly import writes_refused
from dashboard.switching.view import switched_view

if TYPE_CHECKING:
    _ModelAdminBase = admin.ModelAdmin[Any]
else:
    _ModelAdminBase = object


class AliasChangeListMixin:
    """A ChangeList that does not take ``?_db=`` for a field lookup (its links keep it)."""

    def get_filters_params(self, params: Any = None) -> dict[str, Any]:
        lookup_params: dict[str, Any] = super().get_filters_params(params)  # type: ignore[misc]
        lookup_params.pop(ALIAS_VAR, None)
        return lookup_params


@functools.cache
def alias_changelist(base: type[Any]) -> type[Any]:
    return type(f"Alias{base.__name__}", (AliasChangeListMixin, base), {})


class AliasAdminMixin(AliasFieldsMixin, _ModelAdminBase):
    """Lets staff pick the alias every page of this model's admin reads and writes."""

    # Set to False on an admin class the site should leave alone.
    dbhealth_switchable = True

    def dbhealth_alias(self, request: HttpRequest) -> str | None:
        if not router_installed():
            return None
        override = current_override()
        if override is not None and override.covers(self.model):
            return router.db_for_read(self.model)  # the override, unless a pin says otherwise
        # Views the admin site serves itself (autocomplete) name the alias in the query.
        requested = request.GET.get(ALIAS_VAR)
        if requested is not None and requested in allowed_aliases(self.model):
            return requested
        return None

    def dbhealth_models(self, request: HttpRequest) -> set[type[models.Model]]:
        """The models the override moves: this one, its inlines', and their relations."""
        found = related_models(self.model)
        for inline in self.get_inlines(request, None):
            found |= related_models(inline.model)
        return found

    def get_urls(self) -> list[URLPattern]:
        urls: Sequence[URLPattern | URLResolver] = super().get_urls()
        prefix = f"{self.opts.app_label}_{self.opts.model_name}_"
        wrapped: list[Any] = []
        for url in urls:
            if isinstance(url, URLPattern) and url.name:
                kind = url.name.removeprefix(prefix)
                view = switched_view(self, url.callback, kind)
                url = URLPattern(url.pattern, view, url.default_args, url.name)
            wrapped.append(url)
        return wrapped

    # --- querysets -----------------------------------------------------------------

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        base: Any = super().get_changelist(request, **kwargs)
        changelist: type[ChangeList] = alias_changelist(base)
        return changelist

    def get_inlines(self, request: HttpRequest, obj: models.Model | None) -> list[Any]:
        return [alias_inline(inline) for inline in super().get_inlines(request, obj)]

    def get_preserved_filters(self, request: HttpRequest) -> str:
        preserved: str = super().get_preserved_filters(request)
        alias = self.dbhealth_alias(request)
        if alias is None:
            return preserved
        # Links to the list keep the alias inside _changelist_filters, links to
        # everything else (change, add, delete, history) carry it themselves.
        outer = QueryDict(preserved, mutable=True)
        inner = QueryDict(outer.get("_changelist_filters", ""), mutable=True)
        inner[ALIAS_VAR] = alias
        outer["_changelist_filters"] = inner.urlencode()
        outer[ALIAS_VAR] = alias
        return outer.urlencode()

    def get_search_results(
        self, request: HttpRequest, queryset: models.QuerySet[Any], search_term: str
    ) -> tuple[models.QuerySet[Any], bool]:
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        alias = self.dbhealth_alias(request)
        return (found.using(alias) if alias else found), may_have_duplicates

    def get_paginator(
        self, request: HttpRequest, queryset: Any, per_page: int, *args: Any, **kwargs: Any
    ) -> Paginator[Any]:
        # History pages LogEntry rows through here: keep those about this alias's object.
        alias = self.dbhealth_alias(request)
        if (
            alias is not None
            and isinstance(queryset, models.QuerySet)
            and queryset.model is LogEntry
            and self.model is not LogEntry
        ):
            home = home_alias(self.model, allowed_aliases(self.model))
            queryset = log.about_alias(queryset, alias, home)
        paginator: Paginator[Any] = super().get_paginator(
            request, queryset, per_page, *args, **kwargs
        )
        return paginator

    # --- writes --------------------------------------------------------------------

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return writes_refused() is None and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return writes_refused() is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return writes_refused() is None and super().has_delete_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        alias = self.dbhealth_alias(request)
        if alias is not None and obj._state.db is None:
            obj._state.db = alias
        super().save_model(request, obj, form, change)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet[Any]) -> None:
        alias = self.dbhealth_alias(request)
        super().delete_queryset(request, queryset.using(alias) if alias else queryset)

    # --- the admin log -------------------------------------------------------------

    def _log_label(self, obj: models.Model) -> str | None:
        """``second_db`` when ``obj`` lives elsewhere than the log; None otherwise."""
        alias = obj._state.db
        if alias is None or alias == router.db_for_write(LogEntry):
            return None
        return alias

    def _labelled(self, obj: models.Model, message: Any) -> Any:
        # Also said in words, for sites and tools that read only Django's log table.
        alias = self._log_label(obj)
        if alias is None:
            return message
        text = message
        if isinstance(message, list):
            text = LogEntry(change_message=json.dumps(message)).get_change_message()
        return f"On {alias}: {text}"

    def log_addition(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        entries = log.log_actions(request.user.pk, [obj], ADDITION, self._labelled(obj, message))
        return entries[0]

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        entries = log.log_actions(request.user.pk, [obj], CHANGE, self._labelled(obj, message))
        return entries[0]

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        objects = list(queryset)
        alias = self._log_label(objects[0]) if objects else None
        message = f"Deleted from {alias}." if alias else ""
        return log.log_actions(request.user.pk, objects, DELETION, message)


def switchable(admin_class: type[admin.ModelAdmin[Any]]) -> type[admin.ModelAdmin[Any]]:
    """``admin_class`` with alias switching mixed in, unless it opted out or has it."""
    if issubclass(admin_class, AliasAdminMixin) or not getattr(
        admin_class, "dbhealth_switchable", True
    ):
        return admin_class
    switching: type[admin.ModelAdmin[Any]] = type(
        admin_class.__name__,
        (AliasAdminMixin, admin_class),
        {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__},
    )
    return switching
