from __future__ import annotations

from django.contrib import admin

from dashboard.demo.models import AuditEvent, Customer, Order


class OrderInline(admin.TabularInline):
    model = Order
    extra = 0


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "region", "created"]
    list_filter = ["region"]
    search_fields = ["name", "email"]
    inlines = [OrderInline]


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["reference", "customer", "total", "status", "created"]
    list_filter = ["status"]
    search_fields = ["reference", "customer__name"]
    autocomplete_fields = ["customer"]
    actions = ["mark_paid"]

    @admin.action(description="Mark selected orders as paid")
    def mark_paid(self, request, queryset):
        updated = queryset.update(status=Order.Status.PAID)
        self.message_user(request, f"{updated} order(s) marked as paid.")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["action", "created"]
    search_fields = ["action", "detail"]
