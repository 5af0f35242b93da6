"""The site's own ``AdminSite`` subclass, adopting dbhealth through the mixin.

The second way in: a site that already has ``class BackofficeSite(admin.AdminSite)``
adds ``DBHealthSiteMixin`` as its first base and gets the db-health page, the header
link and the alias switcher on the models registered with it.
"""

from __future__ import annotations

from django.contrib import admin

from dashboard.sites import DBHealthSiteMixin
from tests.adoption.inventory.admin import ProductAdmin
from tests.adoption.inventory.models import Product


class BackofficeSite(DBHealthSiteMixin, admin.AdminSite):
    site_header = "Shop back office"
    site_title = "Back office"


site = BackofficeSite(name="backoffice")
site.register(Product, ProductAdmin)
