"""Switch the database alias an admin model list reads and writes: ``AliasAdminMixin``.

``DBHealthSiteMixin.register`` mixes it into every registered ModelAdmin (auth.User's
too); ``dbhealth_switchable = False`` on an admin class opts out. For a model whose
table can live on several aliases, every page of its admin names its alias in the URL
(``?_db=second_db``; a page asked for without one is redirected to the alias
remembered in the session, else the model's home alias), shows a banner with the
alias, vendor and host, and the list shows a switcher.

Under a chosen alias the view runs inside :func:`dashboard.routing.alias_override`
for the model, its inlines and the models they relate to, and the admin's hooks
name the alias explicitly (querysets, FK/M2M choices and their popups, autocomplete,
new objects, bulk deletes). Admin's own LogEntry rows stay where the router puts
LogEntry; an entry about an object on another alias says which.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.admin.options import IS_POPUP_VAR
from django.contrib.admin.views.main import ChangeList
from django.db import DatabaseError, connections, models, router
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect, QueryDict
from django.template.base import Template
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, reverse
from django.utils.text import capfirst

from dashboard import results
from dashboard.aliases import (
    ALIAS_VAR,
    allowed_aliases,
    home_alias,
    related_models,
    table_exists,
)
from dashboard.formfields import AliasFieldsMixin, alias_inline
from dashboard.probes import ProbeResult
from dashboard.routing import alias_override, current_override, pinned_alias, router_installed

if TYPE_CHECKING:
    _ModelAdminBase = admin.ModelAdmin[Any]
else:
    _ModelAdminBase = object

# Session key: {"app_label.model_name": alias} for every model someone switched.
SESSION_KEY = "dbhealth_aliases"
# id of the switcher form; HTMX sends it as HX-Trigger when the select changes.
SWITCHER_ID = "dbhealth-alias-switcher"
LIST_TEMPLATE = "dashboard/admin/change_list.html"
PAGE_TEMPLATE = "dashboard/admin/object_page.html"
UNAVAILABLE_TEMPLATE = "dashboard/admin/alias_unavailable.html"
SAFE_METHODS = ("GET", "HEAD")


@dataclass(frozen=True)
class AliasChoice:
    """The alias one request asked for (``explicit``: named in ``?_db=``)."""

    alias: str
    explicit: bool
    error: str | None = None


@dataclass(frozen=True)
class AliasOption:
    alias: str
    status: str
    vendor: str
    location: str
    name: str

    @classmethod
    def from_result(cls, result: ProbeResult) -> AliasOption:
        return cls(result.alias, result.status, result.vendor, result.location, result.name)


@dataclass(frozen=True)
class AliasPage:
    """What the banner and the switcher show on one admin page."""

    current: AliasOption
    options: tuple[AliasOption, ...]
    pinned: bool
    is_popup: bool
    changelist_url: str
    verbose_name_plural: str
    problem: str | None = None
    param: str = ALIAS_VAR

    @property
    def alias(self) -> str:
        return self.current.alias

    @property
    def switchable(self) -> bool:
        return len(self.options) > 1 and not self.is_popup


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

    # --- which alias ---------------------------------------------------------------

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

    def dbhealth_choice(self, request: HttpRequest) -> AliasChoice:
        allowed = allowed_aliases(self.model)
        home = home_alias(self.model, allowed)
        requested = request.GET.get(ALIAS_VAR)
        if requested is not None:
            if requested in allowed:
                return AliasChoice(requested, explicit=True)
            return AliasChoice(home, explicit=False, error=self._refusal(requested, allowed))
        session = getattr(request, "session", None)
        chosen = session.get(SESSION_KEY) if session is not None else None
        remembered = chosen.get(self.opts.label_lower) if isinstance(chosen, dict) else None
        if remembered in allowed:
            return AliasChoice(str(remembered), explicit=False)
        return AliasChoice(home, explicit=False)

    def _refusal(self, requested: str, allowed: list[str]) -> str:
        name = capfirst(self.opts.verbose_name_plural)
        shown = home_alias(self.model, allowed)
        if requested in connections.settings:
            return f"{name} are not kept on {requested}; showing {shown}."
        return f"There is no database alias named “{requested[:80]}”; showing {shown}."

    def _remember(self, request: HttpRequest, alias: str) -> None:
        session = getattr(request, "session", None)
        if session is None:
            return
        stored = session.get(SESSION_KEY)
        chosen = dict(stored) if isinstance(stored, dict) else {}
        if chosen.get(self.opts.label_lower) != alias:
            chosen[self.opts.label_lower] = alias
            session[SESSION_KEY] = chosen

    def dbhealth_models(self, request: HttpRequest) -> set[type[models.Model]]:
        """The models the override moves: this one, its inlines', and their relations."""
        found = related_models(self.model)
        for inline in self.get_inlines(request, None):
            found |= related_models(inline.model)
        return found

    # --- the page around a view ----------------------------------------------------

    def _alias_page(
        self, request: HttpRequest, alias: str, allowed: list[str], *, listing: bool
    ) -> AliasPage:
        shown = allowed if listing else [alias]
        found = {result.alias: result for result in results.latest(shown)}
        current = found[alias]
        problem = self._problem(current)
        options = [
            AliasOption.from_result(found[other])
            for other in shown
            if other == alias or self._may_list(found[other])
        ]
        return AliasPage(
            current=AliasOption.from_result(current),
            options=tuple(options),
            pinned=pinned_alias(self.model) is not None,
            is_popup=IS_POPUP_VAR in request.GET,
            changelist_url=reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist",
                current_app=self.admin_site.name,
            ),
            verbose_name_plural=str(self.opts.verbose_name_plural),
            problem=problem,
        )

    def _problem(self, result: ProbeResult) -> str | None:
        """Why nothing can be shown from this alias, or None."""
        alias = result.alias
        if not result.ok:
            state = "did not answer" if result.status == "timeout" else "is down"
            return f"Database {alias} {state}: {result.error or result.status}"
        try:
            migrated = table_exists(alias, self.opts.db_table)
        except DatabaseError as error:
            return f"Database {alias} could not be inspected ({type(error).__name__})."
        if not migrated:
            return (
                f"{capfirst(self.opts.verbose_name)} is not migrated on {alias} "
                f"(run `manage.py migrate --database={alias}`)"
            )
        return None

    def _may_list(self, result: ProbeResult) -> bool:
        """Offer an alias the table is on, or that is down (the switcher shows why)."""
        if not result.ok:
            return True
        try:
            return table_exists(result.alias, self.opts.db_table)
        except DatabaseError:
            return True

    def _url_with_alias(self, request: HttpRequest, alias: str) -> str:
        # Only the query string changes: the path is the one this admin view matched.
        query = request.GET.copy()
        query[ALIAS_VAR] = alias
        return f"{request.path}?{query.urlencode()}"

    def _unavailable(self, request: HttpRequest, page: AliasPage) -> TemplateResponse:
        messages.error(request, page.problem or "")
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{capfirst(page.verbose_name_plural)} on {page.alias}",
            "dbhealth": page,
        }
        return TemplateResponse(request, UNAVAILABLE_TEMPLATE, context)

    def _decorate(self, response: TemplateResponse, page: AliasPage) -> None:
        """Render the view's own template inside one that adds the banner (and switcher)."""
        context = response.context_data if response.context_data is not None else {}
        if "popup_response_data" in context:
            return
        parent = response.resolve_template(response.template_name)
        if not isinstance(getattr(parent, "template", None), Template):
            return
        response.context_data = {**context, "dbhealth": page, "dbhealth_parent": parent}
        response.template_name = LIST_TEMPLATE if "cl" in context else PAGE_TEMPLATE

    def _alias_view(self, view: Callable[..., HttpResponseBase], *, listing: bool) -> Any:
        @functools.wraps(view)
        def alias_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            allowed = allowed_aliases(self.model)
            if (
                len(connections.settings) < 2
                or not router_installed()  # without it, writes would not follow the switch
                or not allowed
                or not self.admin_site.has_permission(request)
                or not any(self.get_model_perms(request).values())
            ):
                return view(request, *args, **kwargs)
            choice = self.dbhealth_choice(request)
            if choice.error:
                messages.error(request, choice.error)
            target = self._url_with_alias(request, choice.alias)
            if listing and request.headers.get("HX-Trigger") == SWITCHER_ID:
                # A full page load, so the admin's own scripts start on the new list.
                return HttpResponse(headers={"HX-Redirect": target})
            if choice.error or (request.method in SAFE_METHODS and not choice.explicit):
                return HttpResponseRedirect(target)
            page = self._alias_page(request, choice.alias, allowed, listing=listing)
            if page.problem:
                return self._unavailable(request, page)
            if not page.is_popup:
                self._remember(request, choice.alias)
            with alias_override(choice.alias, self.dbhealth_models(request)):
                response = view(request, *args, **kwargs)
                # Templates query too (inline rows, choices): render under the override.
                if isinstance(response, TemplateResponse) and not response.is_rendered:
                    self._decorate(response, page)
                    response.render()
            return response

        return alias_view

    def get_urls(self) -> list[URLPattern]:
        urls: Sequence[URLPattern | URLResolver] = super().get_urls()
        changelist = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        wrapped: list[Any] = []
        for url in urls:
            if isinstance(url, URLPattern) and url.name:
                view = self._alias_view(url.callback, listing=url.name == changelist)
                url = URLPattern(url.pattern, view, url.default_args, url.name)
            wrapped.append(url)
        return wrapped

    # --- admin hooks ---------------------------------------------------------------

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
        alias = self._log_label(obj)
        if alias is None:
            return message
        text = message
        if isinstance(message, list):
            text = LogEntry(change_message=json.dumps(message)).get_change_message()
        return f"On {alias}: {text}"

    def log_addition(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        return super().log_addition(request, obj, self._labelled(obj, message))

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        return super().log_change(request, obj, self._labelled(obj, message))

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        objects = list(queryset)
        alias = self._log_label(objects[0]) if objects else None
        if alias is None:
            return super().log_deletions(request, queryset)
        user_id: Any = request.user.pk
        return LogEntry.objects.log_actions(
            user_id=user_id,
            queryset=objects,
            action_flag=DELETION,
            change_message=f"Deleted from {alias}.",
        )


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
