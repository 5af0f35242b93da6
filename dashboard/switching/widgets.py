"""Admin widgets that carry the chosen alias into their lookups and popups.

An autocomplete box, a raw-id lookup or a "+" next to a select opens another admin
page; on a form switched to ``second_db`` that page must list, search and add rows
on ``second_db`` too, so each of these URLs gets ``?_db=<alias>``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.widgets import (
    AutocompleteSelect,
    AutocompleteSelectMultiple,
    ForeignKeyRawIdWidget,
    ManyToManyRawIdWidget,
    RelatedFieldWidgetWrapper,
)
from django.utils.http import urlencode

from dashboard.aliases import ALIAS_VAR


def with_alias(url: str, alias: str | None) -> str:
    if not alias:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode({ALIAS_VAR: alias})}"


class AliasAutocompleteSelect(AutocompleteSelect):
    def get_url(self) -> str:
        # select2 appends its own term/page parameters after these with "&".
        return with_alias(super().get_url(), self.db)


class AliasAutocompleteSelectMultiple(AutocompleteSelectMultiple):
    def get_url(self) -> str:
        return with_alias(super().get_url(), self.db)


class AliasForeignKeyRawIdWidget(ForeignKeyRawIdWidget):
    def url_parameters(self) -> dict[str, str]:
        params: dict[str, str] = super().url_parameters()
        if self.db:
            params[ALIAS_VAR] = self.db
        return params


class AliasManyToManyRawIdWidget(ManyToManyRawIdWidget):
    def url_parameters(self) -> dict[str, str]:
        params: dict[str, str] = super().url_parameters()
        if self.db:
            params[ALIAS_VAR] = self.db
        return params


class AliasRelatedFieldWidgetWrapper(RelatedFieldWidgetWrapper):
    """The add / change / delete / view links beside a select, on the chosen alias."""

    def __init__(self, *args: Any, alias: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alias = alias

    @classmethod
    def wrapping(
        cls, wrapper: RelatedFieldWidgetWrapper, alias: str
    ) -> AliasRelatedFieldWidgetWrapper:
        return cls(
            wrapper.widget,
            wrapper.rel,
            wrapper.admin_site,
            can_add_related=wrapper.can_add_related,
            can_change_related=wrapper.can_change_related,
            can_delete_related=wrapper.can_delete_related,
            can_view_related=wrapper.can_view_related,
            alias=alias,
        )

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context(name, value, attrs)
        extra = urlencode({ALIAS_VAR: self.alias})
        for key in ("url_params", "view_related_url_params"):
            if key in context:
                context[key] = f"{context[key]}&{extra}"
        return context
