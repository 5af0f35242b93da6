"""An admin site of the same project that did not adopt dbhealth.

The app's ``admin/base_site.html`` applies to every admin site; this one must keep
working without the db-health link or the switcher, as ``django.contrib.admin``'s
own site does when a project adopts only through ``DBHealthSiteMixin``.
"""

from __future__ import annotations

from django.contrib import admin

from tests.adoption.inventory.admin import ProductAdmin
from tests.adoption.inventory.models import Product

site = admin.AdminSite(name="plain")
site.register(Product, ProductAdmin)
