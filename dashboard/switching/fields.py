"""Relation fields of a switched admin form: choices, widgets and inlines on the chosen alias.

``AliasFieldsMixin`` is shared by ``AliasAdminMixin`` and the inlines it switches:
FK and M2M choices are read with ``using=<alias>`` (a related model pinned elsewhere
keeps its pin), and autocomplete, raw-id and "+"/change links open the related
model's admin on the same alias.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from django.contrib.admin.widgets import RelatedFieldWidgetWrapper
from django.db import models, router
from django.forms import Field as FormField
from django.forms import ModelChoiceField, ModelMultipleChoiceField, Widget
from django.http import HttpRequest

from dashboard.routing import current_override, pinned_alias
from dashboard.switching.readonly import writes_refused
from dashboard.switching.widgets import (
    AliasAutocompleteSelect,
    AliasAutocompleteSelectMultiple,
    AliasForeignKeyRawIdWidget,
    AliasManyToManyRawIdWidget,
    AliasRelatedFieldWidgetWrapper,
)

if TYPE_CHECKING:
    from django.contrib.admin.options import BaseModelAdmin

    _FieldsBase = BaseModelAdmin[Any]
else:
    _FieldsBase = object


class AliasFieldsMixin(_FieldsBase):
    """Relation fields on a switched form list, search and add on the chosen alias."""

    def dbhealth_alias(self, request: HttpRequest) -> str | None:
        """The alias this request switched the admin's model to; None leaves routing alone."""
        raise NotImplementedError

    def dbhealth_related_alias(
        self, request: HttpRequest, related: type[models.Model]
    ) -> str | None:
        alias = self.dbhealth_alias(request)
        if alias is None:
            return None
        return pinned_alias(related) or alias

    def _alias_widget(
        self, db_field: Any, request: HttpRequest, alias: str, *, many: bool
    ) -> Widget | None:
        if db_field.name in self.get_autocomplete_fields(request):
            autocomplete = AliasAutocompleteSelectMultiple if many else AliasAutocompleteSelect
            return autocomplete(db_field, self.admin_site, using=alias)
        if db_field.name in self.raw_id_fields:
            raw_id = AliasManyToManyRawIdWidget if many else AliasForeignKeyRawIdWidget
            return raw_id(db_field.remote_field, self.admin_site, using=alias)
        return None

    def _relation_kwargs(
        self, db_field: Any, request: HttpRequest, kwargs: dict[str, Any], *, many: bool
    ) -> dict[str, Any]:
        alias = self.dbhealth_related_alias(request, db_field.remote_field.model)
        if alias is None:
            return kwargs
        kwargs = {"using": alias, **kwargs}
        if "widget" not in kwargs:
            widget = self._alias_widget(db_field, request, kwargs["using"], many=many)
            if widget is not None:
                kwargs["widget"] = widget
        return kwargs

    def formfield_for_foreignkey(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        kwargs = self._relation_kwargs(db_field, request, kwargs, many=False)
        field: ModelChoiceField[Any] | None = super().formfield_for_foreignkey(
            db_field, request, **kwargs
        )
        return field

    def formfield_for_manytomany(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> ModelMultipleChoiceField[Any] | None:
        kwargs = self._relation_kwargs(db_field, request, kwargs, many=True)
        field: ModelMultipleChoiceField[Any] | None = super().formfield_for_manytomany(
            db_field, request, **kwargs
        )
        return field

    def formfield_for_dbfield(
        self, db_field: Any, request: HttpRequest, **kwargs: Any
    ) -> FormField | None:
        formfield: FormField | None = super().formfield_for_dbfield(db_field, request, **kwargs)
        if formfield is not None and isinstance(formfield.widget, RelatedFieldWidgetWrapper):
            alias = self.dbhealth_related_alias(request, db_field.remote_field.model)
            if alias is not None:
                formfield.widget = AliasRelatedFieldWidgetWrapper.wrapping(formfield.widget, alias)
        return formfield

    def get_queryset(self, request: HttpRequest) -> models.QuerySet[Any]:
        queryset: models.QuerySet[Any] = super().get_queryset(request)
        alias = self.dbhealth_alias(request)
        return queryset.using(alias) if alias else queryset


class AliasInlineMixin(AliasFieldsMixin):
    """Inline rows follow the page they are on (the override its admin set, its read-only)."""

    def dbhealth_alias(self, request: HttpRequest) -> str | None:
        if current_override() is None:
            return None
        return router.db_for_read(self.model)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return writes_refused() is None and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return writes_refused() is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return writes_refused() is None and super().has_delete_permission(request, obj)


@functools.cache
def alias_inline(inline_class: type[Any]) -> type[Any]:
    if issubclass(inline_class, AliasInlineMixin):
        return inline_class
    return type(
        inline_class.__name__,
        (AliasInlineMixin, inline_class),
        {"__module__": inline_class.__module__},
    )
