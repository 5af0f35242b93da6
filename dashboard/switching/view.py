"""The wrapper around every admin view of a switched model: choose, check, run, keep the alias.

For one request it chooses the alias (redirecting to a URL that names it), builds the
banner and switcher from the last known probes, refuses writes to an alias that is
read-only, and runs the view under ``alias_override`` with its template rendered
inside the override. A write runs in one transaction on the alias, so a write the
server refuses rolls back whole and becomes an admin message on the page it came
from; a read that fails shows the alias's problem page. Neither is ever a 500.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.admin.options import IS_POPUP_VAR, TO_FIELD_VAR
from django.db import DatabaseError, connections, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.base import Template
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.text import capfirst

from dashboard import permissions
from dashboard.aliases import ALIAS_VAR, allowed_aliases
from dashboard.probes import error_text
from dashboard.routing import alias_override, pinned_alias, router_installed
from dashboard.switching import page as alias_page
from dashboard.switching.auth import session_kept
from dashboard.switching.choice import choose, remember, url_with_alias
from dashboard.switching.links import keep_alias
from dashboard.switching.readonly import is_refusal, refusing_writes, remember_refusal

if TYPE_CHECKING:
    from dashboard.switching.admin import AliasAdminMixin

# id of the switcher form; HTMX sends it as HX-Trigger when the select changes.
SWITCHER_ID = "dbhealth-alias-switcher"
LIST_TEMPLATE = "dashboard/admin/change_list.html"
PAGE_TEMPLATE = "dashboard/admin/object_page.html"
UNAVAILABLE_TEMPLATE = "dashboard/admin/alias_unavailable.html"
SAFE_METHODS = ("GET", "HEAD")
# Views that only show (on a read-only alias the change form shows read-only).
READING_VIEWS = ("changelist", "change", "history")

View = Callable[..., HttpResponseBase]


class SwitchedView:
    """One admin view of ``model_admin`` (``kind``: changelist, change, add, ...), switched."""

    def __init__(self, model_admin: AliasAdminMixin, view: View, kind: str) -> None:
        self.model_admin = model_admin
        self.view = view
        self.kind = kind
        self.model = model_admin.model
        self.opts = model_admin.opts

    @property
    def listing(self) -> bool:
        return self.kind == "changelist"

    def applies(self, request: HttpRequest) -> bool:
        return (
            len(connections.settings) > 1
            and router_installed()  # without it, writes would not follow the switch
            and bool(allowed_aliases(self.model))
            and self.model_admin.admin_site.has_permission(request)
            and any(self.model_admin.get_model_perms(request).values())
        )

    def __call__(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not self.applies(request):
            return self.view(request, *args, **kwargs)
        choice = choose(request, self.model)
        if choice.error:
            messages.error(request, choice.error)
        target = url_with_alias(request, choice.alias)
        if self.listing and request.headers.get("HX-Trigger") == SWITCHER_ID:
            # A full page load, so the admin's own scripts start on the new list.
            return HttpResponse(headers={"HX-Redirect": target})
        if choice.error or (request.method in SAFE_METHODS and not choice.explicit):
            return HttpResponseRedirect(target)
        page = self._page(request, choice.alias)
        if page.problem:
            return self._unavailable(request, page, page.problem)
        if IS_POPUP_VAR not in request.GET:
            remember(request, self.model, choice.alias)
        refusal = page.current.read_only
        writing = request.method not in SAFE_METHODS
        if refusal is not None:
            if writing or self.kind not in READING_VIEWS:
                messages.error(request, f"Nothing was saved: {refusal}.")
                return HttpResponseRedirect(self._landing(request, page.alias))
            if not self.listing:
                messages.warning(request, f"Shown read-only: {refusal}.")
        try:
            response = self._run(request, page, refusal, writing, args, kwargs)
        except DatabaseError as error:
            return self._failed(request, page, error, writing)
        return keep_alias(response, page.alias, request.path)

    def _run(
        self,
        request: HttpRequest,
        page: alias_page.AliasPage,
        refusal: str | None,
        writing: bool,
        args: Any,
        kwargs: Any,
    ) -> HttpResponseBase:
        models = self.model_admin.dbhealth_models(request)
        with (
            alias_override(page.alias, models),
            refusing_writes(refusal),
            session_kept(request, self.model, page.alias),
        ):
            if not writing:
                return self._rendered(self.view(request, *args, **kwargs), page)
            # The write, its inline rows and (on the same database) its log entry commit
            # together or not at all; log entries kept elsewhere wait for this commit.
            with transaction.atomic(using=page.alias):
                return self._rendered(self.view(request, *args, **kwargs), page)

    def _rendered(self, response: HttpResponseBase, page: alias_page.AliasPage) -> HttpResponseBase:
        # Templates query too (inline rows, choices): render under the override.
        if isinstance(response, TemplateResponse) and not response.is_rendered:
            self._decorate(response, page)
            response.render()
        return response

    def _failed(
        self, request: HttpRequest, page: alias_page.AliasPage, error: DatabaseError, writing: bool
    ) -> HttpResponseBase:
        alias = page.alias
        if not writing:
            return self._unavailable(
                request, page, f"Database {alias} failed: {error_text(alias, error)}"
            )
        if is_refusal(connections[alias].vendor, error):
            reason = remember_refusal(alias, error)
            messages.error(request, f"Nothing was saved: {reason}.")
            return HttpResponseRedirect(self._landing(request, alias))
        messages.error(
            request, f"Nothing was saved: {alias} failed the write: {error_text(alias, error)}."
        )
        return HttpResponseRedirect(url_with_alias(request, alias))

    def _landing(self, request: HttpRequest, alias: str) -> str:
        """Where a refused write leads: the page itself if it can be shown read-only."""
        if self.kind in READING_VIEWS:
            return url_with_alias(request, alias)
        kept = {key: request.GET[key] for key in (IS_POPUP_VAR, TO_FIELD_VAR) if key in request.GET}
        return f"{self._changelist_url()}?{urlencode({**kept, ALIAS_VAR: alias})}"

    def _changelist_url(self) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist",
            current_app=self.model_admin.admin_site.name,
        )

    def _page(self, request: HttpRequest, alias: str) -> alias_page.AliasPage:
        return alias_page.build(
            alias,
            allowed_aliases(self.model),
            self.opts,
            listing=self.listing,
            pinned=pinned_alias(self.model) is not None,
            is_popup=IS_POPUP_VAR in request.GET,
            changelist_url=self._changelist_url(),
            details=permissions.can_view_details(request),
        )

    def _unavailable(
        self, request: HttpRequest, page: alias_page.AliasPage, problem: Any
    ) -> HttpResponseBase:
        messages.error(request, problem)
        request.current_app = self.model_admin.admin_site.name
        context = {
            **self.model_admin.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{capfirst(page.verbose_name_plural)} on {page.alias}",
            "dbhealth": page,
        }
        response = TemplateResponse(request, UNAVAILABLE_TEMPLATE, context)
        response.render()
        return keep_alias(response, page.alias, request.path)

    def _decorate(self, response: TemplateResponse, page: alias_page.AliasPage) -> None:
        """Render the view's own template inside one that adds the banner (and switcher)."""
        context = response.context_data if response.context_data is not None else {}
        if "popup_response_data" in context:
            return
        parent = response.resolve_template(response.template_name)
        if not isinstance(getattr(parent, "template", None), Template):
            return
        response.context_data = {**context, "dbhealth": page, "dbhealth_parent": parent}
        response.template_name = LIST_TEMPLATE if "cl" in context else PAGE_TEMPLATE


def switched_view(model_admin: AliasAdminMixin, view: View, kind: str) -> View:
    switched = SwitchedView(model_admin, view, kind)

    @functools.wraps(view)
    def alias_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return switched(request, *args, **kwargs)

    # Read by links.switched_model: a link to this view may carry the page's alias.
    alias_view.dbhealth_model = model_admin.model  # type: ignore[attr-defined]
    return alias_view
