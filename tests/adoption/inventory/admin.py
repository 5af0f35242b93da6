"""The site's admin as any site writes it: a plain ModelAdmin, nothing from dbhealth."""

from __future__ import annotations

from django.contrib import admin

from tests.adoption.inventory.models import Product


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "stock"]
    search_fields = ["name"]
