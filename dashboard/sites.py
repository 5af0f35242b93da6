"""The admin site: Django's own, plus the db-health page and its link on every page.

``DBHealthSiteMixin`` is for sites that already have their own ``AdminSite``
subclass; ``DBHealthAdminSite`` is the ready-made default installed by
``dashboard.apps.DBHealthAdminConfig``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.cache import add_never_cache_headers
from django_htmx.http import HttpResponseClientRefresh

from dashboard import cancel, views
from dashboard.switching import autocomplete, switchable


class DBHealthSiteMixin:
    """Adds ``db-health/`` (page, table partial, per-alias ping, alias page) to an admin site."""

    name: str
    # Django's index, whose "Recent actions" open each object on its own alias.
    index_template: str | None = "dashboard/admin/index.html"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        site: Any = self

        def wrap(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
            return self._reload_when_logged_out(site.admin_view(view))

        urls: list[URLResolver | URLPattern] = [
            path("db-health/", wrap(views.db_health_page), {"site": self}, name="dbhealth"),
            path(
                "db-health/table/",
                wrap(views.db_health_table),
                {"site": self},
                name="dbhealth_table",
            ),
            path(
                "db-health/<str:alias>/ping/",
                wrap(views.ping_alias),
                {"site": self},
                name="dbhealth_ping",
            ),
            path(
                "db-health/<str:alias>/vitals/",
                wrap(views.alias_vitals),
                {"site": self},
                name="dbhealth_vitals",
            ),
            path(
                "db-health/<str:alias>/sessions/<int:session_id>/<str:action>/",
                wrap(cancel.session_action),
                {"site": self},
                name="dbhealth_session",
            ),
            # After table/: an alias named "table" would be shadowed, not the other way round.
            path(
                "db-health/<str:alias>/",
                wrap(views.alias_page),
                {"site": self},
                name="dbhealth_alias",
            ),
        ]
        inherited: list[URLResolver | URLPattern] = super().get_urls()  # type: ignore[misc]
        return urls + inherited

    def _reload_when_logged_out(
        self, view: Callable[..., HttpResponse]
    ) -> Callable[..., HttpResponse]:
        """An HTMX request whose session has ended reloads the whole page.

        ``admin_view`` answers it with a redirect to the login page, which the browser
        follows inside the XHR: the login form would be swapped into the table. A full
        reload lets ``admin_view`` send the browser itself to the login page, with
        ``next`` pointing back to the page it was on.
        """
        site: Any = self

        def refresh_or_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            # The header, not request.htmx: a site may not install django-htmx's middleware.
            if request.headers.get("HX-Request") == "true" and not site.has_permission(request):
                refresh = HttpResponseClientRefresh()
                add_never_cache_headers(refresh)
                return refresh
            return view(request, *args, **kwargs)

        return update_wrapper(refresh_or_view, view)

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        """Every ModelAdmin gets alias switching (``dbhealth_switchable = False`` opts out)."""
        admin_class = switchable(admin_class or admin.ModelAdmin)
        super().register(model_or_iterable, admin_class, **options)  # type: ignore[misc]

    def autocomplete_view(self, request: HttpRequest) -> HttpResponse:
        view = super().autocomplete_view  # type: ignore[misc]
        return autocomplete.guarded(view, request)

    def db_health_url(self) -> str:
        return reverse("admin:dbhealth", current_app=self.name)

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context: dict[str, Any] = super().each_context(request)  # type: ignore[misc]
        context["dbhealth_url"] = self.db_health_url()
        return context

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        app_list: list[Any] = super().get_app_list(request, app_label)  # type: ignore[misc]
        if app_label is None and request.user.is_active and request.user.is_staff:
            url = self.db_health_url()
            app_list.insert(
                0,
                {
                    "name": "Database health",
                    "app_label": "dbhealth",
                    "app_url": url,
                    "has_module_perms": True,
                    "models": [
                        {
                            "name": "Database aliases",
                            "object_name": "DatabaseAlias",
                            "admin_url": url,
                            "add_url": None,
                            "view_only": True,
                            "perms": {"view": True},
                        }
                    ],
                },
            )
        return app_list


class DBHealthAdminSite(DBHealthSiteMixin, admin.AdminSite):
    site_header = "dbhealth administration"
    site_title = "dbhealth"
    index_title = "Site administration"
